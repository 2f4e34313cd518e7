"""What label is this song? The trained model on any audio file.

    python -m stages.predict SONG [SONG ...] [--json] [--model PATH]

SONG is a file or a folder of them (wav, au, flac, ogg, mp3, ...). Each song gets the feature
rows of `extract` by the recipe the model recorded when it was trained (so any experiment's
model works, whatever params.yaml says now), computed by the workers of params.yaml
(features.n_jobs, or the Dask cluster of features.scheduler), and the rows' probabilities are
averaged, over the classes the model was trained with.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from stages.core.console import log
from stages.core.errors import UserError, run
from stages.core.params import load_params
from stages.core.paths import MODEL
from stages.features.audio import AUDIO_SUFFIXES
from stages.features.files import WORKER_SETTINGS, file_results, require_weights
from stages.model.runner import Network, top_labels


def classify(rows, network):
    """Probabilities (n_classes,) of one song: the mean over its feature rows (n_windows, n_values)."""
    return network.predict(rows).mean(axis=0)


def songs(paths):
    """Yield (path, None) for every audio file named or inside a named folder, or (path, error) for a bad name."""
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
            if not found:
                yield path, "folder holds no audio files (" + ", ".join(sorted(AUDIO_SUFFIXES)) + ")"
            yield from ((song, None) for song in found)
        elif path.is_file():
            yield path, None
        else:
            yield path, "no such file or folder"


def format_row(song, n_windows, best, width=40, label_width=9):
    guesses = "  ".join(f"{label:>{label_width}} {p:5.1%}" for label, p in best)
    return f"{str(song):{width}}  {n_windows:7}  {guesses}"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m stages.predict", description="Tell the label of songs.")
    parser.add_argument("songs", nargs="+", metavar="SONG", help="audio file or folder of audio files")
    parser.add_argument("--model", type=Path, default=MODEL, help=f"trained model (default: {MODEL})")
    parser.add_argument("--json", action="store_true", help="print one JSON object per song")
    args = parser.parse_args(argv)

    workers = load_params()["features"]
    network = Network(args.model)
    if network.features["kind"] == "table":
        raise UserError(f"{args.model} was trained on a feature table and cannot read audio: "
                        "compute the table's features for your songs elsewhere")
    features = network.features | {key: workers[key] for key in WORKER_SETTINGS}
    require_weights(features)
    classes = network.classes
    named = list(songs(args.songs))
    computed = file_results([song for song, problem in named if problem is None], features,
                            features["n_jobs"], features["scheduler"])
    width = max(len(str(song)) for song, _ in named)
    label_width = max(9, *map(len, classes))
    if not args.json:
        ranks = "  ".join(f"{rank:>{label_width + 6}}" for rank in ("1st", "2nd", "3rd"))
        print(f"{'song':{width}}  {'windows':>7}  {ranks}")
    failed = 0
    for song, problem in named:
        if problem is None:
            rows, _, problem = next(computed)
        if problem is not None:
            log(f"predict: {song}: {problem}")
            failed += 1
            continue
        probabilities, n_windows = classify(rows, network), len(rows)
        best = top_labels(probabilities[np.newaxis], classes)[0]
        if args.json:
            print(json.dumps({"song": str(song), "windows": n_windows,
                              "top": [{"label": g, "probability": round(p, 4)} for g, p in best]},
                             ensure_ascii=False), flush=True)
        else:
            print(format_row(song, n_windows, best, width, label_width), flush=True)
    if failed:
        raise UserError(f"{failed} of the songs could not be classified (see above)")


if __name__ == "__main__":
    run(main)
