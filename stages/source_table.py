"""Stage `download` with data.source=table: the tracks of a feature table computed elsewhere.

`data.table` is a CSV of features, one row per track or per window of a track (stages/table.py
says which columns mean what). The table is read in place: `data/raw/tracks.csv`
(catalogue.COLUMNS) lists its tracks and labels, each with the table's path and md5, so that
any edit of the table re-runs extract. DVC hashes the table as a dependency of this stage.
"""

import pandas as pd

from stages.catalogue import COLUMNS, summarize
from stages.common import atomic_output, file_digest, log, run
from stages.params import load_params
from stages.paths import RAW, RAW_TRACKS
from stages.table import catalogue_rows


def catalogue_table(path, raw=RAW):
    """Write `raw/tracks.csv` for the tracks of the table at `path`; returns the tracks table."""
    track_ids, labels = catalogue_rows(path)
    tracks = pd.DataFrame({"track_id": track_ids, "label": labels, "path": str(path), "md5": file_digest(path),
                           "status": "ok", "source": "table"}, columns=COLUMNS)
    with atomic_output(raw) as staging:
        staging.mkdir()
        tracks.to_csv(staging / RAW_TRACKS.name, index=False)
    log(summarize(tracks))
    return tracks


def main():
    catalogue_table(load_params()["data"]["table"])


if __name__ == "__main__":
    run(main)
