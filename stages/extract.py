"""Stage `extract`: one feature row per clip, in parallel.

Output in data/features/: `features.npy` (n_clips, n_values) float32,
`tracks.csv` (row i describes row i: track_id, genre, duration in s, frames, source)
and `skipped.csv` (track_id, reason) for clips that could not be used.
"""

import ctypes
import functools
import multiprocessing
import os
import warnings
from contextlib import ExitStack, contextmanager
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import scipy.fft
from threadpoolctl import threadpool_limits

from stages.common import GENRES, ClipTooShort, UserError, atomic_output, load_params, log, progress, run
from stages.musicnn import CHECKPOINT, LAYERS, musicnn_embedding

RAW = Path("data/raw")
FEATURES = Path("data/features")


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
    return librosa.feature.mfcc(S=librosa.power_to_db(np.swapaxes(mel, -1, -2)), n_mfcc=n_mfcc)


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


def load_audio(path, sample_rate=22050):
    """Decode any file librosa reads, as mono float32 at `sample_rate` Hz.

    Decoders' own complaints about a broken file are silenced: the caller reports the error.
    """
    with open(os.devnull, "w") as devnull, redirect_fd(2, devnull), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y, _ = librosa.load(path, sr=sample_rate, mono=True)
    return y


@contextmanager
def redirect_fd(fd, file):
    """Point the OS-level file descriptor `fd` at `file` for a while (C libraries write there directly)."""
    saved = os.dup(fd)
    try:
        os.dup2(file.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _featurize_file(task):
    """(path, features) -> (row, n_samples, None) or (None, 0, reason): one bad clip never stops the stage."""
    path, features = task
    try:
        y = load_audio(path, features["sample_rate"])
        return featurize(y, features), len(y), None
    except ClipTooShort as error:
        return None, 0, f"too short: {error}"
    except Exception as error:  # decoders raise many types; the reason is recorded, not hidden
        return None, 0, f"cannot decode: {error.__class__.__name__}: {error}".strip()


def _keep_freed_memory():
    """Let glibc keep freed memory: each clip allocates some 30 MB of temporaries, and handing
    them back to the kernel to fault them in again for the next clip costs a sixth of the run."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc: nothing to tune
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    libc.mallopt(m_mmap_threshold, 256 << 20)
    libc.mallopt(m_trim_threshold, 512 << 20)
    libc.mallopt(m_top_pad, 64 << 20)


def _prepare_worker():
    # One BLAS thread per process: two workers with two threads each would fight over two
    # cores, and rows computed with other thread counts differ in the last bits.
    threadpool_limits(1)
    _keep_freed_memory()


def extract(paths, features, n_jobs=0):
    """Feature rows for the audio files `paths`, in their order, whatever `n_jobs`.

    Returns (matrix, n_samples, reasons): matrix (n_usable, n_values) float32 holds the
    rows of the clips whose reason is None; n_samples is each clip's length (0 where unusable).
    """
    n_jobs = n_jobs or os.cpu_count()
    tasks = [(path, features) for path in paths]
    rows, n_samples, reasons = [], [], []
    with ExitStack() as stack:
        if n_jobs > 1:
            pool = stack.enter_context(multiprocessing.get_context("fork").Pool(n_jobs, _prepare_worker))
            results = pool.imap(_featurize_file, tasks, chunksize=4)
        else:
            stack.enter_context(threadpool_limits(1))  # as in the workers, and undone after
            _keep_freed_memory()
            results = map(_featurize_file, tasks)
        for row, length, reason in progress(results, len(tasks), "extract"):
            if row is not None:
                rows.append(row)
            n_samples.append(length)
            reasons.append(reason)
    width = rows[0].shape[-1] if rows else 0
    matrix = np.stack(rows) if rows else np.empty((0, width), np.float32)
    return matrix, np.array(n_samples), reasons


def main():
    params = load_params()
    features = params["features"]
    if features["kind"] == "musicnn" and not (CHECKPOINT / ".index").is_file():
        raise UserError(f"features.kind=musicnn needs the checkpoint in {CHECKPOINT}: run `dvc repro pretrained`")
    tracks = pd.read_csv(RAW / "tracks.csv")
    # Stable row order: genres in GTZAN's order, then clips by track id.
    tracks["genre"] = pd.Categorical(tracks["genre"], categories=GENRES, ordered=True)
    tracks = tracks.sort_values(["genre", "track_id"]).reset_index(drop=True)
    tracks["genre"] = tracks["genre"].astype(str)

    matrix, n_samples, reasons = extract([RAW / p for p in tracks["path"]], features, features["n_jobs"])
    usable = np.array([reason is None for reason in reasons], dtype=bool)
    n_samples = n_samples[usable]
    kept = tracks[usable].assign(duration=(n_samples / features["sample_rate"]).round(3),
                                 frames=1 + n_samples // features["mfcc"]["hop_length"])
    skipped = tracks.loc[~usable, ["track_id"]].assign(reason=[r for r in reasons if r is not None])

    for row in skipped.itertuples():
        log(f"extract: skipped {row.track_id}: {row.reason}")
    empty = sorted(set(GENRES) - set(kept["genre"]), key=GENRES.index)
    if empty:
        raise UserError(f"no usable clip left for genre {', '.join(empty)}: see the skipped clips above")

    with atomic_output(FEATURES) as staging:
        staging.mkdir()
        np.save(staging / "features.npy", matrix)
        kept[["track_id", "genre", "duration", "frames", "source"]].to_csv(staging / "tracks.csv", index=False)
        skipped.to_csv(staging / "skipped.csv", index=False)
    log(f"extract: {matrix.shape[0]} clips x {matrix.shape[1]} values ({features['kind']}), "
        f"{len(skipped)} skipped")


if __name__ == "__main__":
    run(main)
