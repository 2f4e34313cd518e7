"""Stage `extract`: the feature rows of every usable file, in parallel.

Output in data/features/: `features.npy` (n_rows, n_values) float32, one row per window
(features.windows); `tracks.csv` (row i describes row i: track_id, label, window, the window's
start and duration in s, source); `skipped.csv` (track_id, reason) for the files that could not be used;
`params.json`, the feature params the rows were made with (features.recipe).
"""

import json

import numpy as np
import pandas as pd

from stages.audio import WINDOW_SECONDS, Unreadable
from stages.catalogue import SHOWN
from stages.common import ClipTooShort, UserError, atomic_output, log, progress, run
from stages.params import load_params
from stages.dataset import in_catalogue_order, is_duplicate, read_tracks
from stages.features import feature_width, file_rows, recipe, require_weights
from stages.paths import FEATURE_MATRIX, FEATURE_PARAMS, FEATURE_TRACKS, FEATURES, RAW_TRACKS, SKIPPED
from stages.workers import results

NPY_HEADER = 128
"""Bytes of a version 1.0 .npy header for a 2-D float32 matrix of any realistic shape."""


def _featurize_file(task):
    """(path, features) -> (rows, seconds, None), or (None, 0, reason) for a file that cannot be used."""
    path, features = task
    try:
        rows, seconds = file_rows(path, features)
        return rows, seconds, None
    except ClipTooShort as error:
        return None, 0, f"too short for the features: {error}"
    except Unreadable as error:
        return None, 0, str(error)


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


def file_results(paths, features, n_jobs=0, scheduler=None):
    """Yield (rows (n_windows, n_values) float32 or None, seconds, reason or None) per path, in order."""
    yield from results(_featurize_file, [(str(path), features) for path in paths], n_jobs, scheduler)


def extract(tracks, features, folder, n_jobs=0, scheduler=None):
    """Write the features of `tracks` (RAW_TRACKS rows) into the new folder `folder`.

    Returns (row table, skipped table): one row per window of the usable files, in the order of `tracks`.
    """
    width = feature_width(features)
    duplicate = is_duplicate(tracks)
    skipped = [(row.track_id, row.status) for row in tracks[duplicate].itertuples()]
    todo = tracks[~duplicate]
    rows_table = []
    folder.mkdir()
    writer = RowWriter(folder / FEATURE_MATRIX.name, width)
    try:
        done = file_results(todo["path"].tolist(), features, n_jobs, scheduler)
        for track, (rows, seconds, reason) in zip(todo.itertuples(), progress(done, len(todo), "extract")):
            if reason is not None:
                skipped.append((track.track_id, reason))
                continue
            writer.write(rows)
            rows_table += [(track.track_id, track.label, window, round(window * WINDOW_SECONDS, 3),
                            round(seconds, 3), track.source) for window in range(len(rows))]
    finally:
        writer.close()
    rows_table = pd.DataFrame(rows_table, columns=["track_id", "label", "window", "start", "duration", "source"])
    return rows_table, pd.DataFrame(skipped, columns=["track_id", "reason"])


def main():
    params = load_params()
    features = params["features"]
    require_weights(features)
    tracks = in_catalogue_order(read_tracks(RAW_TRACKS))
    with atomic_output(FEATURES) as staging:
        rows, skipped = extract(tracks, features, staging, features["n_jobs"], features["scheduler"])
        for row in skipped.head(SHOWN).itertuples():
            log(f"extract: skipped {row.track_id}: {row.reason}")
        if len(skipped) > SHOWN:
            log(f"extract: ... and {len(skipped) - SHOWN} more skipped: see {SKIPPED}")
        empty = sorted(set(tracks["label"]) - set(rows["label"]))
        if empty:
            raise UserError(f"no usable file left for label {', '.join(empty)}: see the skipped files above")
        rows.to_csv(staging / FEATURE_TRACKS.name, index=False)
        skipped.to_csv(staging / SKIPPED.name, index=False)
        (staging / FEATURE_PARAMS.name).write_text(json.dumps(recipe(features), indent=2, sort_keys=True) + "\n")
    log(f"extract: {len(rows)} rows x {feature_width(features)} values ({features['kind']}) "
        f"from {rows['track_id'].nunique()} files, {len(skipped)} skipped")


if __name__ == "__main__":
    run(main)
