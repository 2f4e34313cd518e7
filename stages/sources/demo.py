"""Source `demo` (run by stage `download`): a synthetic GTZAN-shaped corpus, made offline.

Every genre gets its own audible signature: note rate, pitch range,
timbre (number and decay of harmonics) and the level and colour of noise.
Clips vary within a genre (notes, tempo, loudness), so a classifier has to
learn the signature, not one waveform. Output as the GTZAN source's.
"""

import io
from pathlib import Path

import numpy as np
import soundfile as sf

from stages.core.console import log
from stages.core.files import atomic_output
from stages.core.params import Demo, load_params
from stages.core.paths import RAW, RAW_TRACKS
from stages.sources.catalogue import clip_catalogue, summarize

# genre: (notes per minute, lowest and highest MIDI note, harmonics, harmonic decay, noise level, noise brightness)
SIGNATURES = {
    "blues":     (80,  40, 55, 6,  0.6,  0.02, 0.3),
    "classical": (60,  60, 84, 3,  0.3,  0.005, 0.1),
    "country":   (110, 50, 67, 8,  0.7,  0.03, 0.5),
    "disco":     (240, 45, 60, 4,  0.5,  0.10, 0.9),
    "hiphop":    (90,  30, 45, 2,  0.4,  0.15, 0.2),
    "jazz":      (140, 55, 75, 5,  0.45, 0.01, 0.6),
    "metal":     (340, 35, 50, 12, 0.9,  0.30, 1.0),
    "pop":       (115, 60, 76, 6,  0.55, 0.05, 0.7),
    "reggae":    (75,  38, 52, 3,  0.35, 0.04, 0.4),
    "rock":      (140, 42, 60, 10, 0.8,  0.15, 0.8),
}


def synthesize_clip(genre, rng, sr=22050, duration=30.0):
    """One clip of `genre`: `(round(sr * duration),)` float32 in [-1, 1]."""
    rate, low, high, n_harmonics, decay, noise_level, brightness = SIGNATURES[genre]
    n_samples = round(sr * duration)
    note_length = int(sr * 60 / (rate * rng.uniform(0.95, 1.05)))
    n_notes = -(-n_samples // note_length)
    midi = rng.integers(low, high + 1, size=n_notes)
    frequency = np.repeat(440.0 * 2 ** ((midi - 69) / 12), note_length)[:n_samples]
    phase = 2 * np.pi * np.cumsum(frequency) / sr
    tone = sum(decay ** k * np.sin((k + 1) * phase) for k in range(n_harmonics))
    time_in_note = np.tile(np.arange(note_length) / sr, n_notes)[:n_samples]
    envelope = np.exp(-3.0 * time_in_note * rate / 60)
    # A one-pole low-pass on white noise: brightness 1 keeps it white, 0 makes it dull.
    white = rng.standard_normal(n_samples)
    dull = np.cumsum(white) / np.sqrt(np.arange(1, n_samples + 1))
    noise = brightness * white + (1 - brightness) * dull
    signal = tone * envelope / n_harmonics + noise_level * noise
    signal *= rng.uniform(0.5, 0.9) / np.max(np.abs(signal))
    return signal.astype(np.float32)


def write_demo_corpus(root, clips_per_genre=Demo.clips_per_genre, seed=Demo.seed, sr=22050, duration=30.0):
    """Write `root/<genre>/<genre>.NNNNN.wav` (16-bit mono), the same for the same seed."""
    root = Path(root)
    for genre_index, genre in enumerate(SIGNATURES):
        (root / genre).mkdir(parents=True, exist_ok=True)
        for clip in range(clips_per_genre):
            # One generator per clip, so a clip does not depend on how many others are made.
            rng = np.random.default_rng([seed, genre_index, clip])
            audio = synthesize_clip(genre, rng, sr, duration)
            # Encoded in memory, written by Python: on a full disk libsndfile only says "System error".
            encoded = io.BytesIO()
            sf.write(encoded, audio, sr, format="WAV", subtype="PCM_16")
            (root / genre / f"{genre}.{clip:05d}.wav").write_bytes(encoded.getvalue())


def make_demo(demo, raw=RAW):
    """Build `raw` from the `data.demo` params group; returns the tracks table."""
    with atomic_output(raw) as staging:
        write_demo_corpus(staging / "genres", demo["clips_per_genre"], demo["seed"])
        tracks = clip_catalogue(staging, raw, "demo")
        tracks.to_csv(staging / RAW_TRACKS.name, index=False)
    log(summarize(tracks))
    return tracks


def main():
    make_demo(load_params()["data"]["demo"])
