"""The training, validation and test sets as train and evaluate read them: rows, one-hot labels, classes,
and what the rows were made with."""

import json
from typing import NamedTuple

import numpy as np
import pandas as pd

from stages.core.paths import CLASSES, FEATURE_MATRIX, FEATURE_PARAMS, FEATURE_TRACKS, ONEHOT, SPLIT
from stages.core.rows import MappedRows
from stages.core.tracks import listed_tracks, read_tracks


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
