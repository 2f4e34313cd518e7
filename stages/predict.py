"""What label is this song? The trained model on any audio file.

    python -m stages.predict SONG [SONG ...] [--json] [--model PATH]

SONG is a file or a folder of them (wav, au, flac, ogg, mp3, ...). Each song gets the feature
rows of `extract` with the workspace's params (the same windows: features.windows), and the
rows' probabilities are averaged, over the classes the model was trained with.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from stages.audio import AUDIO_SUFFIXES, Unreadable
from stages.common import ClipTooShort, UserError, load_params, log, run
from stages.features import file_rows, recipe, require_weights
from stages.model import load_model, top_labels
from stages.paths import MODEL


def classify(path, model, features):
    """(probabilities (n_classes,), n_windows) of one audio file, averaged over its windows.

    Raises UserError saying why the file cannot be classified.
    """
    try:
        rows, _ = file_rows(path, features)
    except Unreadable as error:
        raise UserError(str(error))
    except ClipTooShort as error:
        raise UserError(f"too short for the features: {error}")
    return np.asarray(model.predict_on_batch(rows)).mean(axis=0), len(rows)


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

    features = load_params()["features"]
    model, record = load_model(args.model, recipe(features))
    require_weights(features)
    classes = record["classes"]
    named = list(songs(args.songs))
    width = max(len(str(song)) for song, _ in named)
    label_width = max(9, *map(len, classes))
    if not args.json:
        print(f"{'song':{width}}  {'windows':>7}  " + "  ".join(f"{rank:>{label_width + 6}}" for rank in ("1st", "2nd", "3rd")))
    failed = 0
    for song, problem in named:
        try:
            if problem is not None:
                raise UserError(problem)
            probabilities, n_windows = classify(song, model, features)
        except UserError as error:
            log(f"predict: {song}: {error}")
            failed += 1
            continue
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
