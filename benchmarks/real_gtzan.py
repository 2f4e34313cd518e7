"""Measured accuracy on real full GTZAN, from the feature tables in ../shared/gtzan-real/ (no audio needed).

    python benchmarks/real_gtzan.py [--epochs 10 50]

The tables hold the fault-filtered split's training (and validation) clips only: the 290 test
clips are held out on purpose, so nothing here is chosen by them. Runs the stages' own code
(stages/features/table.py reads the tables, stages/train.py trains the seed's network, stages/model/runner.py
scores the saved model) on:
- Kaggle's 57 descriptors of each 30 s clip: trained on the 443 training clips, scored on the
  197 fault-filtered validation clips;
- the original musicnn package's taggrams (50 tag probabilities) of 3 s windows: 5-fold
  cross-validation over the 443 training clips, folds grouped by track and stratified by label,
  a track's window probabilities averaged as evaluate does; each window a row, or the windows of
  a track averaged into one row.
Each accuracy comes with its 95% Wilson interval over the tracks scored.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from stages.core.statistics import wilson_interval  # noqa: E402
from stages.core.tracks import in_catalogue_order, read_tracks  # noqa: E402
from stages.features.table import catalogue_rows, extract_table  # noqa: E402
from stages.model.network import save_model  # noqa: E402
from stages.model.runner import Network  # noqa: E402
from stages.split import listed_split, shuffled_by_label  # noqa: E402
from stages.train import train  # noqa: E402

REAL = Path(os.environ.get("GTZAN_REAL_DIR", PROJECT.parent / "shared" / "gtzan-real"))
KAGGLE = REAL / "kaggle-features-30-sec.ff-train-valid.csv"
TAGGRAM = REAL / "musicnn-msd-taggram-3s.ff-train.csv"
CONFIGURATIONS = [  # (name, train params)
    ("the seed's network as is", {"hidden_units": 100, "standardize": False}),
    ("standardize", {"hidden_units": 100, "standardize": True}),
    ("standardize, hidden_units 0", {"hidden_units": 0, "standardize": True}),
    ("standardize, hidden_units 300", {"hidden_units": 300, "standardize": True}),
]


def read_table(path, folder):
    """(x (n_rows, n_values) float32, rows table (track_id, label, window)) of a table, as extract reads it."""
    track_ids, labels, _ = catalogue_rows(path)
    tracks = in_catalogue_order(pd.DataFrame({"track_id": track_ids, "label": labels, "path": str(path)}))
    extract_table(tracks, ["length"], folder)
    return np.load(folder / "features.npy"), read_tracks(folder / "tracks.csv")


def track_accuracy(x_train, y_train, x_test, test_rows, classes, epochs, settings, folder, seed=42):
    """(correct tracks, tracks) of the seed's network trained on (x_train, y_train) and scored per track on x_test."""
    model, _, standardized = train(x_train.copy(), y_train, None, epochs=epochs, seed=seed,
                                   log_path=folder / "log.csv", verbose=0, **settings)
    save_model(model, folder / "model.keras", {"kind": "table"}, classes, standardized)
    probabilities = Network(folder / "model.keras").predict(x_test)
    by_track = pd.DataFrame(probabilities).groupby(test_rows["track_id"].to_numpy(), sort=False).mean()
    actual = test_rows.drop_duplicates("track_id").set_index("track_id").loc[by_track.index, "label"]
    return int((np.asarray(classes)[by_track.to_numpy().argmax(axis=1)] == actual.to_numpy()).sum()), len(by_track)


def one_hot(labels, classes):
    return np.eye(len(classes), dtype=np.float32)[[classes.index(label) for label in labels]]


def averaged(x, rows):
    """One row per track: the mean of its windows' rows, and the matching rows table."""
    groups = rows.groupby("track_id", sort=False).indices
    return (np.stack([x[index].mean(axis=0) for index in groups.values()]),
            rows.drop_duplicates("track_id").reset_index(drop=True))


def kaggle_validation(x, rows, epochs, folder):
    """{configuration: (correct, tracks)} on the fault-filtered validation clips of Kaggle's table (x, rows)."""
    classes = sorted(rows["label"].unique())
    sets, _ = listed_split(rows["track_id"].unique())
    train_mask, valid_mask = rows["track_id"].isin(sets["train"]), rows["track_id"].isin(sets["valid"])
    y = one_hot(rows["label"], classes)
    return {name: track_accuracy(x[train_mask], y[train_mask], x[valid_mask], rows[valid_mask].reset_index(drop=True),
                                 classes, epochs, settings, folder)
            for name, settings in CONFIGURATIONS}


def taggram_cross_validation(x, rows, epochs, folder, n_folds=5):
    """{(configuration, rows): (correct, tracks)} of 5-fold cross-validation over the taggram table's (x, rows)."""
    classes = sorted(rows["label"].unique())
    tracks = rows.drop_duplicates("track_id")
    fold_of = {}
    for shuffled in shuffled_by_label(tracks["track_id"], tracks["label"], seed=0):
        fold_of |= {track: k % n_folds for k, track in enumerate(shuffled)}
    results = {}
    for layout in ("windows as rows", "windows averaged"):
        lx, lrows = (x, rows) if layout == "windows as rows" else averaged(x, rows)
        fold = lrows["track_id"].map(fold_of).to_numpy()
        y = one_hot(lrows["label"], classes)
        for name, settings in CONFIGURATIONS:
            correct = total = 0
            for k in range(n_folds):
                test_rows = lrows[fold == k].reset_index(drop=True)
                c, n = track_accuracy(lx[fold != k], y[fold != k], lx[fold == k], test_rows, classes, epochs, settings,
                                      folder, seed=k)
                correct, total = correct + c, total + n
            results[(name, layout)] = (correct, total)
    return results


def line(name, correct, total):
    low, high = wilson_interval(correct, total)
    return f"{name:48} {correct / total:6.3f}  {low:.3f}-{high:.3f}  {total:5d}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[10, 50])
    args = parser.parse_args()
    if not KAGGLE.is_file() or not TAGGRAM.is_file():
        raise SystemExit(f"needs the real full-GTZAN tables in {REAL} (set GTZAN_REAL_DIR)")
    header = f"{'configuration':48} {'acc':>6}  {'95% CI':11}  {'tracks':>5}"
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        kaggle, taggram = read_table(KAGGLE, folder / "kaggle"), read_table(TAGGRAM, folder / "taggram")
        for epochs in args.epochs:
            print(f"\nKaggle's 57 descriptors (30 s), trained on 443 fault-filtered training clips, "
                  f"scored on the 197 validation clips; {epochs} epochs")
            print(header)
            for name, (correct, total) in kaggle_validation(*kaggle, epochs, folder).items():
                print(line(name, correct, total), flush=True)
            print(f"\nmusicnn taggrams (50 tags per 3 s window, 28 windows), 5-fold cross-validation over the 443 "
                  f"training clips, by track; {epochs} epochs")
            print(header)
            for (name, layout), (correct, total) in taggram_cross_validation(*taggram, epochs, folder).items():
                print(line(f"{name}, {layout}", correct, total), flush=True)


if __name__ == "__main__":
    main()
