"""Stage `download`: GTZAN (or the demo corpus) into data/raw/, with a per-clip checksum report.

Output: `data/raw/genres/<genre>/<clip>` as GTZAN names them, and
`data/raw/tracks.csv`: track_id, genre, path (relative to data/raw), md5, status, source.
"""

import gzip
import hashlib
import http.client
import io
import re
import stat
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import wave
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import pandas as pd
import soundfile as sf

from stages.common import GENRES, UserError, atomic_output, load_params, log, progress, remove, run
from stages.demo_corpus import write_demo_corpus

RAW = Path("data/raw")
DOWNLOADS = Path("data/downloads")  # outside every DVC output, so a partial download survives a re-run
OFFICIAL_CHECKSUMS = Path("data/gtzan/checksums.tsv")
CLIP_NAME = re.compile(rf"^({'|'.join(GENRES)})\.\d{{5}}\.(au|wav)$")
CHUNK = 1 << 20


def file_md5(path):
    digest = hashlib.md5()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------- obtaining the archive

def local_path(url):
    """The path `url` names on this machine, or None for a remote URL."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme in ("http", "https"):
        return None
    return Path(url).expanduser()


def fetch(url, part, attempts=5, timeout=30):
    """Download `url` into the file `part`, resuming what it already holds with HTTP Range requests.

    Retries up to `attempts` times after a dropped connection. Raises OSError or
    http.client.HTTPException when the server cannot be reached or keeps failing.
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


def obtain_archive(urls, md5, downloads=DOWNLOADS):
    """The GTZAN archive as a local path, and whether it was downloaded (to be deleted after use).

    A local path or file:// URL is used in place. Remote URLs are tried in order into
    `downloads`; the archive is verified against `md5` (unless None) before it is returned.
    """
    first = local_path(urls[0])
    if first is not None:
        if not first.is_file():
            raise UserError(f"data.url names {first}, which is not a file: fix the path in params.yaml")
        verify(first, md5)
        return first, False
    downloads.mkdir(parents=True, exist_ok=True)
    archive = downloads / PurePosixPath(urllib.parse.urlparse(urls[0]).path).name
    part = archive.with_name(archive.name + ".part")
    if archive.exists():
        try:
            verify(archive, md5)
            return archive, True
        except UserError:
            archive.unlink()
    failures = []
    for url in urls:
        try:
            fetch(url, part)
            verify(part, md5)
        except (OSError, http.client.HTTPException) as error:
            failures.append(f"{url} ({getattr(error, 'reason', None) or error})")
            continue
        except UserError as error:
            part.unlink()
            failures.append(f"{url} ({error})")
            continue
        part.replace(archive)
        return archive, True
    raise UserError(f"could not download GTZAN from {'; '.join(failures)}. "
                    f"Without network, download genres.tar.gz by hand and set data.url to its path in params.yaml")


def verify(path, md5):
    if md5 is None:
        return
    log(f"download: verifying {path}")
    actual = file_md5(path)
    if actual != md5:
        raise UserError(f"checksum mismatch for {path}: expected md5 {md5}, got {actual}; "
                        "fix data.md5 (null skips the check) or the archive")


# ---------------------------------------------------------------- unpacking

def _unsafe(name):
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", name)


def _members(archive):
    """Yield (name, open_binary) for every regular file of a tar or zip archive.

    Raises UserError for members with absolute paths, `..`, links or devices.
    """
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                if _unsafe(info.filename) or stat.S_ISLNK(info.external_attr >> 16):
                    raise UserError(f"refusing {archive}: unsafe member '{info.filename}'")
                if not info.is_dir():
                    yield info.filename, lambda info=info: zipped.open(info)
        return
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for member in tar:
                if _unsafe(member.name) or not (member.isfile() or member.isdir()):
                    raise UserError(f"refusing {archive}: unsafe member '{member.name}' "
                                    "(absolute path, '..', link or device)")
                if member.isfile():
                    yield member.name, lambda member=member: tar.extractfile(member)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise UserError(f"{archive} is not a readable .tar.gz or .zip archive ({error})")


def unpack_clips(archive, destination):
    """Copy the archive's clips, wherever their genre folders sit, to `destination/<genre>/<clip>`.

    Returns the number of clips. Other members (Kaggle's CSVs, spectrogram images) are ignored.
    """
    count = 0
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
    missing = [genre for genre in GENRES if not (Path(destination) / genre).is_dir()]
    if missing:
        raise UserError(f"{archive} does not have GTZAN's layout: no clips "
                        f"<genre>/<genre>.NNNNN.au|wav for {', '.join(missing)}")
    return count


# ---------------------------------------------------------------- integrity

def audio_md5(path):
    """md5 of the clip re-written as a plain 16-bit PCM WAV.

    For a clip of GTZAN's .wav edition this is the md5 of the file itself, so it
    is comparable with the official list whether the clip came as .wav or .au.
    """
    samples, sr = sf.read(path, dtype="int16", always_2d=True)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(samples.shape[1])
        out.setsampwidth(2)
        out.setframerate(sr)
        out.writeframes(samples.tobytes())
    return hashlib.md5(buffer.getvalue()).hexdigest()


def official_checksums(path=OFFICIAL_CHECKSUMS):
    """{track_id: md5} of GTZAN's 1000 clips in the .wav edition."""
    table = pd.read_csv(path, sep="\t")
    return dict(zip(table["track_id"], table["md5"]))


def catalogue(raw, source, official=None):
    """One row per clip under `raw/genres`: track_id, genre, path, md5, status, source.

    With `official` ({track_id: md5}), `status` says why a clip is suspect; else it is "ok".
    """
    rows = []
    clips = sorted((raw / "genres").glob("*/*"))
    for clip in progress(clips, len(clips), "checksums"):
        track_id = clip.name.rsplit(".", 1)[0]
        try:
            md5, status = audio_md5(clip), "ok"
        except (sf.LibsndfileError, RuntimeError, ValueError) as error:
            md5, status = "", f"unreadable: {error}"
        if official is not None and md5:
            if track_id not in official:
                status = "not in the official list"
            elif official[track_id] != md5:
                status = f"md5 differs from the official {official[track_id]}"
        rows.append((track_id, clip.parent.name, clip.relative_to(raw).as_posix(), md5, status, source))
    return pd.DataFrame(rows, columns=["track_id", "genre", "path", "md5", "status", "source"])


def summarize(tracks, official=None):
    """A short report: counts, suspect clips, official clips absent from the archive."""
    suspect = tracks[tracks["status"] != "ok"]
    lines = [f"download: {len(tracks)} clips from {tracks['source'].iat[0]}, "
             f"{len(tracks) - len(suspect)} ok, {len(suspect)} suspect"]
    lines += [f"  suspect {row.track_id}: {row.status}" for row in suspect.itertuples()]
    if official is not None:
        absent = sorted(set(official) - set(tracks["track_id"]))
        if absent:
            lines.append(f"  {len(absent)} official clips are not in the archive: "
                         f"{', '.join(absent[:10])}{' ...' if len(absent) > 10 else ''}")
    return "\n".join(lines)


def download(data, raw=RAW, downloads=DOWNLOADS, checksums=OFFICIAL_CHECKSUMS):
    """Build `raw` from the `data` params group; returns the tracks table.

    `downloads` keeps a partial download between runs; `checksums` is the official per-clip list.
    """
    official = official_checksums(checksums) if data["source"] == "gtzan" else None
    archive = None
    with atomic_output(raw) as staging:
        if data["source"] == "demo":
            write_demo_corpus(staging / "genres", data["demo_clips_per_genre"], data["demo_seed"])
        else:
            archive, downloaded = obtain_archive([data["url"], *data["mirrors"]], data["md5"], downloads)
            unpack_clips(archive, staging / "genres")
        tracks = catalogue(staging, data["source"], official)
        tracks.to_csv(staging / "tracks.csv", index=False)
    if archive is not None and downloaded:
        remove(archive)  # the clips are unpacked: 1.2 GB need not be kept twice
    log(summarize(tracks, official))
    return tracks


def main():
    download(load_params()["data"])


if __name__ == "__main__":
    run(main)
