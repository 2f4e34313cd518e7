"""Benchmark: musicnn extraction against the sum of its bare parts, for every model, on real clips.

    python benchmarks/musicnn_speed.py [--repeat 2] [--batch 64]

Each measurement runs in a fresh process of its own, on the 50 real sample clips of GTZAN_SAMPLE_DIR
repeated `--repeat` times (30 s each), and prints its wall time, clips per second and peak memory (resident,
summed over the process and its workers, sampled every 50 ms):

- front end: decoding every clip and computing its log-mel patches (`log_mel_patches`), one process;
- forward pass: the network over every patch of every clip in full batches of `--batch` (patches computed
  before the clock starts; model built and loaded before it, too), TensorFlow on every core;
- extraction: `file_results`, as `extract` runs it, with its worker processes (features.n_jobs: one per core),
  loading the model in each worker included.

Extraction should be within 1.25x of front end + forward pass, and `layer: all` within 1.3x of the default.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT), str(PROJECT / "tests")]

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from conftest import SAMPLE_DIR  # noqa: E402
from extract_speed import peak_megabytes_of  # noqa: E402

from stages.core.gtzan import GENRES  # noqa: E402
from stages.core.params import MUSICNN_LAYERS, load_params  # noqa: E402

MEASUREMENTS = [(model, "penultimate" if "musicnn" in model else "pool5") for model in MUSICNN_LAYERS]
MEASUREMENTS.insert(1, ("MSD_musicnn", "all"))


def measure(part, model, layer, clips, pretrained, batch):
    """Seconds of one part, in this process."""
    from stages.features.audio import load_audio
    from stages.features.files import file_results
    from stages.features.musicnn import log_mel_patches, pretrained_model
    features = load_params(PROJECT / "params.yaml")["features"]
    features = features | {"kind": "musicnn", "musicnn": features["musicnn"] | {"model": model, "layer": layer}}
    if part == "front end":
        start = time.perf_counter()
        for clip in clips:
            log_mel_patches(load_audio(clip, 22050), 22050)
    elif part == "forward pass":
        patches = np.concatenate([log_mel_patches(load_audio(clip, 22050), 22050) for clip in clips])
        network = pretrained_model(model, pretrained / model)
        network.predict_on_batch(patches[:batch])  # traced once, outside the clock
        start = time.perf_counter()
        for first in range(0, len(patches), batch):
            network.predict_on_batch(patches[first:first + batch])
    else:
        os.chdir(pretrained.parent.parent)  # the workers read data/pretrained/<model> from here
        start = time.perf_counter()
        for _, _, reason in file_results([str(clip) for clip in clips], features):
            assert reason is None, reason
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--measure", nargs=4, help=argparse.SUPPRESS)  # part model layer pretrained: in a child
    args = parser.parse_args()
    clips = [SAMPLE_DIR / genre / f"{genre}.{k:05d}.wav" for genre in GENRES for k in range(5)] * args.repeat
    if not all(clip.is_file() for clip in clips):
        raise SystemExit(f"needs the 50 real clips in {SAMPLE_DIR} (set GTZAN_SAMPLE_DIR)")
    if args.measure:
        part, model, layer, pretrained = args.measure
        print(measure(part, model, layer, clips, Path(pretrained), args.batch))
        return

    from stages.pretrained import download_wheel, unpack_checkpoint
    with tempfile.TemporaryDirectory() as folder:
        pretrained = Path(folder) / "data/pretrained"
        wheel = download_wheel(folder)
        for model in MUSICNN_LAYERS:
            unpack_checkpoint(wheel, pretrained, model)
        print(f"{len(clips)} clips of 30 s ({len(clips) // 50} x the 50 real sample clips); "
              f"{psutil.cpu_count()} cores; forward pass in batches of {args.batch} patches")
        print(f"{'model, layer':26} {'part':13} {'seconds':>8} {'clips/s':>8} {'peak MB':>8}")
        front_end, extraction = None, {}
        for model, layer in MEASUREMENTS:
            figures = {}
            for part in ("front end", "forward pass", "extraction"):
                if part == "front end" and front_end:
                    figures[part] = front_end  # the same for every model
                    continue
                child = psutil.Popen([sys.executable, __file__, "--repeat", str(args.repeat), "--batch",
                                      str(args.batch), "--measure", part, model, layer, str(pretrained)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                peak_mb = peak_megabytes_of(child)
                if child.returncode:
                    raise SystemExit(f"measuring the {part} of {model}, {layer} failed")
                figures[part] = {"seconds": float(child.stdout.read().split()[-1]), "peak_mb": peak_mb}
                print(f"{model + ', ' + layer:26} {part:13} {figures[part]['seconds']:8.1f} "
                      f"{len(clips) / figures[part]['seconds']:8.2f} {figures[part]['peak_mb']:8.0f}", flush=True)
            front_end = figures["front end"]
            bare = figures["front end"]["seconds"] + figures["forward pass"]["seconds"]
            extraction[model, layer] = figures["extraction"]["seconds"]
            print(f"{model + ', ' + layer:26} extraction / bare parts: {extraction[model, layer] / bare:.2f}x")
        print(f"MSD_musicnn layer all / default: "
              f"{extraction['MSD_musicnn', 'all'] / extraction['MSD_musicnn', 'penultimate']:.2f}x")


if __name__ == "__main__":
    main()
