"""5-fold cross-validation on the 50 real GTZAN sample clips: the seed's MFCC recipe against musicnn embeddings.

    python benchmarks/cross_validate.py [--epochs 50]

Fold k tests on clip k of every genre (10 clips) and trains on the other 40, so every
fold is stratified and the folds are fixed. INFLATED: folds by clip put other clips of one
artist in training (four genres of the sample are one artist each); docs/features.md says by how much. Every musicnn layer and pooling is scored,
with the seed's dense network and with the linear classifier (train.hidden_units=0):
this is the validation the default `features.musicnn` params were chosen on. It also
prints the mean time to embed one 30 s clip with `extract`'s parallel workers.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT), str(PROJECT / "tests")]

import numpy as np  # noqa: E402
from conftest import SAMPLE_DIR  # noqa: E402

from stages.core.gtzan import GENRES  # noqa: E402
from stages.core.params import load_params  # noqa: E402
from stages.features.audio import load_audio  # noqa: E402
from stages.features.files import file_results  # noqa: E402
from stages.features.musicnn import LAYERS, patch_outputs  # noqa: E402
from stages.pretrained import download_wheel, unpack_checkpoint  # noqa: E402
from stages.train import train  # noqa: E402


def cross_validate(x, genres, epochs, hidden_units):
    """Mean accuracy over the 5 folds; x (50, n_values), genres (50,) ints, clip k of each genre in fold k."""
    fold = np.tile(np.arange(5), 10)
    y = np.eye(10, dtype=np.float32)[genres]
    accuracies = []
    with tempfile.TemporaryDirectory() as folder:
        for k in range(5):
            model, _, _ = train(x[fold != k], y[fold != k], None, epochs=epochs, seed=k, hidden_units=hidden_units,
                             log_path=Path(folder) / "log.csv", verbose=0)
            accuracies.append(np.mean(model.predict_on_batch(x[fold == k]).argmax(axis=1) == genres[fold == k]))
    return float(np.mean(accuracies))


def extract(clips, features):
    """(n_clips, n_values) rows of `clips`, with extract's parallel workers."""
    return np.concatenate([rows for rows, _, _ in file_results([str(clip) for clip in clips], features)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    args = parser.parse_args()
    clips = [SAMPLE_DIR / genre / f"{genre}.{k:05d}.wav" for genre in GENRES for k in range(5)]
    if not all(clip.is_file() for clip in clips):
        raise SystemExit(f"needs the 50 real clips in {SAMPLE_DIR} (set GTZAN_SAMPLE_DIR)")
    genres = np.repeat(np.arange(10), 5)
    features = load_params(PROJECT / "params.yaml")["features"]

    os.chdir(tempfile.mkdtemp())  # the musicnn kind reads data/pretrained/ from the working folder
    with tempfile.TemporaryDirectory() as folder:
        unpack_checkpoint(download_wheel(folder), Path("data/pretrained"))

    rows = [("mfcc (the seed)", extract(clips, features | {"kind": "mfcc"}))]
    start = time.perf_counter()
    extract(clips, features | {"kind": "musicnn"})
    print(f"musicnn embeddings with {os.cpu_count()} workers, model loading included: "
          f"{(time.perf_counter() - start) / len(clips):.2f} s per 30 s clip")

    # Every layer of every clip at once; then each pooling over the clip's patches.
    sr = features["sample_rate"]
    outputs = [patch_outputs(load_audio(clip, sr), sr) for clip in clips]
    for layer in LAYERS:
        for pooling, pool in (("mean", np.mean), ("max", np.max)):
            x = np.stack([pool(output[layer], axis=0) for output in outputs])
            rows.append((f"musicnn {layer}, {pooling} over patches", x))

    print(f"\n5-fold cross-validated accuracy on {len(clips)} real clips, {args.epochs} epochs")
    print(f"{'features':40} {'width':>6} {'dense(100)':>11} {'linear':>7}")
    for name, x in rows:
        dense, linear = (cross_validate(x, genres, args.epochs, units) for units in (100, 0))
        print(f"{name:40} {x.shape[1]:6d} {dense:11.2f} {linear:7.2f}")


if __name__ == "__main__":
    main()
