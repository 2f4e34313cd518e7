"""The data the stages after download read and write: tracks tables, feature rows, one-hot labels and classes,
by split."""

import csv
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from stages.paths import CLASSES, FEATURE_MATRIX, FEATURE_PARAMS, FEATURE_TRACKS, ONEHOT, SPLIT

NPY_HEADER = 128
"""Bytes of a version 1.0 .npy header for a 2-D float32 matrix of any realistic shape."""


def read_tracks(path):
    """A tracks table (data/raw's or data/features'), names and labels as text whatever they look like."""
    return pd.read_csv(path, dtype={"track_id": str, "label": str}, keep_default_na=False)


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


class RowWriter:
    """Append float32 rows of `width` values to a .npy file as they come; its header is written on close.

    The matrix is never held in memory: the driver's memory does not grow with the corpus.
    """

    def __init__(self, path, width):
        self.file = open(path, "wb")
        self.file.seek(NPY_HEADER)
        self.width, self.n_rows = width, 0

    def write(self, rows):
        self.file.write(np.ascontiguousarray(rows, dtype="<f4").tobytes())
        self.n_rows += len(rows)

    def close(self):
        self.file.seek(0)
        np.lib.format.write_array_header_1_0(
            self.file, {"descr": "<f4", "fortran_order": False, "shape": (self.n_rows, self.width)})
        if self.file.tell() != NPY_HEADER:
            raise AssertionError(f"unexpected .npy header length {self.file.tell()}")
        self.file.close()


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


class Extracted(NamedTuple):
    """What extract wrote: its rows' count, their tracks' count and labels, how many files it skipped
    and the first few of them, (track_id, reason)."""
    n_rows: int
    n_tracks: int
    labels: set
    n_skipped: int
    first_skipped: list


class MappedRows:
    """Some rows of the memory-mapped feature matrix, read only when asked: the matrix may be larger than RAM."""

    def __init__(self, matrix, index):
        self.matrix, self.index = matrix, index
        self.shape = (len(index), matrix.shape[1])

    def __len__(self):
        return len(self.index)

    def __getitem__(self, positions):
        """(len(positions), n_values) float32: the rows at `positions` (an index array) of this set, read from
        disk in file order."""
        index = self.index[positions]
        order = np.argsort(index, kind="stable")
        taken = np.empty((len(index), self.shape[1]), np.float32)
        taken[order] = self.matrix[index[order]]
        return taken


class Subset(NamedTuple):
    """The rows of one split list: x (n_rows, n_values) float32 (or MappedRows), y (n_rows, n_classes) float32,
    rows (their part of the features' tracks table), and the listed tracks that have no rows (extract skipped them)."""
    x: object
    y: np.ndarray
    rows: pd.DataFrame
    without_rows: list


def load_set(name, in_memory=True, split=SPLIT):
    """The Subset of every row whose track `split/<name>.txt` lists, in the list's order.

    x is read into memory, or else left on disk as MappedRows.
    """
    table = read_tracks(FEATURE_TRACKS)
    rows_of = table.groupby("track_id", sort=False).indices
    listed = listed_tracks(name, split)
    rows = np.concatenate([rows_of[track] for track in listed if track in rows_of] or [np.empty(0, int)])
    matrix = np.load(FEATURE_MATRIX, mmap_mode="r")
    x = matrix[rows] if in_memory else MappedRows(matrix, rows)
    return Subset(x, np.load(ONEHOT)[rows], table.iloc[rows].reset_index(drop=True),
                  [track for track in listed if track not in rows_of])


def classes():
    """The labels of the one-hot columns, in order."""
    return json.loads(CLASSES.read_text(encoding="utf-8"))


def feature_recipe():
    """The feature params the rows were made with (written by extract)."""
    return json.loads(FEATURE_PARAMS.read_text())


def data_source():
    """Where the rows came from (data.source: "gtzan", "demo", "folder", "table" or "fma"), recorded by every stage
    since download."""
    return read_tracks(FEATURE_TRACKS)["source"].iat[0]
