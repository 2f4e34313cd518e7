"""Benchmark: `dvc repro extract` against the seed's plain sequential loop, on about 1000 clips.

    python benchmarks/extract_speed.py [--clips-per-genre 100] [--repeats 3]

Builds a GTZAN-sized corpus in a temporary copy of the project (the 50 real
sample clips of GTZAN_SAMPLE_DIR repeated, or the demo corpus where there is
no sample), then prints the wall time of each, the speed-up, the peak memory
(resident, summed over all processes of each run) and whether the rows agree.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import psutil

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT), str(PROJECT / "tests")]
from conftest import SAMPLE_DIR, clone_project, run_in, tool_env  # noqa: E402

from stages.core.gtzan import GENRES  # noqa: E402
from stages.sources.catalogue import clip_catalogue  # noqa: E402
from stages.sources.demo import write_demo_corpus  # noqa: E402

SEED_LOOP = textwrap.dedent("""
    import sys
    import librosa
    import numpy as np
    import pandas as pd

    tracks = pd.read_csv("data/features/tracks.csv")
    rows = []
    for track, genre in zip(tracks["track_id"], tracks["label"]):
        y, sr = librosa.load(f"data/raw/genres/{genre}/{track}.wav")
        mfcc = librosa.feature.mfcc(y=y, sr=sr)
        mfcc /= np.amax(np.absolute(mfcc))
        rows.append(np.ndarray.flatten(mfcc)[:25000])
    np.save(sys.argv[1], np.array(rows))
""")


def build_corpus(raw, clips_per_genre):
    """data/raw of `clips_per_genre` clips per genre: real clips repeated, or demo clips."""
    genres = raw / "genres"
    if (SAMPLE_DIR / "MD5SUMS.tsv").is_file():
        for genre in GENRES:
            (genres / genre).mkdir(parents=True)
            real = sorted((SAMPLE_DIR / genre).glob("*.wav"))
            for clip in range(clips_per_genre):
                os.link(real[clip % len(real)], genres / genre / f"{genre}.{clip:05d}.wav")
        source = f"the {len(GENRES) * 5} real sample clips, repeated"
    else:
        write_demo_corpus(genres, clips_per_genre)
        source = "the demo corpus"
    tracks = clip_catalogue(raw, Path("data/raw"), "benchmark")
    tracks.to_csv(raw / "tracks.csv", index=False)
    return len(tracks), source


def run_command(command, cwd):
    return psutil.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=tool_env())


def wall_seconds(command, cwd):
    start = time.perf_counter()
    if run_command(command, cwd).wait():
        raise SystemExit(f"{command} failed")
    return time.perf_counter() - start


def peak_megabytes_of(process):
    """Peak resident memory of a running psutil.Popen `process` and all its children together, in MB, sampled
    every 50 ms until it ends."""
    peak = 0
    while process.poll() is None:
        try:
            tree = [process] + process.children(recursive=True)
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    return peak / 2**20


def peak_megabytes(command, cwd):
    """Peak resident memory of `command`, all its processes together (peak_megabytes_of).

    A run of its own: the sampling takes CPU that the timed runs must not lose.
    """
    process = run_command(command, cwd)
    peak = peak_megabytes_of(process)
    if process.returncode:
        raise SystemExit(f"{command} failed")
    return peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips-per-genre", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        repo = clone_project(Path(folder) / "repo")
        n_clips, source = build_corpus(repo / "data/raw", args.clips_per_genre)
        # DVC hashes data/raw once when `download` saves it; do that outside the timing too.
        run_in(repo, "dvc", "commit", "--force", "download", check=False)
        run_in(repo, "dvc", "repro", "--single-item", "pretrained")  # extract's other input: a note for mfcc
        print(f"corpus: {n_clips} clips of 30 s from {source}; {os.cpu_count()} cores")

        (repo / "seed_loop.py").write_text(SEED_LOOP)
        stage_command = ["dvc", "repro", "--force", "--single-item", "extract"]
        seed_command = [sys.executable, "seed_loop.py", "seed.npy"]
        stage, seed = [], []
        for _ in range(args.repeats):  # alternated, so that a noisy spell hits both
            stage.append(wall_seconds(stage_command, repo))
            seed.append(wall_seconds(seed_command, repo))
        stage_mb, seed_mb = peak_megabytes(stage_command, repo), peak_megabytes(seed_command, repo)

        ours, seed_rows = np.load(repo / "data/features/features.npy"), np.load(repo / "seed.npy")
        for name, runs, mb in [("seed's sequential loop", seed, seed_mb), ("dvc repro extract", stage, stage_mb)]:
            print(f"{name:23} {' '.join(f'{s:5.1f}' for s in runs)} s, "
                  f"peak memory {mb:4.0f} MB (all its processes)")
        best_seed, best_stage = min(seed), min(stage)
        print(f"speed-up, best run against best run: {best_seed / best_stage:.2f}x; "
              f"largest difference between the rows: {np.abs(ours - seed_rows).max():.1e} ({ours.shape})")


if __name__ == "__main__":
    main()
