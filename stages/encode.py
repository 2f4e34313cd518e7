"""Stage `encode`: one-hot genre labels, row i for row i of the features.

Output in data/labels/: `onehot.npy` (n_clips, 10) float32 and `classes.json`,
the genre of each column.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from stages.common import GENRES, atomic_output, log, run

FEATURE_TRACKS = Path("data/features/tracks.csv")
LABELS = Path("data/labels")


def one_hot(genres, classes=GENRES):
    """(n_clips,) genre names -> (n_clips, len(classes)) float32, one 1 per row.

    The columns are always all of `classes`, in their order: for GTZAN's full set this
    is the seed's `np.unique(labels, return_inverse=True)` encoding, and a genre absent
    from a run keeps its column.
    """
    column = {genre: i for i, genre in enumerate(classes)}
    unknown = sorted(set(genres) - set(column))
    if unknown:
        raise ValueError(f"genres not among the classes: {unknown}")
    return np.eye(len(classes), dtype=np.float32)[[column[genre] for genre in genres]]


def main():
    genres = pd.read_csv(FEATURE_TRACKS)["genre"].to_numpy()
    absent = [genre for genre in GENRES if genre not in set(genres)]
    if absent:
        log(f"encode: no clips of {', '.join(absent)}; their columns stay, all zeros")
    with atomic_output(LABELS) as staging:
        staging.mkdir()
        np.save(staging / "onehot.npy", one_hot(genres))
        (staging / "classes.json").write_text(json.dumps(list(GENRES)) + "\n")
    log(f"encode: {len(genres)} labels x {len(GENRES)} classes")


if __name__ == "__main__":
    run(main)
