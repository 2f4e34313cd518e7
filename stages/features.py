"""Feature rows of audio: the seed's MFCC values or musicnn embeddings, one row per window."""

import functools

import librosa
import numpy as np
import scipy.fft

from stages.audio import first_window_seconds, load_audio, windows
from stages.common import ClipTooShort, UserError
from stages.musicnn import LAYERS, musicnn_embedding
from stages.paths import MUSICNN_CHECKPOINT


@functools.lru_cache
def _mel_basis(sr, n_fft, n_mels):
    """(n_mels, 1 + n_fft // 2) float32, built once per process rather than once per clip."""
    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)


@functools.lru_cache
def _hann(n_fft):
    return librosa.filters.get_window("hann", n_fft, fftbins=True).astype(np.float32)


def mfcc_matrix(y, sr=22050, n_mfcc=20, n_fft=2048, hop_length=512, n_mels=128):
    """librosa.feature.mfcc(y=y, ...) with its defaults: (..., n_samples) float32 -> (..., n_mfcc, frames) float32.

    The same steps as librosa (zero-padded centred frames, Hann window, power, mel, dB, DCT),
    with the frames laid out contiguously for the FFT and the filter bank built once:
    a fifth less time per clip, within 2e-7 of librosa after the seed's scaling (tested).
    """
    padded = np.pad(y, [(0, 0)] * (y.ndim - 1) + [(n_fft // 2, n_fft // 2)])
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[..., ::hop_length, :]
    spectrum = scipy.fft.rfft(frames * _hann(n_fft), axis=-1)              # (..., frames, 1 + n_fft // 2)
    mel = (spectrum.real ** 2 + spectrum.imag ** 2) @ _mel_basis(sr, n_fft, n_mels).T
    # power_to_db's top_db floor is taken per window: over a stack, librosa would take the loudest window's.
    decibels = librosa.power_to_db(np.swapaxes(mel, -1, -2), top_db=None)
    decibels = np.maximum(decibels, decibels.max(axis=(-2, -1), keepdims=True) - 80.0)
    return librosa.feature.mfcc(S=decibels, n_mfcc=n_mfcc)


def mfcc_values(y, sr=22050, n_mfcc=20, n_fft=2048, hop_length=512, n_mels=128, n_values=25000):
    """The seed's recipe: MFCC divided by its maximum absolute value, flattened row-major, cut.

    y: (..., n_samples) float32 audio; every leading index is one clip or window.
    Returns (..., n_values) float32. Raises ClipTooShort if the audio gives fewer values.
    """
    mfcc = mfcc_matrix(y, sr, n_mfcc, n_fft, hop_length, n_mels)
    mfcc /= np.abs(mfcc).max(axis=(-2, -1), keepdims=True)
    flat = mfcc.reshape(*mfcc.shape[:-2], -1)
    if flat.shape[-1] < n_values:
        seconds = y.shape[-1] / sr
        raise ClipTooShort(f"{seconds:.1f} s of audio gives {flat.shape[-1]} MFCC values, "
                           f"fewer than n_values={n_values}")
    return flat[..., :n_values].astype(np.float32, copy=False)


KINDS = {"mfcc": mfcc_values, "musicnn": musicnn_embedding}
"""features.kind -> function(y, sr, **params['features'][kind]) -> (..., n_values) float32."""

WIDTHS = {"mfcc": lambda params: params["n_values"], "musicnn": lambda params: LAYERS[params["layer"]]}
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
    return features | {"musicnn": features["musicnn"] | {"checkpoint": str(MUSICNN_CHECKPOINT.resolve())}}


def require_weights(features):
    """Raise UserError, saying what to run, when the feature kind's pretrained weights are missing."""
    if features["kind"] == "musicnn" and not (MUSICNN_CHECKPOINT / ".index").is_file():
        raise UserError(f"features.kind=musicnn needs the checkpoint in {MUSICNN_CHECKPOINT}: "
                        "run `dvc repro pretrained`")


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
