"""Audio files: decoding, checksums and the windows that features are computed on."""

import hashlib
import io
import os
import warnings
import wave
import zipfile
from contextlib import contextmanager

import audioread.exceptions
import librosa
import numpy as np
import soundfile as sf

from stages.core.console import redirect_fd
from stages.core.errors import no_space_left
from stages.core.params import Features

AUDIO_SUFFIXES = {".wav", ".au", ".flac", ".ogg", ".mp3", ".m4a", ".aiff", ".aif", ".opus"}
"""What the folder source and predict look for; anything librosa decodes."""

WINDOW_SECONDS = 30.0
"""GTZAN's clip length: the audio the seed's features were designed for (661,500 samples at 22,050 Hz)."""

WHOLE_SECONDS = 31.0
"""A file up to this long is one window, whole: 30 s plus GTZAN's own spread (its clips run 29.9 to 30.7 s),
so that GTZAN's rows stay the seed's byte for byte. A longer file is cut into exact 30 s windows."""

DECODE_ERRORS = (sf.SoundFileError, audioread.exceptions.DecodeError, EOFError)
"""What the decoders raise for a file that is not audio they can read (EOFError: audioread finds no stream)."""


class ClipTooShort(ValueError):
    """The audio is too short for the features asked for."""


class Unreadable(Exception):
    """One file cannot be used: its reason is recorded and the others go on."""


class CannotRead(Unreadable):
    """The file's bytes cannot be read here (missing, no permission): on a Dask worker, the worker's fault
    if the driver can read them."""


def decoder_message(error):
    """A decoder's reason in one line, without the file's path (which may be a temporary folder's)."""
    message = getattr(error, "error_string", None) or str(error)  # libsndfile's own words, without the path
    return " ".join(message.split()) or "no audio stream found"


IN_ARCHIVE = "::"
"""`<archive.zip>::<member>`: a file read where it lies, inside an uncompressed zip (FMA's archives)."""


@contextmanager
def opened(path):
    """The file `path` names, as a path or, for `<archive.zip>::<member>`, as the member's open binary stream."""
    if IN_ARCHIVE not in str(path):
        yield path
        return
    archive, member = str(path).split(IN_ARCHIVE, 1)
    try:
        with zipfile.ZipFile(archive) as zipped, zipped.open(member) as stream:
            yield stream
    except (zipfile.BadZipFile, KeyError) as error:
        raise CannotRead(f"cannot read: {error}")


def absolute(path):
    """`path` (a file, or IN_ARCHIVE a member of an archive) with the file's path made absolute."""
    file, *member = str(path).split(IN_ARCHIVE, 1)
    return IN_ARCHIVE.join([os.path.abspath(file), *member])


def readable_here(path):
    """Whether this process can read the file (or the archive) that `path` names."""
    return os.access(str(path).split(IN_ARCHIVE, 1)[0], os.R_OK)


def load_audio(path, sample_rate=Features.sample_rate, seconds=None):
    """Decode any file librosa reads: (n_samples,) float32, mono, at `sample_rate` Hz; only its first
    `seconds` if given (an hour-long mix then costs no more memory than a clip). `path` may name a
    member of a zip archive (IN_ARCHIVE).

    Raises Unreadable with the reason for a file that is missing, unreadable or not audio;
    the decoders' own complaints on stderr are silenced.
    """
    try:
        with (opened(path) as source, open(os.devnull, "w") as devnull, redirect_fd(2, devnull),
              warnings.catch_warnings()):
            warnings.simplefilter("ignore")
            y, _ = librosa.load(source, sr=sample_rate, mono=True, duration=seconds)
    except DECODE_ERRORS as error:
        raise Unreadable(f"cannot decode: {decoder_message(error)}")
    except OSError as error:
        if no_space_left(error):  # the machine's problem, not the file's
            raise
        raise CannotRead(f"cannot read: {error.strerror or error}")
    return y


def audio_md5(path):
    """md5 of the audio re-written as a plain 16-bit PCM WAV.

    For a clip of GTZAN's .wav edition this is the md5 of the file itself, so it is
    comparable with the official list whether the clip came as .wav or .au.
    Raises Unreadable for a file soundfile cannot decode.
    """
    try:
        samples, sr = sf.read(path, dtype="int16", always_2d=True)
    except sf.SoundFileError as error:
        raise Unreadable(f"cannot decode: {decoder_message(error)}")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(samples.shape[1])
        out.setsampwidth(2)
        out.setframerate(sr)
        out.writeframes(samples.tobytes())
    return hashlib.md5(buffer.getvalue()).hexdigest()


def windows(y, sr=Features.sample_rate, every=False, seconds=WINDOW_SECONDS, whole_seconds=WHOLE_SECONDS):
    """Cut audio y (n_samples,) into (n_windows, window_samples) windows of `seconds`.

    A file up to `whole_seconds` long is one window, whole: a GTZAN clip (29.9 to 30.7 s) is
    exactly the seed's input. A longer file gives windows of exactly `seconds` (round(seconds * sr)
    samples), so that a column of the rows means the same coefficient at the same time in every
    window: all of them with `every`, else the first only. A final part shorter than a window
    is dropped. Raises ClipTooShort for empty audio.
    """
    if len(y) == 0:
        raise ClipTooShort("the file holds no audio samples")
    if len(y) <= round(whole_seconds * sr):
        return y[np.newaxis]
    window = round(seconds * sr)
    n_windows = len(y) // window if every else 1
    return y[:n_windows * window].reshape(n_windows, window)


def first_window_seconds(whole_seconds=WHOLE_SECONDS):
    """Seconds of audio to decode for the first window only: enough to tell a whole clip from a longer file."""
    return whole_seconds + 1.0
