"""Stage `extract`: the feature rows of every usable file, in parallel.

Output in data/features/: `features.npy` (n_rows, n_values) float32, one row per window
(features.windows); `tracks.csv` (row i describes row i: track_id, label, window, the window's
start and duration in s, source); `skipped.csv` (track_id, reason) for the files that could not be used;
`params.json`, the feature params the rows were made with (features.recipe). From a feature
table (data.source=table) the rows are the table's (stages/table.py).
"""

import json

import numpy as np
import pandas as pd

from stages.audio import WINDOW_SECONDS, Unreadable
from stages.catalogue import SHOWN
from stages.common import ClipTooShort, UserError, atomic_output, log, progress, run
from stages.dataset import RowWriter, in_catalogue_order, is_duplicate, read_tracks
from stages.features import feature_width, file_rows, recipe, require_weights
from stages.params import load_params
from stages.paths import FEATURE_MATRIX, FEATURE_PARAMS, FEATURE_TRACKS, FEATURES, RAW_TRACKS, SKIPPED
from stages.workers import results


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
    tracks = in_catalogue_order(read_tracks(RAW_TRACKS))
    with atomic_output(FEATURES) as staging:
        if tracks["source"].iat[0] == "table":
            from stages.table import extract_table  # a table's code only where a table is read
            rows, skipped, made_with = extract_table(tracks, params["data"]["table_ignore"], staging)
        else:
            require_weights(features)
            rows, skipped = extract(tracks, features, staging, features["n_jobs"], features["scheduler"])
            made_with = recipe(features)
        for row in skipped.head(SHOWN).itertuples():
            log(f"extract: skipped {row.track_id}: {row.reason}")
        if len(skipped) > SHOWN:
            log(f"extract: ... and {len(skipped) - SHOWN} more skipped: see {SKIPPED}")
        empty = sorted(set(tracks["label"]) - set(rows["label"]))
        if empty:
            raise UserError(f"no usable file left for label {', '.join(empty)}: see the skipped files above")
        rows.to_csv(staging / FEATURE_TRACKS.name, index=False)
        skipped.to_csv(staging / SKIPPED.name, index=False)
        (staging / FEATURE_PARAMS.name).write_text(json.dumps(made_with, indent=2, sort_keys=True) + "\n")
    width = np.load(FEATURE_MATRIX, mmap_mode="r").shape[1]
    log(f"extract: {len(rows)} rows x {width} values ({made_with['kind']}) from {rows['track_id'].nunique()} "
        f"files, {len(skipped)} skipped")


if __name__ == "__main__":
    run(main)
