"""Benchmark: how long `python -m stages.predict` takes to start, and to classify a 4-minute song.

    python benchmarks/predict_speed.py [--model data/model/model.keras]

The song is the real sample clips of GTZAN_SAMPLE_DIR put end to end (noise where
there is no sample), written as WAV and as MP3. Without a trained model, a seeded
untrained one of the same shape stands in: the time does not depend on the weights.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT), str(PROJECT / "tests")]

start = time.perf_counter()
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from conftest import SAMPLE_DIR  # noqa: E402
from stages.common import load_params  # noqa: E402
from stages.model import build_model, load_model  # noqa: E402
from stages.predict import classify  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=PROJECT / "data/model/model.keras")
    args = parser.parse_args()
    features = load_params(PROJECT / "params.yaml")["features"]
    features["windows"] = "all"  # a whole song, as a listener would ask
    model = load_model(args.model)[0] if args.model.exists() else build_model(features["mfcc"]["n_values"])
    startup = time.perf_counter() - start

    sr, seconds = features["sample_rate"], 240
    clips = sorted(SAMPLE_DIR.glob("*/*.wav"))
    if clips:
        song = np.concatenate([sf.read(clip, dtype="float32")[0] for clip in clips[::5][:9]])[:sr * seconds]
    else:
        song = np.random.default_rng(0).uniform(-0.3, 0.3, sr * seconds).astype(np.float32)
    print(f"start-up (imports, params, model): {startup:.1f} s")
    with tempfile.TemporaryDirectory() as folder:
        for fmt in ("wav", "mp3"):
            path = Path(folder) / f"song.{fmt}"
            sf.write(path, song, sr, format=fmt.upper())
            classify(path, model, features)  # warm-up: TensorFlow traces on the first call
            times = []
            for _ in range(5):
                begin = time.perf_counter()
                _, n_windows = classify(path, model, features)
                times.append(time.perf_counter() - begin)
            print(f"4-minute {fmt.upper()} song, decode + {n_windows} windows + model: "
                  f"median {np.median(times):.2f} s over {len(times)} runs")


if __name__ == "__main__":
    main()
