"""The seed's features: MFCC of a 30 s window, scaled by its largest value, flattened and cut."""

import functools

import librosa
import numpy as np
import scipy.fft

from stages.core.errors import UserError
from stages.core.params import Features, Mfcc
from stages.features.audio import WINDOW_SECONDS, ClipTooShort


@functools.lru_cache
def _mel_basis(sr, n_fft, n_mels):
    """(n_mels, 1 + n_fft // 2) float32, built once per process rather than once per clip."""
    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)


@functools.lru_cache
def _hann(n_fft):
    return librosa.filters.get_window("hann", n_fft, fftbins=True).astype(np.float32)


def mfcc_matrix(y, sr=Features.sample_rate, n_mfcc=Mfcc.n_mfcc, n_fft=Mfcc.n_fft, hop_length=Mfcc.hop_length,
                n_mels=Mfcc.n_mels):
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


def mfcc_values(y, sr=Features.sample_rate, n_mfcc=Mfcc.n_mfcc, n_fft=Mfcc.n_fft, hop_length=Mfcc.hop_length,
                n_mels=Mfcc.n_mels, n_values=Mfcc.n_values):
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


def check_width(mfcc, sample_rate=Features.sample_rate, seconds=WINDOW_SECONDS):
    """Raise UserError when a `seconds` window cannot give `n_values` of the `mfcc` params group (with
    sample_rate): a clip would be called too short when the cause is n_values."""
    frames = 1 + int(seconds * sample_rate) // mfcc["hop_length"]
    most = mfcc["n_mfcc"] * frames
    if mfcc["n_values"] > most:
        raise UserError(f"features.mfcc.n_values={mfcc['n_values']} is more than a {seconds:g} s window gives with "
                        f"n_mfcc={mfcc['n_mfcc']}: {mfcc['n_mfcc']} x {frames} frames = {most}; set n_values to at "
                        f"most {most}, or raise n_mfcc")
