"""Cross-validation on the 50 real GTZAN sample clips, folds grouped by artist: the seed's MFCC recipe against
every musicnn model and layer, each with the logistic head (C chosen on validation) and the standardized network.

    python benchmarks/cross_validate.py [--epochs 50]

5 folds grouped by Sturm's artists (data/gtzan/GTZANindex.txt), stratified by genre as far as the artists allow
(benchmarks/real_gtzan.py's cross-validation). Four genres of the sample are one artist each: their clips can
never be trained on and tested on at once, so these figures are low and their intervals wide (50 clips). Folds by
clip would flatter: the last line shows by how much for one configuration. Every figure: accuracy over the 50
held-out predictions, Wilson 95% interval. Nothing here is tuned on a test set: the sample is not GTZAN's test.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT), str(PROJECT / "tests")]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from conftest import SAMPLE_DIR  # noqa: E402
from real_gtzan import cross_validation, line  # noqa: E402

from stages.core.gtzan import GENRES  # noqa: E402
from stages.core.params import MUSICNN_LAYERS, load_params  # noqa: E402
from stages.features.audio import load_audio  # noqa: E402
from stages.features.files import file_results  # noqa: E402
from stages.features.musicnn import patch_outputs, pooled, pretrained_model  # noqa: E402
from stages.pretrained import download_wheel, unpack_checkpoint  # noqa: E402

HEADS = [
    ("logistic", {"head": "logistic", "standardize": True}),
    ("network", {"head": "network", "hidden_units": 100, "standardize": True}),
]


def embeddings(outputs, model, layer, pooling="mean"):
    """(n_clips, width) rows of each clip's patch outputs {layer: (n_patches, width)}, as extract pools them."""
    return np.stack([pooled(output, model, layer, pooling) for output in outputs])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    args = parser.parse_args()
    clips = [SAMPLE_DIR / genre / f"{genre}.{k:05d}.wav" for genre in GENRES for k in range(5)]
    if not all(clip.is_file() for clip in clips):
        raise SystemExit(f"needs the 50 real clips in {SAMPLE_DIR} (set GTZAN_SAMPLE_DIR)")
    rows = pd.DataFrame({"track_id": [clip.stem for clip in clips], "label": [clip.parent.name for clip in clips],
                         "window": 0})
    features = load_params(PROJECT / "params.yaml")["features"]
    pretrained = Path(tempfile.mkdtemp())
    with tempfile.TemporaryDirectory() as folder:
        wheel = download_wheel(folder)
        for model in MUSICNN_LAYERS:
            unpack_checkpoint(wheel, pretrained, model)

    table = [("mfcc (the seed's 25000 values)", np.concatenate(
        [values for values, _, _ in file_results([str(clip) for clip in clips], features | {"kind": "mfcc"})]))]
    sr = features["sample_rate"]
    audio = [load_audio(clip, sr) for clip in clips]
    for model, layers in MUSICNN_LAYERS.items():
        network = pretrained_model(model, pretrained / model)
        outputs = [patch_outputs(y, sr, network) for y in audio]
        table += [(f"{model} {layer}, mean", embeddings(outputs, model, layer)) for layer in (*layers, "all")]
        table.append((f"{model} all, mean+max", embeddings(outputs, model, "all", "mean+max")))

    print(f"5-fold cross-validation grouped by artist on {len(clips)} real clips; network: {args.epochs} epochs")
    print(f"{'features':44} {'width':>6}  {'head':8} {'accuracy':>8}  95% interval  tracks")
    with tempfile.TemporaryDirectory() as folder:
        for name, x in table:
            results = cross_validation(x, rows, args.epochs, Path(folder), HEADS, by="artist")
            for head, (correct, total) in results.items():
                print(line(f"{name:44} {x.shape[1]:6d}  {head:8}", correct, total), flush=True)
        inflated = cross_validation(table[2][1], rows, args.epochs, Path(folder), HEADS[1:], by="track")
        print(line(f"INFLATED, folds by clip: {table[2][0]}, network", *inflated["network"]))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
