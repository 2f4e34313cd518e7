"""Tracks tables (the catalogue's and the features') and split lists: reading them, writing them a row at a time."""

import csv
from pathlib import Path

import pandas as pd

from stages.core.paths import SPLIT


def read_tracks(path):
    """A tracks table (data/raw's or data/features'), names and labels as text whatever they look like."""
    return pd.read_csv(path, dtype={"track_id": str, "label": str, "artist": str}, keep_default_na=False)


def in_catalogue_order(tracks):
    """A tracks table in the order every stage lists tracks: by label, then track id (GTZAN's own order)."""
    return tracks.sort_values(["label", "track_id"], kind="stable")


UNUSED = ("duplicate of", "excluded: ")
"""Statuses of catalogued tracks that are never used: a repeat of an earlier track's bytes, or excluded
by the source (an FMA track without a top genre)."""


def is_unused(tracks):
    """(n_tracks,) bool: the catalogue's tracks that no stage uses (UNUSED)."""
    return tracks["status"].str.startswith(UNUSED)


def write_list(path, track_ids):
    """Write track ids one a line, each ended by "\\n" (an id never holds one: the sources refuse such names)."""
    Path(path).write_bytes("".join(f"{track}\n" for track in track_ids).encode("utf-8"))


def listed_tracks(name, split=SPLIT):
    """The track ids in `split/<name>.txt`, read as write_list wrote them: an id may hold spaces, "\\r" or U+2028."""
    return (split / f"{name}.txt").read_bytes().decode("utf-8").split("\n")[:-1]


class StreamedCsv:
    """A CSV file written a row at a time (as pandas writes one), its header first: nothing of it held in memory."""

    def __init__(self, path, columns):
        self.file = open(path, "w", newline="", encoding="utf-8")
        self.writer = csv.writer(self.file, lineterminator="\n")
        self.writer.writerow(columns)

    def close(self):
        self.file.close()


class SkippedTable(StreamedCsv):
    """skipped.csv (track_id, reason), keeping only the first `shown` in memory."""

    def __init__(self, path, shown=5):
        super().__init__(path, ("track_id", "reason"))
        self.count, self.first, self.shown = 0, [], shown

    def write(self, track_id, reason):
        self.writer.writerow((track_id, reason))
        self.count += 1
        if len(self.first) < self.shown:
            self.first.append((track_id, reason))


class RowsTable(StreamedCsv):
    """The features' tracks table (row i describes row i of the matrix), counting what it holds."""

    def __init__(self, path):
        super().__init__(path, ("track_id", "label", "window", "start", "duration", "source"))
        self.n_rows, self.n_tracks, self.labels = 0, 0, set()

    def write(self, track_id, label, windows, source, starts=None, duration=None):
        """One row per window of one track; `starts` (s) of each window and their `duration` (s), if known."""
        for index, window in enumerate(windows):
            start = "" if starts is None else starts[index]
            self.writer.writerow((track_id, label, window, start, "" if duration is None else duration, source))
        self.n_rows += len(windows)
        self.n_tracks += 1
        self.labels.add(label)
