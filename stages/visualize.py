"""Stage `visualize`: the seed article's MFCC pictures, one clip per genre.

Output: `metrics/mfcc/<genre>.png`, the MFCC of the genre's first usable clip.
"""

from pathlib import Path

import librosa.display
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)
import pandas as pd  # noqa: E402

from stages.common import GENRES, atomic_output, load_params, run  # noqa: E402
from stages.extract import load_audio, mfcc_matrix  # noqa: E402

RAW = Path("data/raw")
FEATURE_TRACKS = Path("data/features/tracks.csv")
PICTURES = Path("metrics/mfcc")


def draw_mfcc(mfcc, path, title, sr=22050, hop_length=512):
    """Save an MFCC matrix (n_mfcc, frames) as a PNG: coefficients against time in seconds."""
    figure, axes = plt.subplots(figsize=(8, 3))
    image = librosa.display.specshow(mfcc, sr=sr, hop_length=hop_length, x_axis="time", ax=axes)
    figure.colorbar(image, ax=axes)
    axes.set(title=title, ylabel="MFCC coefficient")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def main():
    features = load_params()["features"]
    mfcc = {key: value for key, value in features["mfcc"].items() if key != "n_values"}
    raw = pd.read_csv(RAW / "tracks.csv").set_index("track_id")
    # The first clip of each genre that extract could use, so every picture shows real audio.
    usable = pd.read_csv(FEATURE_TRACKS).groupby("genre")["track_id"].first()
    with atomic_output(PICTURES) as staging:
        staging.mkdir()
        for genre in GENRES:
            if genre in usable:
                track = usable[genre]
                y = load_audio(RAW / raw.at[track, "path"], features["sample_rate"])
                draw_mfcc(mfcc_matrix(y, features["sample_rate"], **mfcc), staging / f"{genre}.png",
                          f"MFCC of {track}", features["sample_rate"], mfcc["hop_length"])


if __name__ == "__main__":
    run(main)
