"""Stage `visualize`: the seed article's MFCC pictures, one track per label.

Output: `metrics/mfcc/<label>.png`, the MFCC of the label's first usable track (its first window).
"""

import librosa.display
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

from stages.audio import load_audio, windows  # noqa: E402
from stages.common import atomic_output, run  # noqa: E402
from stages.params import load_params
from stages.dataset import read_tracks  # noqa: E402
from stages.features import mfcc_matrix  # noqa: E402
from stages.paths import FEATURE_TRACKS, PICTURES, RAW_TRACKS  # noqa: E402


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
    sr = features["sample_rate"]
    mfcc = {key: features["mfcc"][key] for key in ("n_mfcc", "n_fft", "hop_length", "n_mels")}
    path_of = read_tracks(RAW_TRACKS).set_index("track_id")["path"]
    # The first track of each label that extract could use, so every picture shows real audio.
    first = read_tracks(FEATURE_TRACKS).groupby("label")["track_id"].first()
    with atomic_output(PICTURES) as staging:
        staging.mkdir()
        for label, track in first.items():
            y = windows(load_audio(path_of[track], sr), sr)[0]
            draw_mfcc(mfcc_matrix(y, sr, **mfcc), staging / f"{label}.png", f"MFCC of {track}", sr, mfcc["hop_length"])


if __name__ == "__main__":
    run(main)
