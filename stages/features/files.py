"""Feature rows of audio files by the `features` params group, on local processes or a Dask cluster."""

import numpy as np

from stages.core.errors import UserError
from stages.core.params import Features
from stages.core.paths import musicnn_checkpoint
from stages.features.audio import (
    CannotRead,
    ClipTooShort,
    Unreadable,
    absolute,
    first_window_seconds,
    load_audio,
    readable_here,
    windows,
)
from stages.features.mfcc import mfcc_values
from stages.features.musicnn import embedding_width, musicnn_embedding
from stages.features.workers import results

KINDS = {"mfcc": mfcc_values, "musicnn": musicnn_embedding}
"""features.kind -> function(y, sr, **params['features'][kind]) -> (..., n_values) float32."""

WIDTHS = {"mfcc": lambda params: params["n_values"],
          "musicnn": lambda params: embedding_width(params["model"], params["layer"], params["pooling"])}
"""features.kind -> function(params['features'][kind]) -> n_values, known before any audio is read."""


def feature_width(features):
    """Values per clip of the `features` params group."""
    return WIDTHS[features["kind"]](features[features["kind"]])


def featurize(y, features):
    """Feature rows of audio `y` (..., n_samples) at features['sample_rate'], by the `features` params group."""
    kind = features["kind"]
    return KINDS[kind](y, sr=features["sample_rate"], **features[kind])


WORKER_SETTINGS = ("n_jobs", "scheduler")
"""Params of the `features` group that say how, not what: the rows do not depend on them."""

RECIPE = ("kind", "sample_rate", "windows")
"""Params of the `features` group that decide the rows, besides the chosen kind's own group."""


def recipe(features):
    """The params that decide the rows: RECIPE and the chosen kind's group (not the worker settings, not the
    other kinds' groups)."""
    return {key: features[key] for key in (*RECIPE, features["kind"])}


def worker_features(features):
    """The `features` params group as a worker needs it, wherever it runs: with the musicnn checkpoint's absolute
    path."""
    if features["kind"] != "musicnn":
        return features
    checkpoint = musicnn_checkpoint(features["musicnn"]["model"])
    return features | {"musicnn": features["musicnn"] | {"checkpoint": str(checkpoint.resolve())}}


def require_weights(features):
    """Raise UserError, saying what to run, when the feature kind's pretrained weights are missing."""
    if features["kind"] != "musicnn":
        return
    checkpoint = musicnn_checkpoint(features["musicnn"]["model"])
    if not (checkpoint / ".index").is_file():
        raise UserError(f"features.kind=musicnn needs the checkpoint in {checkpoint}: run `dvc repro pretrained`")


def file_rows(path, features, batch=4):
    """Feature rows of one audio file by the `features` params group, and the length of a window in s.

    Returns ((n_windows, n_values) float32, seconds). With features.windows=first only the start
    of the file is decoded. Windows are featurized `batch` at a time, so a long song never needs
    all its spectrograms at once. Raises audio.Unreadable or ClipTooShort.
    """
    sr, every = features["sample_rate"], features["windows"] == "all"
    y = load_audio(path, sr, seconds=None if every else first_window_seconds())
    cut = windows(y, sr, every=every)
    rows = np.concatenate([featurize(cut[start:start + batch], features) for start in range(0, len(cut), batch)])
    return rows, cut.shape[1] / sr


def _featurize_file(task):
    """(path, features) -> (rows, seconds, None), or (None, 0, reason) for a file that cannot be used."""
    path, features = task
    try:
        rows, seconds = file_rows(path, features)
        return rows, seconds, None
    except ClipTooShort as error:
        return None, 0, f"too short for the features: {error}"
    except CannotRead as error:
        return None, 0, CannotRead(str(error))
    except Unreadable as error:
        return None, 0, str(error)


def _worker_could_not_read(task, result):
    """Whether a Dask worker could not read a file that this machine can: the worker's failure, not the file's."""
    return isinstance(result[2], CannotRead) and readable_here(task[0])


def file_results(paths, features, n_jobs=Features.n_jobs, scheduler=Features.scheduler):
    """Yield (rows (n_windows, n_values) float32 or None, seconds, reason or None) per path, in order.

    Paths are made absolute here, where they are known to be right: a worker may run in any folder.
    """
    tasks = [(absolute(path), worker_features(features)) for path in paths]
    for rows, seconds, reason in results(_featurize_file, tasks, n_jobs, scheduler, name_of=lambda task: task[0],
                                         redo_elsewhere=_worker_could_not_read):
        yield rows, seconds, None if reason is None else str(reason)
