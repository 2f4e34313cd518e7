"""Source `gtzan` (run by stage `download`): the GTZAN archive into data/raw/, with a per-clip checksum report.

Output: `data/raw/genres/<genre>/<clip>` as GTZAN names them, and `data/raw/tracks.csv`
(catalogue.COLUMNS). The archive comes from the first of `data.gtzan.url` and
`data.gtzan.mirrors` that gives one with its declared checksum (stages/sources/archive.py); whatever
archive is accepted, every clip is then checked against the official per-clip list.
"""

import re
from pathlib import Path, PurePosixPath

import pandas as pd

from stages.core.console import log
from stages.core.errors import UserError
from stages.core.files import CHUNK, atomic_output, remove
from stages.core.gtzan import GENRES
from stages.core.params import load_params
from stages.core.paths import DOWNLOADS, GTZAN_ARTISTS, GTZAN_CHECKSUMS, RAW, RAW_TRACKS
from stages.sources.archive import TAR_ERRORS, members, obtain_archive
from stages.sources.catalogue import clip_catalogue, summarize

CLIP_NAME = re.compile(rf"^({'|'.join(GENRES)})\.\d{{5}}\.(au|wav)$")
MAX_CLIP_BYTES = 16 << 20
"""The largest member accepted as a clip: GTZAN's are 1.3 MB (30 s of 16-bit mono at 22,050 Hz), so 16 MB is no
recording of it but a decompression bomb or another data set."""
OFFLINE_HELP = ("try the offline demo: dvc exp run -S data.source=demo (or download genres.tar.gz by hand and "
                "set data.gtzan.url to its path)")


# ---------------------------------------------------------------- unpacking

def unpack_clips(archive, destination):
    """Copy the archive's clips, wherever their genre folders sit, to `destination/<genre>/<clip>`.

    Returns the number of clips. Other members (Kaggle's CSVs, spectrogram images) are ignored.
    """
    count = 0
    try:
        for name, size, open_member in members(archive):
            path = PurePosixPath(name)
            match = CLIP_NAME.match(path.name)
            if not match or path.parent.name != match.group(1):
                continue
            if size > MAX_CLIP_BYTES:  # never written: decoding it for its checksum would take 3x its size in memory
                raise UserError(f"{archive}: {name} is {size / 1e6:.1f} MB, more than any GTZAN clip (at most "
                                f"{MAX_CLIP_BYTES / 1e6:.1f} MB; a real one is 1.3 MB): the archive is not GTZAN's")
            target = Path(destination) / match.group(1) / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            with open_member() as source, open(target, "wb") as out:
                while chunk := source.read(CHUNK):
                    out.write(chunk)
            count += 1
            if count % 100 == 0:
                log(f"download: unpacked {count} clips")
    except TAR_ERRORS:
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


def gtzan_artists(path=GTZAN_ARTISTS):
    """{track_id: artist} of GTZAN's 1000 clips by Sturm's index (lines `blues.00000.wav ::: artist ::: title`
    after `##` comments); "" for the 81 clips whose artist is unknown."""
    artists = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("##"):
            clip, artist = (field.strip() for field in line.split(":::")[:2])
            artists[clip.rsplit(".", 1)[0]] = artist
    return artists


def absent_report(tracks, official):
    absent = sorted(set(official) - set(tracks["track_id"]))
    if absent:
        return (f"\n  {len(absent)} official clips are not in the archive: "
                f"{', '.join(absent[:10])}{' ...' if len(absent) > 10 else ''}")
    return ""


def download(gtzan, raw=RAW, downloads=DOWNLOADS, checksums=GTZAN_CHECKSUMS, artists=GTZAN_ARTISTS):
    """Build `raw` from the `data.gtzan` params group; returns the tracks table.

    `downloads` keeps a partial or verified download between runs; `checksums` is the official per-clip list;
    `artists` Sturm's index of each clip's artist.
    """
    official = official_checksums(checksums)
    archive, downloaded = obtain_archive([gtzan["url"], *gtzan["mirrors"]], "GTZAN", OFFLINE_HELP, downloads)
    with atomic_output(raw) as staging:
        try:
            unpack_clips(archive, staging / "genres")
        except UserError as error:
            if downloaded:  # so that the next run fetches it again
                remove(archive)
                raise UserError(f"{error}; removed it: run again to download it again")
            raise
        tracks = clip_catalogue(staging, raw, "gtzan", official, gtzan_artists(artists))
        tracks.to_csv(staging / RAW_TRACKS.name, index=False)
    log(summarize(tracks) + absent_report(tracks, official))
    return tracks


def main():
    download(load_params()["data"]["gtzan"])
