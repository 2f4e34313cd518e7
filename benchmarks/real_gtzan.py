"""Measured accuracy on real full GTZAN, from the feature tables in ../shared/gtzan-real/ (no audio needed).

    python benchmarks/real_gtzan.py [--epochs 10 50]

The tables hold the fault-filtered split's training (and validation) clips only: the 290 test
clips are held out on purpose, so nothing here is chosen by them. No artist is ever on both sides
of a score (Sturm's index, data/gtzan/GTZANindex.txt): folds grouped by track would put other clips
of one artist, often of one album, on both sides and flatter a result by about 13 points (printed
once, as the warning it is). Runs the stages' own code (stages/features/table.py reads the tables,
stages/train.py trains each head, stages/model/runner.py scores the saved model) on:
- Kaggle's 57 descriptors of each 30 s clip: trained on the 443 training clips, scored on the
  197 fault-filtered validation clips (the split is artist-disjoint);
- the original musicnn package's taggrams (50 tag probabilities) of 3 s windows: 5-fold
  cross-validation over the 443 training clips, folds grouped by artist and stratified by label
  (scikit-learn's StratifiedGroupKFold), a track's window probabilities averaged as evaluate does.
The logistic head chooses C as `train` does, on validation tracks held out of the training side
by artist (split.method: artist's rule, 20%). Each accuracy comes with its 95% Wilson interval.
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
from sklearn.model_selection import StratifiedGroupKFold  # noqa: E402

from stages.core.statistics import wilson_interval  # noqa: E402
from stages.core.tracks import in_catalogue_order, read_tracks  # noqa: E402
from stages.features.table import catalogue_rows, extract_table  # noqa: E402
from stages.model.network import save_model  # noqa: E402
from stages.model.runner import Network  # noqa: E402
from stages.sources.gtzan import gtzan_artists  # noqa: E402
from stages.split import held_out_by_group, listed_split  # noqa: E402
from stages.train import fit_logistic, train  # noqa: E402

REAL = Path(os.environ.get("GTZAN_REAL_DIR", PROJECT.parent / "shared" / "gtzan-real"))
KAGGLE = REAL / "kaggle-features-30-sec.ff-train-valid.csv"
TAGGRAM = REAL / "musicnn-msd-taggram-3s.ff-train.csv"
CONFIGURATIONS = [  # (name, train params)
    ("network as is", {"head": "network", "hidden_units": 100, "standardize": False}),
    ("network, standardize", {"head": "network", "hidden_units": 100, "standardize": True}),
    ("network, standardize, hidden_units 0", {"head": "network", "hidden_units": 0, "standardize": True}),
    ("logistic, standardize, C chosen on validation", {"head": "logistic", "standardize": True}),
]
ARTISTS = gtzan_artists(PROJECT / "data/gtzan/GTZANindex.txt")


def artist_of(track_ids):
    """(n,) str: each GTZAN track's artist, or the track itself where Sturm's index names none."""
    return np.array([ARTISTS.get(track) or f"\0{track}" for track in track_ids])


def read_table(path, folder, ignore=()):
    """(x (n_rows, n_values) float32, rows table (track_id, label, window)) of a table, as extract reads it."""
    track_ids, labels, _ = catalogue_rows(path)
    tracks = in_catalogue_order(pd.DataFrame({"track_id": track_ids, "label": labels, "path": str(path)}))
    extract_table(tracks, list(ignore), folder)
    return np.load(folder / "features.npy"), read_tracks(folder / "tracks.csv")


def fitted(x, y, rows, classes, epochs, settings, folder, seed):
    """The model file of one head trained on (x, y) of the tracks in `rows`; the logistic head's C is chosen on
    20% of those tracks held out by artist, as `train` does with split.method: artist."""
    settings = dict(settings)
    if settings.pop("head") == "logistic":
        tracks = rows.drop_duplicates("track_id")
        kept, _ = held_out_by_group(tracks, artist_of(tracks["track_id"]), 0.2, seed)
        fit = rows["track_id"].isin(kept).to_numpy()
        model, standardized, _ = fit_logistic(x[fit].copy(), y[fit], (x[~fit].copy(), y[~fit]),
                                              [0.01, 0.1, 1, 10], settings["standardize"], folder / "log.csv")
    else:
        model, _, standardized = train(x.copy(), y, None, epochs=epochs, seed=seed, log_path=folder / "log.csv",
                                       verbose=0, **settings)
    save_model(model, folder / "model.keras", {"kind": "table"}, classes, standardized)
    return folder / "model.keras"


def track_accuracy(model, x_test, test_rows, classes):
    """(correct tracks, tracks) of the saved model, a track's window probabilities averaged."""
    probabilities = Network(model).predict(x_test)
    by_track = pd.DataFrame(probabilities).groupby(test_rows["track_id"].to_numpy(), sort=False).mean()
    actual = test_rows.drop_duplicates("track_id").set_index("track_id").loc[by_track.index, "label"]
    return int((np.asarray(classes)[by_track.to_numpy().argmax(axis=1)] == actual.to_numpy()).sum()), len(by_track)


def one_hot(labels, classes):
    return np.eye(len(classes), dtype=np.float32)[[classes.index(label) for label in labels]]


def kaggle_validation(x, rows, epochs, folder):
    """{configuration: (correct, tracks)} on the fault-filtered validation clips of Kaggle's table (x, rows)."""
    classes = sorted(rows["label"].unique())
    sets, _ = listed_split(rows["track_id"].unique())
    fit, valid = rows["track_id"].isin(sets["train"]).to_numpy(), rows["track_id"].isin(sets["valid"]).to_numpy()
    y = one_hot(rows["label"], classes)
    return {name: track_accuracy(fitted(x[fit], y[fit], rows[fit].reset_index(drop=True), classes, epochs, settings,
                                        folder, seed=42), x[valid], rows[valid].reset_index(drop=True), classes)
            for name, settings in CONFIGURATIONS}


def cross_validation(x, rows, epochs, folder, configurations=CONFIGURATIONS, by="artist", n_folds=5):
    """{configuration: (correct, tracks)} of 5-fold cross-validation over the table's tracks, folds grouped `by`
    artist (or by track, which flatters), stratified by label."""
    classes = sorted(rows["label"].unique())
    tracks = rows.drop_duplicates("track_id").reset_index(drop=True)
    groups = artist_of(tracks["track_id"]) if by == "artist" else tracks["track_id"].to_numpy()
    folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=0)
    fold_of = {}
    for k, (_, held) in enumerate(folds.split(tracks["track_id"], tracks["label"], groups)):
        fold_of |= dict.fromkeys(tracks["track_id"].iloc[held], k)
    fold = rows["track_id"].map(fold_of).to_numpy()
    y = one_hot(rows["label"], classes)
    results = {}
    for name, settings in configurations:
        correct = total = 0
        for k in range(n_folds):
            model = fitted(x[fold != k], y[fold != k], rows[fold != k].reset_index(drop=True), classes, epochs,
                           settings, folder, seed=k)
            c, n = track_accuracy(model, x[fold == k], rows[fold == k].reset_index(drop=True), classes)
            correct, total = correct + c, total + n
        results[name] = (correct, total)
    return results


def line(name, correct, total):
    low, high = wilson_interval(correct, total)
    return f"{name:52} {correct / total:6.3f}  {low:.3f}-{high:.3f}  {total:5d}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[10, 50])
    args = parser.parse_args()
    if not KAGGLE.is_file() or not TAGGRAM.is_file():
        raise SystemExit(f"needs the real full-GTZAN tables in {REAL} (set GTZAN_REAL_DIR)")
    header = f"{'head':52} {'acc':>6}  {'95% CI':11}  {'tracks':>5}"
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        kaggle, taggram = read_table(KAGGLE, folder / "kaggle", ["length"]), read_table(TAGGRAM, folder / "taggram")
        for epochs in args.epochs:
            print(f"\nKaggle's 57 descriptors (30 s), trained on the 443 fault-filtered training clips, "
                  f"scored on the 197 validation clips (no artist on both sides); {epochs} epochs")
            print(header)
            for name, (correct, total) in kaggle_validation(*kaggle, epochs, folder).items():
                print(line(name, correct, total), flush=True)
            print(f"\nmusicnn taggrams (50 tags per 3 s window), 5-fold cross-validation over the 443 training "
                  f"clips, folds grouped by artist; {epochs} epochs")
            print(header)
            for name, (correct, total) in cross_validation(*taggram, epochs, folder).items():
                print(line(name, correct, total), flush=True)
        print("\nFor comparison only, INFLATED: the same taggram cross-validation with folds grouped by track "
              "(one artist's clips on both sides)")
        print(header)
        for name, (correct, total) in cross_validation(*taggram, args.epochs[0], folder, CONFIGURATIONS[1:2] +
                                                       CONFIGURATIONS[3:], by="track").items():
            print(line(f"{name} (inflated)", correct, total), flush=True)


if __name__ == "__main__":
    main()
