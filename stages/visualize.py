"""Stage `visualize`: the seed article's MFCC pictures, one track per label.

Output: `metrics/mfcc/<label>.png`, the MFCC of the label's first usable track (its first window);
for a feature table, which has no audio, that track's rows of the table instead.
"""

import hashlib

import librosa.display
import numpy as np
from matplotlib.figure import Figure  # figures of their own, drawn to files: no pyplot, no GUI backend

from stages.core.console import log
from stages.core.errors import run
from stages.core.files import atomic_output
from stages.core.params import Features, Mfcc, load_params
from stages.core.paths import FEATURE_MATRIX, FEATURE_TRACKS, PICTURES, RAW_TRACKS
from stages.core.sets import feature_recipe
from stages.core.tracks import read_tracks
from stages.features.audio import first_window_seconds, load_audio, windows
from stages.features.mfcc import mfcc_matrix


def draw_mfcc(mfcc, path, title, sr=Features.sample_rate, hop_length=Mfcc.hop_length):
    """Save an MFCC matrix (n_mfcc, frames) as a PNG: coefficients against time in seconds."""
    figure = Figure(figsize=(8, 3))
    axes = figure.subplots()
    image = librosa.display.specshow(mfcc, sr=sr, hop_length=hop_length, x_axis="time", ax=axes)
    figure.colorbar(image, ax=axes)
    axes.set(title=title, ylabel="MFCC coefficient")
    figure.tight_layout()
    figure.savefig(path, dpi=80)


def draw_table_rows(rows, columns, path, title):
    """Save a track's rows of a feature table (n_windows, n_columns) as a PNG, each column scaled to its range."""
    spread = rows.max(axis=0) - rows.min(axis=0)
    scaled = (rows - rows.min(axis=0)) / np.where(spread > 0, spread, 1)
    figure = Figure(figsize=(max(6, 0.15 * len(columns)), 3))
    axes = figure.subplots()
    axes.imshow(scaled, aspect="auto", cmap="viridis", interpolation="nearest")
    axes.set(title=title, ylabel="window")
    axes.set_xticks(range(len(columns)), columns, rotation=90, fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=80)


def picture_name(label, limit=200):
    """`<label>.png`, a `/` written %2F (FMA's `Old-Time / Historic`), the name cut to `limit` bytes and told
    apart by the label's md5 if longer (file names stop at 255 bytes)."""
    name = label.replace("%", "%25").replace("/", "%2F")
    if len(name.encode()) <= limit:
        return f"{name}.png"
    cut = name.encode()[:limit].decode(errors="ignore")
    return f"{cut}-{hashlib.md5(label.encode()).hexdigest()[:8]}.png"


def main():
    features = load_params()["features"]
    sr = features["sample_rate"]
    mfcc = {key: features["mfcc"][key] for key in ("n_mfcc", "n_fft", "hop_length", "n_mels")}
    catalogue = read_tracks(RAW_TRACKS)
    path_of = catalogue.set_index("track_id")["path"]
    # The first track of each label that extract could use, so every picture shows real audio.
    first = read_tracks(FEATURE_TRACKS).groupby("label")["track_id"].first()
    with atomic_output(PICTURES) as staging:
        staging.mkdir()
        if catalogue["source"].iat[0] == "table":
            rows_of = read_tracks(FEATURE_TRACKS).groupby("track_id").indices
            matrix, columns = np.load(FEATURE_MATRIX, mmap_mode="r"), feature_recipe()["columns"]
            for label, track in first.items():
                draw_table_rows(np.asarray(matrix[rows_of[track]]), columns, staging / picture_name(label),
                                f"Feature table rows of {track}")
        else:
            for label, track in first.items():
                y = windows(load_audio(path_of[track], sr, seconds=first_window_seconds()), sr)[0]
                draw_mfcc(mfcc_matrix(y, sr, **mfcc), staging / picture_name(label), f"MFCC of {track}", sr,
                          mfcc["hop_length"])
    log(f"visualize: {len(first)} pictures in {PICTURES}, one per label")


if __name__ == "__main__":
    run(main)
