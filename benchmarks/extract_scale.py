"""Benchmark: extract on N short clips, locally and on a local two-worker Dask cluster.

    python benchmarks/extract_scale.py [--sizes 1000 5000 20000] [--seconds 5]

For each N, a fresh clone gets N clips of `--seconds` s (cut from the real sample clips of
GTZAN_SAMPLE_DIR, or from the demo corpus, hard-linked so that disk stays small) and
features.mfcc.n_values to match; then `python -m stages.extract` runs with 2 local worker
processes, and again with features.scheduler pointing at `dask scheduler` + 2 `dask worker
--nthreads 1` processes on 127.0.0.1. Prints wall time per clip, the peak resident memory of
the driver (the stage's own process) and of its whole process tree (sampled every 50 ms), and
whether the two runs' rows are equal.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import soundfile as sf

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT), str(PROJECT / "tests")]
from conftest import SAMPLE_DIR, clone_project, run_in, tool_env, write_params  # noqa: E402
from test_cluster import Cluster  # noqa: E402

from stages.sources.demo import SIGNATURES, synthesize_clip  # noqa: E402

DISTINCT_CLIPS_PER_LABEL = 5


def build_corpus(repo, n_clips, seconds, sr=22050):
    """data/raw/tracks.csv naming `n_clips` files: hard links to 50 distinct clips of `seconds` s."""
    distinct = repo.parent / "distinct"
    distinct.mkdir(exist_ok=True)
    sources = []
    for genre in SIGNATURES:
        for k in range(DISTINCT_CLIPS_PER_LABEL):
            path = distinct / f"{genre}.{k}.wav"
            if not path.exists():
                real = SAMPLE_DIR / genre / f"{genre}.{k:05d}.wav"
                audio = (sf.read(real, dtype="float32")[0] if real.is_file()
                         else synthesize_clip(genre, np.random.default_rng(k)))
                sf.write(path, audio[:round(seconds * sr)], sr, subtype="PCM_16")
            sources.append((genre, path))
    rows = []
    for i in range(n_clips):
        genre, source = sources[i % len(sources)]
        target = repo / "data/raw/genres" / genre / f"{genre}.{i:05d}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(source, target)
        rows.append((target.stem, genre, f"data/raw/genres/{genre}/{target.name}", "", "ok", "benchmark"))
    pd.DataFrame(rows, columns=["track_id", "label", "path", "md5", "status", "source"]).to_csv(
        repo / "data/raw/tracks.csv", index=False)


def measure(command, cwd):
    """(wall seconds, peak MB of the process, peak MB of its process tree) of running `command`."""
    start = time.perf_counter()
    process = psutil.Popen(command, cwd=cwd, env=tool_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    own = tree = 0
    while process.poll() is None:
        try:
            rss = [p.memory_info().rss for p in [process] + process.children(recursive=True)]
            own, tree = max(own, rss[0]), max(tree, sum(rss))
        except psutil.Error:
            pass
        time.sleep(0.05)
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode()[-2000:]}")
    return time.perf_counter() - start, own / 2**20, tree / 2**20


def local_and_dask(repo, cluster):
    """(local, dask, rows equal): measure() of `python -m stages.extract` in `repo` with its local workers, then
    on `cluster`, and whether the two runs' rows are equal."""
    local = measure([sys.executable, "-m", "stages.extract"], repo)
    kept = repo / "local.npy"
    os.replace(repo / "data/features/features.npy", kept)
    write_params(repo, {"features.scheduler": cluster.address})
    dask = measure([sys.executable, "-m", "stages.extract"], repo)
    equal = np.array_equal(np.load(kept, mmap_mode="r"), np.load(repo / "data/features/features.npy", mmap_mode="r"))
    return local, dask, equal


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    n_values = 20 * (1 + round(args.seconds * 22050) // 512) // 1000 * 1000  # whole thousands the clip gives
    print(f"clips of {args.seconds:g} s, n_values {n_values}, {os.cpu_count()} cores; "
          "time per clip in ms, peak memory in MB (driver / whole process tree)")
    print(f"{'N':>6}  {'local ms':>8} {'driver':>7} {'tree':>6}   {'dask ms':>8} {'driver':>7}  rows equal")
    cluster = Cluster(n_workers=2)
    try:
        for n_clips in args.sizes:
            with tempfile.TemporaryDirectory() as folder:
                repo = clone_project(Path(folder) / "repo", {"features.mfcc.n_values": n_values,
                                                             "features.n_jobs": 2})
                build_corpus(repo, n_clips, args.seconds)
                run_in(repo, sys.executable, "-m", "stages.pretrained")
                local, dask, equal = local_and_dask(repo, cluster)
                print(f"{n_clips:6d}  {1000 * local[0] / n_clips:8.2f} {local[1]:7.0f} {local[2]:6.0f}   "
                      f"{1000 * dask[0] / n_clips:8.2f} {dask[1]:7.0f}  {equal}", flush=True)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
