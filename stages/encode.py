"""Stage `encode`: one-hot labels, row i for row i of the features.

Output in data/labels/: `classes.json`, the labels found in the data, sorted: the one
source of truth for the one-hot columns, the model's outputs and every per-label report;
and `onehot.npy` (n_rows, n_classes) float32.
"""

import json

import numpy as np

from stages.core.console import log
from stages.core.errors import run
from stages.core.files import atomic_output
from stages.core.paths import CLASSES, FEATURE_TRACKS, LABELS, ONEHOT
from stages.core.tracks import read_tracks


def one_hot(labels):
    """(n_rows,) label names -> (classes, (n_rows, n_classes) float32 with one 1 per row).

    The seed's encoding, `np.unique(labels, return_inverse=True)`: classes sorted, for
    GTZAN its ten genres in alphabetical order.
    """
    classes, index = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    return [str(c) for c in classes], np.eye(len(classes), dtype=np.float32)[index]


def main():
    labels = read_tracks(FEATURE_TRACKS)["label"]
    classes, onehot = one_hot(labels)
    with atomic_output(LABELS) as staging:
        staging.mkdir()
        np.save(staging / ONEHOT.name, onehot)
        (staging / CLASSES.name).write_text(json.dumps(classes, ensure_ascii=False) + "\n", encoding="utf-8")
    log(f"encode: {len(labels)} rows x {len(classes)} classes")


if __name__ == "__main__":
    run(main)
