"""Source `table` (run by stage `download`): the tracks of a feature table computed elsewhere.

`data.table` is a CSV of features, one row per track or per window of a track (stages/features/table.py
says which columns mean what). The table is read in place: `data/raw/tracks.csv`
(catalogue.COLUMNS) lists its tracks and labels, each with the table's path and md5, so that
any edit of the table re-runs extract. DVC hashes the table as a dependency of this stage.
"""

import pandas as pd

from stages.core.checksums import file_digest
from stages.core.params import load_params
from stages.features.table import catalogue_rows
from stages.sources.catalogue import COLUMNS, write_catalogue


def table_catalogue(path):
    """The tracks table (catalogue.COLUMNS) of the table at `path`: one row per track, each with the table's md5."""
    track_ids, labels, artists = catalogue_rows(path)
    return pd.DataFrame({"track_id": track_ids, "label": labels, "path": str(path), "md5": file_digest(path),
                         "status": "ok", "source": "table", "artist": artists}, columns=COLUMNS)


def main():
    write_catalogue(table_catalogue(load_params()["data"]["table"]))
