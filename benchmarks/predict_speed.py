"""Benchmark: how long `python -m stages.predict` takes to start, and to classify a 4-minute song.

    python benchmarks/predict_speed.py [--model data/model/model.keras]

The song is the real sample clips of GTZAN_SAMPLE_DIR put end to end (noise where
there is no sample), written as WAV and as MP3, classified with every 30 s window. Without a
trained model, a seeded untrained one of the same shape stands in (made in a subprocess, so
that this one never imports TensorFlow): the time does not depend on the weights.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT), str(PROJECT / "tests")]

start = time.perf_counter()
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
from conftest import SAMPLE_DIR, tool_env  # noqa: E402

from stages.core.params import load_params  # noqa: E402
from stages.features.files import file_rows, recipe  # noqa: E402
from stages.model.runner import Network  # noqa: E402
from stages.predict import classify  # noqa: E402

imported = time.perf_counter()

STAND_IN = """
import sys
from stages.features import recipe
from stages.model.network import build_model, save_model, seed_everything
from stages.core.params import load_params
features = load_params()["features"]
seed_everything(0)
save_model(build_model(features["mfcc"]["n_values"]), sys.argv[1], recipe(features), [str(i) for i in range(10)])
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=PROJECT / "data/model/model.keras")
    args = parser.parse_args()
    features = load_params(PROJECT / "params.yaml")["features"]
    with tempfile.TemporaryDirectory() as folder:
        model = args.model
        if not model.exists():
            model = Path(folder) / "stand-in.keras"
            subprocess.run([sys.executable, "-c", STAND_IN, str(model)], cwd=PROJECT, env=tool_env(), check=True)
        made = time.perf_counter()  # the stand-in's subprocess is not start-up
        network = Network(model, recipe(features))
        startup = (time.perf_counter() - made) + (imported - start)
        features["windows"] = "all"  # a whole song, as a listener would ask

        sr, seconds = features["sample_rate"], 240
        clips = sorted(SAMPLE_DIR.glob("*/*.wav"))
        if clips:
            song = np.concatenate([sf.read(clip, dtype="float32")[0] for clip in clips[::5][:9]])[:sr * seconds]
        else:
            song = np.random.default_rng(0).uniform(-0.3, 0.3, sr * seconds).astype(np.float32)
        print(f"start-up (imports, params, model): {startup:.1f} s")
        for fmt in ("wav", "mp3"):
            path = Path(folder) / f"song.{fmt}"
            sf.write(path, song, sr, format=fmt.upper())
            times = []
            for _ in range(5):
                begin = time.perf_counter()
                rows, _ = file_rows(path, features)
                classify(rows, network)
                times.append(time.perf_counter() - begin)
            print(f"4-minute {fmt.upper()} song, decode + {len(rows)} windows + model: "
                  f"median {np.median(times):.2f} s over {len(times)} runs")


if __name__ == "__main__":
    main()
