"""Stage `evaluate`: the trained model on the test clips only.

Output in metrics/: `eval.json` (accuracy, loss, macro F1, per-genre precision,
recall and F1, test clip count, data source), `confusion.csv` (actual, predicted:
one record per test clip), `confusion.png` and `misclassified.csv` (top-3 guesses).
"""

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from sklearn.metrics import ConfusionMatrixDisplay, f1_score, precision_recall_fscore_support

from stages.common import UserError, atomic_output, run, write_csv, write_json
from stages.train import data_source, load_model, load_set, top_genres

CLASSES = Path("data/labels/classes.json")
EVAL_METRICS = Path("metrics/eval.json")
CONFUSION = Path("metrics/confusion.csv")
CONFUSION_PLOT = Path("metrics/confusion.png")
MISCLASSIFIED = Path("metrics/misclassified.csv")


def scores(y, probabilities, classes):
    """Test metrics of one-hot `y` and predicted `probabilities`, both (n_clips, n_classes)."""
    actual, predicted = y.argmax(axis=1), probabilities.argmax(axis=1)
    labels = np.arange(len(classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        actual, predicted, labels=labels, zero_division=0)
    loss = np.mean(keras.losses.categorical_crossentropy(y, probabilities))
    return {
        "accuracy": round(float(np.mean(actual == predicted)), 6),
        "loss": round(float(loss), 6),
        "macro_f1": round(float(f1_score(actual, predicted, labels=labels, average="macro", zero_division=0)), 6),
        "per_genre": {genre: {"precision": round(float(p), 6), "recall": round(float(r), 6),
                              "f1": round(float(f), 6), "test_clips": int(s)}
                      for genre, p, r, f, s in zip(classes, precision, recall, f1, support)},
    }


def misclassified(track_ids, y, probabilities, classes, k=3):
    """One row per wrongly classified clip: track_id, actual, then the top-k guesses and their probabilities."""
    rows = []
    for track, truth, guesses in zip(track_ids, y.argmax(axis=1), top_genres(probabilities, classes, k)):
        if guesses[0][0] != classes[truth]:
            row = {"track_id": track, "actual": classes[truth]}
            for rank, (genre, p) in enumerate(guesses, 1):
                row |= {f"guess_{rank}": genre, f"p_{rank}": round(p, 4)}
            rows.append(row)
    return pd.DataFrame(rows, columns=["track_id", "actual"] + [f"{c}_{r}" for r in range(1, k + 1) for c in ("guess", "p")])


def plot_confusion(actual, predicted, classes, path):
    """Confusion matrix PNG of genre names `actual` and `predicted`."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    display = ConfusionMatrixDisplay.from_predictions(actual, predicted, labels=classes, xticks_rotation=45,
                                                      colorbar=False)
    display.ax_.set_title("Test clips: actual vs predicted genre")
    display.figure_.tight_layout()
    with atomic_output(path) as temporary:
        display.figure_.savefig(temporary, dpi=100)
    plt.close(display.figure_)


def main():
    test_set = load_set("test")
    x, y, track_ids = test_set
    if len(x) == 0:
        raise UserError("the test set is empty: check the split params")
    classes = json.loads(CLASSES.read_text())
    model = load_model(n_values=x.shape[1])
    probabilities = model.predict(x, verbose=0)
    metrics = scores(y, probabilities, classes)
    source = data_source()
    write_json(EVAL_METRICS, {key: metrics[key] for key in ("accuracy", "loss", "macro_f1")}
               | {"test_clips": len(x), "source": source, "per_genre": metrics["per_genre"]})
    actual = [classes[i] for i in y.argmax(axis=1)]
    predicted = [classes[i] for i in probabilities.argmax(axis=1)]
    write_csv(CONFUSION, pd.DataFrame({"track_id": track_ids, "actual": actual, "predicted": predicted}))
    plot_confusion(actual, predicted, classes, CONFUSION_PLOT)
    write_csv(MISCLASSIFIED, misclassified(track_ids, y, probabilities, classes))
    print(f"evaluate: test accuracy {metrics['accuracy']:.3f}, macro F1 {metrics['macro_f1']:.3f} "
          f"on {len(x)} {source} clips")


if __name__ == "__main__":
    run(main)
