"""Benchmark: `dvc exp run -S epochs=20` and a no-op `dvc repro` against the bare training script.

    python benchmarks/iteration_speed.py [--clips-per-genre 100] [--repeats 3]

Builds a GTZAN-sized corpus in a fresh clone (the 50 real sample clips of GTZAN_SAMPLE_DIR,
each repeated), runs `dvc repro` and commits, then alternates: `dvc exp run -S epochs=20`
(from the committed baseline, the run cache cleared, so that it trains), the bare script (one process: load
features.npy and onehot.npy, the seed's network, 20 epochs, batch 32, validation_split 0.2,
evaluate on a held-out fifth) and a no-op `dvc repro`. Prints every run's time and the ratios.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT), str(PROJECT / "tests")]
from conftest import SAMPLE_DIR, clone_project, run_in, tool_env  # noqa: E402

from stages.core.gtzan import GENRES  # noqa: E402
from stages.sources.catalogue import clip_catalogue  # noqa: E402

BARE_SCRIPT = textwrap.dedent("""
    import numpy as np
    import keras
    from sklearn.model_selection import train_test_split

    x = np.load("data/features/features.npy")
    y = np.load("data/labels/onehot.npy")
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=42)
    keras.utils.set_random_seed(42)
    model = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(100, activation="relu"),
                              keras.layers.Dense(y.shape[1], activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=20, batch_size=32, validation_split=0.2, verbose=2)
    print(model.evaluate(x_test, y_test, verbose=0))
""")


def build_corpus(repo, clips_per_genre):
    """data/raw of `clips_per_genre` real clips per genre (the sample's, repeated), committed as download's output."""
    raw = repo / "data/raw"
    for genre in GENRES:
        (raw / "genres" / genre).mkdir(parents=True)
        real = sorted((SAMPLE_DIR / genre).glob("*.wav"))
        for clip in range(clips_per_genre):
            os.link(real[clip % len(real)], raw / "genres" / genre / f"{genre}.{clip:05d}.wav")
    clip_catalogue(raw, Path("data/raw"), "gtzan").to_csv(raw / "tracks.csv", index=False)
    run_in(repo, "dvc", "repro", "check_params")  # download depends on it: committed after it, nothing downloads
    run_in(repo, "dvc", "commit", "--force", "download")


def seconds(command, cwd):
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=tool_env())
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips-per-genre", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not (SAMPLE_DIR / "MD5SUMS.tsv").is_file():
        raise SystemExit(f"needs the real sample clips in {SAMPLE_DIR} (set GTZAN_SAMPLE_DIR)")
    with tempfile.TemporaryDirectory() as folder:
        repo = clone_project(Path(folder) / "repo")
        build_corpus(repo, args.clips_per_genre)
        run_in(repo, "dvc", "repro")
        run_in(repo, "git", "add", "-A")
        run_in(repo, "git", "commit", "-q", "-m", "baseline")
        (repo / "bare.py").write_text(BARE_SCRIPT)
        print(f"corpus: {10 * args.clips_per_genre} clips of 30 s (the 50 real sample clips, repeated); "
              f"{os.cpu_count()} cores")
        runs = {"dvc exp run -S epochs=20": [], "bare script": [], "no-op dvc repro": []}
        for _ in range(args.repeats):  # alternated, so that a noisy spell hits all of them
            # Back to the committed baseline, the run cache emptied: the experiment trains again.
            run_in(repo, "git", "checkout", "--", ".")
            run_in(repo, "dvc", "checkout", "--force")
            shutil.rmtree(repo / ".dvc/cache/runs", ignore_errors=True)
            runs["dvc exp run -S epochs=20"].append(seconds(["dvc", "exp", "run", "-S", "epochs=20"], repo))
            runs["bare script"].append(seconds([sys.executable, "bare.py"], repo))
            runs["no-op dvc repro"].append(seconds(["dvc", "repro"], repo))
        for name, times in runs.items():
            print(f"{name:26} {' '.join(f'{t:5.1f}' for t in times)} s")
        exp, bare = runs["dvc exp run -S epochs=20"], runs["bare script"]
        pairs = [e / b for e, b in zip(exp, bare)]
        print(f"exp run / bare script: best against best {min(exp) / min(bare):.2f}x, "
              f"median against median {statistics.median(exp) / statistics.median(bare):.2f}x, "
              f"run by run {min(pairs):.2f}x to {max(pairs):.2f}x; "
              f"no-op repro, best: {min(runs['no-op dvc repro']):.2f} s")


if __name__ == "__main__":
    main()
