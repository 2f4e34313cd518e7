"""Stage `extract`: the feature rows of every usable file, in parallel.

Output in data/features/: `features.npy` (n_rows, n_values) float32, one row per window
(features.windows); `tracks.csv` (row i describes row i: track_id, label, window, the window's
start and duration in s, source); `skipped.csv` (track_id, reason) for the files that could not be used;
`params.json`, the feature params the rows were made with (features.recipe). From a feature
table (data.source=table) the rows are the table's (stages/features/table.py).
"""

import json
import os

import numpy as np

from stages.core.console import log, progress
from stages.core.errors import UserError, run
from stages.core.files import atomic_output
from stages.core.params import Features, load_params
from stages.core.paths import FEATURE_MATRIX, FEATURE_PARAMS, FEATURE_TRACKS, FEATURES, RAW_TRACKS, SKIPPED
from stages.core.rows import Extracted, RowWriter
from stages.core.tracks import RowsTable, SkippedTable, in_catalogue_order, is_unused, read_tracks
from stages.features.audio import IN_ARCHIVE, WINDOW_SECONDS
from stages.features.files import feature_width, file_results, recipe, require_weights
from stages.features.mfcc import check_width
from stages.sources.catalogue import SHOWN


def extract(tracks, features, folder, n_jobs=Features.n_jobs, scheduler=Features.scheduler):
    """Write the features of `tracks` (RAW_TRACKS rows) into the new folder `folder`, in the order of `tracks`:
    features.npy, tracks.csv (one row per window of each usable file) and skipped.csv, all as the rows come.

    Returns Extracted.
    """
    width = feature_width(features)
    unused = is_unused(tracks)
    todo = tracks[~unused]
    folder.mkdir()
    matrix, table = RowWriter(folder / FEATURE_MATRIX.name, width), RowsTable(folder / FEATURE_TRACKS.name)
    skipped = SkippedTable(folder / SKIPPED.name, SHOWN)
    for row in tracks[unused].itertuples():
        skipped.write(row.track_id, row.status)
    try:
        done = file_results(todo["path"].tolist(), features, n_jobs, scheduler)
        for track, (rows, seconds, reason) in zip(todo.itertuples(), progress(done, len(todo), "extract")):
            if reason is not None:
                skipped.write(track.track_id, reason)
                continue
            matrix.write(rows)
            windows = range(len(rows))
            table.write(track.track_id, track.label, windows, track.source,
                        [round(window * WINDOW_SECONDS, 3) for window in windows], round(seconds, 3))
    finally:
        matrix.close()
        table.close()
        skipped.close()
    return Extracted(table.n_rows, table.n_tracks, table.labels, skipped.count, skipped.first)


def check_audio_here(tracks):
    """Raise UserError naming the first file (or archive) the catalogue lists that is not on this machine: a clone
    gets the catalogue from `dvc pull`, but not what the sources read in place (FMA's zips, a music folder)."""
    used = tracks.loc[~is_unused(tracks) & (tracks["path"] != ""), "path"]
    files = dict.fromkeys(path.split(IN_ARCHIVE, 1)[0] for path in used)
    missing = next((file for file in files if not os.path.exists(file)), None)
    if missing is not None:
        raise UserError(f"the audio the catalogue lists is missing here: {missing} (a fresh clone or a moved copy?): "
                        "run `dvc repro --force download` to get or find it again")


def main():
    params = load_params()
    features = params["features"]
    tracks = in_catalogue_order(read_tracks(RAW_TRACKS))
    with atomic_output(FEATURES) as staging:
        if tracks["source"].iat[0] == "table":
            from stages.features.table import extract_table  # a table's code only where a table is read
            extracted, made_with = extract_table(tracks, params["data"]["table_ignore"], staging)
        else:
            require_weights(features)
            if features["kind"] == "mfcc":
                check_width(features["mfcc"], features["sample_rate"])
            check_audio_here(tracks)
            extracted = extract(tracks, features, staging, features["n_jobs"], features["scheduler"])
            made_with = recipe(features)
        for track_id, reason in extracted.first_skipped:
            log(f"extract: skipped {track_id}: {reason}")
        if extracted.n_skipped > len(extracted.first_skipped):
            log(f"extract: ... and {extracted.n_skipped - len(extracted.first_skipped)} more skipped: see {SKIPPED}")
        empty = sorted(set(tracks.loc[~is_unused(tracks), "label"]) - extracted.labels)
        if empty:
            raise UserError(f"no usable file left for label {', '.join(empty)}: see the skipped files above")
        (staging / FEATURE_PARAMS.name).write_text(json.dumps(made_with, indent=2, sort_keys=True) + "\n")
    width = np.load(FEATURE_MATRIX, mmap_mode="r").shape[1]
    log(f"extract: {extracted.n_rows} rows x {width} values ({made_with['kind']}) from {extracted.n_tracks} "
        f"files, {extracted.n_skipped} skipped")


if __name__ == "__main__":
    run(main)
