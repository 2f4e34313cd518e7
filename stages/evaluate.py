"""Stage `evaluate`: the trained model on the test tracks only.

Output in metrics/: `eval.json` (row-level accuracy, loss and macro F1; track-level accuracy and
macro F1, a track's probabilities averaged over its windows as predict does; each accuracy with
its 95% interval over tracks; where artists are known, how many test tracks share an artist with
training tracks; per-label precision, recall and F1 of the tracks; the test tracks
that have no feature rows and are not scored), `confusion.csv` (track_id, actual, predicted: one
record per test track), `confusion_counts.csv` (actual, predicted, tracks: every pair of labels, for
`dvc plots`), `confusion.png` and `misclassified.csv` (top-3 guesses).

Macro F1 is the mean F1 over the labels that have test tracks (rows): a label absent from the
test set is not counted as an F1 of 0.
"""

import numpy as np
import pandas as pd

from stages.core.console import log
from stages.core.errors import UserError, run
from stages.core.files import atomic_output, write_csv, write_json
from stages.core.paths import (
    CONFUSION,
    CONFUSION_COUNTS,
    CONFUSION_PLOT,
    EVAL_METRICS,
    MISCLASSIFIED,
    MODEL,
    RAW_TRACKS,
    SKIPPED,
)
from stages.core.sets import classes, feature_recipe, load_set
from stages.core.statistics import rounded, wilson_interval
from stages.core.tracks import listed_tracks, read_tracks
from stages.model.runner import Network, cross_entropy, top_labels


def scores(y, probabilities, classes):
    """Metrics of one-hot `y` and predicted `probabilities`, both (n, n_classes).

    per_label holds the labels that have test items or predictions; macro F1 averages those with test items.
    """
    actual, predicted = y.argmax(axis=1), probabilities.argmax(axis=1)
    per_label = {}
    for label in np.union1d(actual, predicted):
        hits = np.sum((actual == label) & (predicted == label))
        support, guessed = np.sum(actual == label), np.sum(predicted == label)
        precision = hits / guessed if guessed else 0.0
        recall = hits / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
        per_label[classes[label]] = {"precision": round(float(precision), 6), "recall": round(float(recall), 6),
                                     "f1": f1, "test_tracks": int(support)}
    macro_f1 = np.mean([row["f1"] for row in per_label.values() if row["test_tracks"]])
    for row in per_label.values():
        row["f1"] = round(float(row["f1"]), 6)
    return {
        "accuracy": round(float(np.mean(actual == predicted)), 6),
        "loss": round(cross_entropy(y, probabilities), 6),
        "macro_f1": round(float(macro_f1), 6),
        "per_label": per_label,
    }


def track_probabilities(rows, y, probabilities):
    """Average each track's window probabilities: (track ids, y (n_tracks, n_classes), probabilities)."""
    groups = pd.Series(np.arange(len(rows))).groupby(rows["track_id"].to_numpy(), sort=False).indices
    tracks = list(groups)
    return (tracks, np.stack([y[groups[t][0]] for t in tracks]),
            np.stack([probabilities[groups[t]].mean(axis=0) for t in tracks]))


def misclassified(track_ids, y, probabilities, classes, k=3):
    """One row per wrongly classified track: track_id, actual, then the top-k guesses and their probabilities."""
    rows = []
    for track, truth, guesses in zip(track_ids, y.argmax(axis=1), top_labels(probabilities, classes, k)):
        if guesses[0][0] != classes[truth]:
            row = {"track_id": track, "actual": classes[truth]}
            for rank, (label, p) in enumerate(guesses, 1):
                row |= {f"guess_{rank}": label, f"p_{rank}": round(p, 4)}
            rows.append(row)
    guesses = [f"{column}_{rank}" for rank in range(1, k + 1) for column in ("guess", "p")]
    return pd.DataFrame(rows, columns=["track_id", "actual", *guesses])


def confusion_counts(actual, predicted, classes):
    """(n_classes, n_classes) DataFrame: tracks of each actual label (rows) predicted as each label (columns),
    every label of `classes` on both sides, also one never predicted or never tested."""
    return pd.crosstab(pd.Categorical(actual, classes), pd.Categorical(predicted, classes), dropna=False,
                       rownames=["actual"], colnames=["predicted"])


def plot_confusion(counts, path):
    """Confusion matrix PNG of confusion_counts `counts`: actual labels down the side, counts written in."""
    from matplotlib.figure import Figure  # a figure of its own, drawn to a file: no pyplot, no GUI backend
    classes = list(counts.index)
    size = 2 + 0.5 * len(classes)
    figure = Figure(figsize=(size, size))
    axes = figure.subplots()
    matrix = counts.to_numpy()
    axes.imshow(matrix, cmap="viridis")
    for (row, column), count in np.ndenumerate(matrix):
        dark = count < matrix.max() / 2  # viridis is dark at the low end
        axes.text(column, row, count, ha="center", va="center", color="white" if dark else "black")
    axes.set(xticks=range(len(classes)), yticks=range(len(classes)), xlabel="Predicted label", ylabel="True label",
             title="Test tracks: actual vs predicted label")
    axes.set_xticklabels(classes, rotation=45, ha="right")
    axes.set_yticklabels(classes)
    figure.tight_layout()
    with atomic_output(path) as temporary:
        figure.savefig(temporary, dpi=100)


def shared_artists(train, test, artist_of):
    """How many of the `test` track ids share a known artist with one of the `train` track ids
    (`artist_of`: {track id: artist}, "" where unknown)."""
    trained = {artist_of.get(track, "") for track in train} - {""}
    return sum(artist_of.get(track, "") in trained for track in test)


def artist_leakage(test_tracks):
    """{"test_tracks_sharing_an_artist": n, "share_sharing_an_artist": n / tracks} of the scored `test_tracks`
    against the training list, or {} where the catalogue knows no artist."""
    catalogue = read_tracks(RAW_TRACKS)
    if "artist" not in catalogue or not catalogue["artist"].str.strip().any():
        return {}
    shared = shared_artists(listed_tracks("train"), test_tracks, dict(zip(catalogue["track_id"], catalogue["artist"])))
    if shared:
        log(f"evaluate: warning: {shared} of {len(test_tracks)} test tracks share an artist with training tracks: "
            "accuracy is likely inflated (split.method: artist)")
    return {"test_tracks_sharing_an_artist": shared, "share_sharing_an_artist": round(shared / len(test_tracks), 6)}


def bounds(name, interval):
    """{"<name>_low": .., "<name>_high": ..}: a 95% interval as two numbers, which `dvc exp show` lists (not a list)."""
    return dict(zip((f"{name}_low", f"{name}_high"), rounded(interval)))


def with_interval(accuracy, interval, n_tracks):
    """`0.530 (95% CI 0.461-0.598, 200 tracks)`."""
    return f"{accuracy:.3f} (95% CI {interval[0]:.3f}-{interval[1]:.3f}, {n_tracks} tracks)"


def main():
    x, y, rows, without_rows = load_set("test", in_memory=False)  # read in batches: the rows need not fit in memory
    if len(x) == 0 and not without_rows:
        raise UserError("the split's test list is empty (a feature table of training clips only?): there is "
                        "nothing to evaluate; compare models by cross-validation instead (benchmarks/real_gtzan.py)")
    if len(x) == 0:
        raise UserError(f"none of the {len(without_rows)} test tracks has feature rows: see {SKIPPED}")
    if without_rows:
        log(f"evaluate: {len(without_rows)} test tracks have no feature rows (extract skipped them: see {SKIPPED}) "
            f"and are not scored: {', '.join(without_rows[:5])}{' ...' if len(without_rows) > 5 else ''}")
    labels = classes()
    probabilities = Network(MODEL, feature_recipe(), labels).predict(x)
    by_row = scores(y, probabilities, labels)
    track_ids, track_y, track_p = track_probabilities(rows, y, probabilities)
    by_track = scores(track_y, track_p, labels)
    n_tracks = len(track_ids)
    # Over tracks, for row accuracy too: a track's windows are not independent evidence.
    row_interval, track_interval = (wilson_interval(scored["accuracy"] * n_tracks, n_tracks)
                                    for scored in (by_row, by_track))
    actual = [labels[i] for i in track_y.argmax(axis=1)]
    predicted = [labels[i] for i in track_p.argmax(axis=1)]
    write_json(EVAL_METRICS, {"accuracy": by_row["accuracy"], **bounds("accuracy", row_interval),
                              "macro_f1": by_row["macro_f1"], "loss": by_row["loss"],
                              "track_accuracy": by_track["accuracy"], **bounds("track_accuracy", track_interval),
                              "track_macro_f1": by_track["macro_f1"], "test_rows": len(x), "test_tracks": n_tracks,
                              **artist_leakage(track_ids), "test_tracks_without_rows": len(without_rows),
                              "labels_without_test_tracks": len(set(labels) - set(actual)),
                              "per_label": by_track["per_label"]})
    write_csv(CONFUSION, pd.DataFrame({"track_id": track_ids, "actual": actual, "predicted": predicted}))
    counts = confusion_counts(actual, predicted, labels)
    write_csv(CONFUSION_COUNTS, counts.stack().rename("tracks").reset_index())
    plot_confusion(counts, CONFUSION_PLOT)
    write_csv(MISCLASSIFIED, misclassified(track_ids, track_y, track_p, labels))
    line = (f"evaluate: test accuracy {with_interval(by_row['accuracy'], row_interval, n_tracks)}, "
            f"macro F1 {by_row['macro_f1']:.3f}")
    if len(x) > n_tracks:
        by_track_line = with_interval(by_track["accuracy"], track_interval, n_tracks)
        line += f"; {len(x)} windows averaged per track: {by_track_line}, macro F1 {by_track['macro_f1']:.3f}"
    print(line)


if __name__ == "__main__":
    run(main)
