"""Source `fma` (run by stage `download`): the Free Music Archive (Defferrard et al., ISMIR 2017).

Gets `fma_metadata.zip` and `fma_<subset>.zip` (data.fma.subset: small, medium, large or full)
with the downloader every source uses (stages/sources/archive.py: mirrors, local paths, the checksum of
each URL, resumed downloads). The audio is read where it lies: FMA's zips store their MP3s
uncompressed, so each track's path in `data/raw/tracks.csv` names its member of the verified zip
(`<zip>::fma_small/000/000002.mp3`) and no second copy is ever unpacked. A downloaded zip's path
is relative to the repository (data/downloads/...), so that a moved copy still finds it.

The catalogue has one row per track of the subset: FMA's track id (`000002`), its label
(`('track', 'genre_top')`), FMA's own split (`('set', 'split')`: training, validation, test,
artist-filtered) and artist id. A track without a top genre (only in `full`) or without its MP3
in the zip is listed with that reason and never used.
"""

import re
import zipfile

import pandas as pd

from stages.core.errors import UserError
from stages.core.params import load_params
from stages.core.paths import DOWNLOADS, RAW
from stages.features.audio import IN_ARCHIVE
from stages.sources.archive import obtain_archive
from stages.sources.catalogue import COLUMNS, write_catalogue

SUBSETS = ("small", "medium", "large", "full")
"""FMA's subsets, each inside the next but full (the untrimmed audio of large's tracks)."""
METADATA_MEMBER = "fma_metadata/tracks.csv"
MEMBER = re.compile(r"^fma_(?P<subset>small|medium|large|full)/\d{3}/(?P<track>\d{6})\.mp3$")
COLUMNS_READ = {("track", "genre_top"): "label", ("set", "split"): "split", ("set", "subset"): "subset",
                ("artist", "id"): "artist"}
"""The columns of FMA's tracks.csv this source reads, and their names in the catalogue."""
EXCLUDED = "excluded: "
"""The status of a catalogued track that is never used, followed by why."""
OFFLINE_HELP = ("download the zips from https://github.com/mdeff/fma by hand and set data.fma.metadata and "
                "data.fma.audio.<subset> to their paths")


def read_metadata(archive):
    """FMA's tracks.csv from its metadata zip, read as FMA's own utils.py does: a (track_id)-indexed table
    of the COLUMNS_READ, renamed. Raises UserError for a zip without FMA's layout."""
    with zipfile.ZipFile(archive) as zipped:
        if METADATA_MEMBER not in zipped.namelist():
            raise UserError(f"{archive} has no {METADATA_MEMBER}: it is not FMA's fma_metadata.zip")
        with zipped.open(METADATA_MEMBER) as csv:
            tracks = pd.read_csv(csv, index_col=0, header=[0, 1], low_memory=False)
    absent = [" ".join(column) for column in COLUMNS_READ if column not in tracks.columns]
    if absent:
        raise UserError(f"{archive}'s {METADATA_MEMBER} lacks the columns {', '.join(absent)} of FMA's tracks.csv")
    table = tracks[list(COLUMNS_READ)]
    table.columns = list(COLUMNS_READ.values())
    table.index = [f"{int(track):06d}" for track in table.index]
    return table


def audio_members(archive, subset):
    """{track id: member name} of the MP3s in FMA's audio zip of `subset`."""
    with zipfile.ZipFile(archive) as zipped:
        found = {match["track"]: name for name in zipped.namelist()
                 if (match := MEMBER.match(name)) and match["subset"] == subset}
    if not found:
        raise UserError(f"{archive} has no fma_{subset}/NNN/NNNNNN.mp3 members: it is not FMA's fma_{subset}.zip")
    return found


def in_subset(metadata, subset):
    """(n_tracks,) bool: the tracks of `subset` (small within medium within large; full is every track)."""
    if subset == "full":
        return pd.Series(True, index=metadata.index)
    order = {"small": 0, "medium": 1, "large": 2}
    return metadata["subset"].map(order).fillna(len(order)) <= order[subset]


def fma_catalogue(metadata, members, archive, subset):
    """The tracks table (catalogue.COLUMNS, then split) of `subset`, in FMA's track order; FMA's artist id as the
    artist."""
    tracks = metadata[in_subset(metadata, subset)]
    rows = []
    for track_id, track in zip(tracks.index, tracks.itertuples()):
        label = track.label if isinstance(track.label, str) and track.label else ""
        status = ("ok" if label and track_id in members
                  else f"{EXCLUDED}no top genre" if not label else f"{EXCLUDED}no MP3 in the archive")
        path = f"{archive}{IN_ARCHIVE}{members[track_id]}" if track_id in members else ""
        rows.append((track_id, label, path, "", status, "fma", str(track.artist), track.split))
    return pd.DataFrame(rows, columns=[*COLUMNS, "split"])


def download(fma, raw=RAW, downloads=DOWNLOADS):
    """Build `raw` from the `data.fma` params group; returns the tracks table."""
    subset = fma["subset"]
    metadata_zip, _ = obtain_archive(fma["metadata"], "FMA's metadata", OFFLINE_HELP, downloads)
    audio_zip, _ = obtain_archive(fma["audio"][subset], f"fma_{subset}", OFFLINE_HELP, downloads)
    return write_catalogue(fma_catalogue(read_metadata(metadata_zip), audio_members(audio_zip, subset),
                                         audio_zip, subset), raw)


def main():
    download(load_params()["data"]["fma"])
