"""Stage `download` with data.source=gtzan: the GTZAN archive into data/raw/, with a per-clip checksum report.

Output: `data/raw/genres/<genre>/<clip>` as GTZAN names them, and `data/raw/tracks.csv`
(catalogue.COLUMNS). The verified archive is kept in data/downloads/, outside every DVC
output, so that re-running the stage (after a code or mirror change) never fetches it again.
"""

import gzip
import http.client
import re
import stat
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import pandas as pd

from stages.audio import CHUNK, file_md5
from stages.catalogue import clip_catalogue, summarize
from stages.common import UserError, atomic_output, load_params, log, no_space_left, progress, remove, run
from stages.paths import DOWNLOADS, GTZAN_CHECKSUMS, RAW, RAW_TRACKS

GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
"""GTZAN's ten genres, in the order of its folders (and of np.unique, the seed's one-hot columns)."""

CLIP_NAME = re.compile(rf"^({'|'.join(GENRES)})\.\d{{5}}\.(au|wav)$")
OFFLINE_HELP = ("Without network: download genres.tar.gz by hand and set data.gtzan.url to its path in "
                "params.yaml, or try the pipeline on the offline demo corpus: dvc exp run -S data.source=demo")


# ---------------------------------------------------------------- obtaining the archive

def local_path(url):
    """The path `url` names on this machine, or None for a remote URL."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme in ("http", "https"):
        return None
    return Path(url).expanduser()


def archive_name(url):
    """The file name a download of `url` is kept under: the URL's own, or genres.tar.gz if it has none."""
    return PurePosixPath(urllib.parse.urlparse(url).path).name or "genres.tar.gz"


def fetch(url, part, attempts=5, timeout=30):
    """Download `url` into the file `part`, resuming what it already holds with HTTP Range requests.

    Retries up to `attempts` times after a dropped connection or a reply shorter than its
    Content-Length. Raises OSError or http.client.HTTPException when the server cannot be
    reached or keeps failing.
    """
    for attempt in range(attempts):
        offset = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if offset and response.status != 206:
                    offset = 0  # the server ignores Range: start again
                remaining = int(response.headers.get("Content-Length", 0)) or None
                if offset:
                    log(f"download: resuming {url} at byte {offset:,}")
                chunks = iter(lambda: response.read(CHUNK), b"")
                received = 0
                with open(part, "ab" if offset else "wb") as file:
                    for chunk in progress(chunks, remaining, "download", unit="B", size=len):
                        file.write(chunk)
                        received += len(chunk)
                if remaining and received < remaining:
                    raise ConnectionError(f"got {received:,} of {remaining:,} bytes")
            return
        except urllib.error.HTTPError as error:
            if error.code == 416:  # Range beyond the end: the part file is complete
                return
            raise
        except (http.client.IncompleteRead, ConnectionError, TimeoutError) as error:
            if attempt == attempts - 1:
                raise
            log(f"download: connection dropped ({error.__class__.__name__}), retrying")


def verify(path, md5):
    """Raise UserError unless the file has md5 `md5` (None skips that check) and opens as an archive."""
    if md5 is not None:
        log(f"download: verifying {path}")
        actual = file_md5(path)
        if actual != md5:
            raise UserError(f"checksum mismatch for {path}: expected md5 {md5}, got {actual}; "
                            "fix data.gtzan.md5 (null skips the check) or the archive")
    check_opens(path)


def check_opens(path):
    """Raise UserError if `path` is not a tar or zip archive (an HTML error page, say)."""
    if zipfile.is_zipfile(path):
        return
    try:
        with tarfile.open(path, mode="r:*") as tar:
            tar.next()
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, OSError) as error:
        if no_space_left(error):
            raise
        raise UserError(f"{path} is not a .tar.gz or .zip archive")


def obtain_archive(urls, md5, downloads=DOWNLOADS):
    """The GTZAN archive as a local path, and whether it was downloaded (so is ours to remove).

    Each URL in turn: a local path or file:// URL is used in place; a remote one is downloaded
    into `downloads` (resuming a partial download). The first that passes `verify` wins; a
    download that passed is kept, and a later run uses it without any network.
    """
    failures = []
    for url in urls:
        local = local_path(url)
        if local is not None:
            if not local.is_file():
                failures.append(f"{url} (not a file)")
                continue
            try:
                verify(local, md5)
            except UserError as error:
                failures.append(f"{url} ({error})")
                continue
            return local, False
        archive = downloads / archive_name(url)
        part = archive.with_name(archive.name + ".part")
        if archive.exists():
            try:
                verify(archive, md5)
                return archive, True
            except UserError:
                archive.unlink()
        downloads.mkdir(parents=True, exist_ok=True)
        try:
            fetch(url, part)
            verify(part, md5)
        except (OSError, http.client.HTTPException) as error:
            if no_space_left(error):
                raise  # another mirror would fill the same disk
            failures.append(f"{url} ({getattr(error, 'reason', None) or error})")
            continue
        except UserError as error:
            part.unlink()
            failures.append(f"{url} ({error})")
            continue
        part.replace(archive)
        return archive, True
    raise UserError(f"could not get GTZAN from {'; '.join(failures)}. {OFFLINE_HELP}")


# ---------------------------------------------------------------- unpacking

def _unsafe(name):
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", name)


def _members(archive):
    """Yield (name, open_binary) for every regular file of a tar or zip archive.

    Raises UserError for members with absolute paths, `..`, links or devices. The archive has
    passed `verify`: a tar error here means it is cut short or damaged, which unpack_clips reports.
    """
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                if _unsafe(info.filename) or stat.S_ISLNK(info.external_attr >> 16):
                    raise UserError(f"refusing {archive}: unsafe member '{info.filename}'")
                if not info.is_dir():
                    yield info.filename, lambda info=info: zipped.open(info)
        return
    with tarfile.open(archive, mode="r:*") as tar:
        for member in tar:
            if _unsafe(member.name) or not (member.isfile() or member.isdir()):
                raise UserError(f"refusing {archive}: unsafe member '{member.name}' "
                                "(absolute path, '..', link or device)")
            if member.isfile():
                yield member.name, lambda member=member: tar.extractfile(member)


def unpack_clips(archive, destination):
    """Copy the archive's clips, wherever their genre folders sit, to `destination/<genre>/<clip>`.

    Returns the number of clips. Other members (Kaggle's CSVs, spectrogram images) are ignored.
    """
    count = 0
    try:
        for name, open_member in _members(archive):
            path = PurePosixPath(name)
            match = CLIP_NAME.match(path.name)
            if not match or path.parent.name != match.group(1):
                continue
            target = Path(destination) / match.group(1) / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            with open_member() as source, open(target, "wb") as out:
                while chunk := source.read(CHUNK):
                    out.write(chunk)
            count += 1
            if count % 100 == 0:
                log(f"download: unpacked {count} clips")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, zipfile.BadZipFile):
        raise UserError(f"{archive} is cut short or damaged (an incomplete download?)")
    missing = [genre for genre in GENRES if not (Path(destination) / genre).is_dir()]
    if missing:
        raise UserError(f"{archive} does not have GTZAN's layout: no clips "
                        f"<genre>/<genre>.NNNNN.au|wav for {', '.join(missing)}")
    return count


def official_checksums(path=GTZAN_CHECKSUMS):
    """{track_id: md5} of GTZAN's 1000 clips in the .wav edition."""
    table = pd.read_csv(path, sep="\t")
    return dict(zip(table["track_id"], table["md5"]))


def absent_report(tracks, official):
    absent = sorted(set(official) - set(tracks["track_id"]))
    if absent:
        return (f"\n  {len(absent)} official clips are not in the archive: "
                f"{', '.join(absent[:10])}{' ...' if len(absent) > 10 else ''}")
    return ""


def download(gtzan, raw=RAW, downloads=DOWNLOADS, checksums=GTZAN_CHECKSUMS):
    """Build `raw` from the `data.gtzan` params group; returns the tracks table.

    `downloads` keeps a partial or verified download between runs; `checksums` is the official per-clip list.
    """
    official = official_checksums(checksums)
    archive, downloaded = obtain_archive([gtzan["url"], *gtzan["mirrors"]], gtzan["md5"], downloads)
    with atomic_output(raw) as staging:
        try:
            unpack_clips(archive, staging / "genres")
        except UserError as error:
            if downloaded:  # so that the next run fetches it again
                remove(archive)
                raise UserError(f"{error}; removed it: run again to download it again")
            raise
        tracks = clip_catalogue(staging, raw, "gtzan", official)
        tracks.to_csv(staging / RAW_TRACKS.name, index=False)
    log(summarize(tracks) + absent_report(tracks, official))
    return tracks


def main():
    download(load_params()["data"]["gtzan"])


if __name__ == "__main__":
    run(main)
