"""The feature matrix on disk: written a row at a time, read a few rows at a time."""

from typing import NamedTuple

import numpy as np

NPY_HEADER = 128
"""Bytes of a version 1.0 .npy header for a 2-D float32 matrix of any realistic shape."""


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
