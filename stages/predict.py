"""What genre is this song? The trained model on any audio file.

    python -m stages.predict SONG [SONG ...] [--json] [--model PATH]

SONG is a file or a folder of them (wav, au, flac, ogg, mp3, ...). Each song is
cut into GTZAN-like 30 s windows (the last partial window dropped, unless the
song is shorter than one window), each window gets the features of `extract`
with the workspace's params, and the window probabilities are averaged.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from stages.common import GENRES, ClipTooShort, UserError, load_params, log, run
from stages.extract import feature_width, featurize, load_audio
from stages.train import MODEL, load_model, top_genres

AUDIO_SUFFIXES = {".wav", ".au", ".flac", ".ogg", ".mp3", ".m4a", ".aiff", ".aif", ".opus"}


def windows(y, window):
    """(n_samples,) audio -> (n_windows, window) whole windows, or (1, n_samples) if shorter than one."""
    n_windows = len(y) // window
    if n_windows == 0:
        return y[np.newaxis]
    return y[:n_windows * window].reshape(n_windows, window)


def classify(y, model, features, window_seconds=30.0, batch=8):
    """Genre probabilities (n_classes,) of audio y (n_samples,), averaged over its windows; and their number.

    Windows are featurized `batch` at a time, so a long song never needs all its spectrograms at once.
    Raises ClipTooShort if the song is too short for the features.
    """
    cut = windows(y, round(window_seconds * features["sample_rate"]))
    rows = np.concatenate([featurize(cut[start:start + batch], features) for start in range(0, len(cut), batch)])
    probabilities = model.predict_on_batch(rows)
    return np.asarray(probabilities).mean(axis=0), len(cut)


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


def predict_song(path, model, features):
    """(probabilities (n_classes,), n_windows) of one audio file; UserError says why it cannot be classified."""
    try:
        y = load_audio(path, features["sample_rate"])
    except Exception as error:  # decoders raise many types; each file gets its own line
        raise UserError(f"cannot decode ({error.__class__.__name__})")
    try:
        return classify(y, model, features)
    except ClipTooShort as error:
        raise UserError(f"too short for the features: {error}")


def format_row(song, n_windows, best, width=40):
    guesses = "  ".join(f"{genre:>9} {p:5.1%}" for genre, p in best)
    return f"{str(song):{width}}  {n_windows:7}  {guesses}"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m stages.predict", description="Tell the genre of songs.")
    parser.add_argument("songs", nargs="+", metavar="SONG", help="audio file or folder of audio files")
    parser.add_argument("--model", type=Path, default=MODEL, help=f"trained model (default: {MODEL})")
    parser.add_argument("--json", action="store_true", help="print one JSON object per song")
    args = parser.parse_args(argv)

    features = load_params()["features"]
    model = load_model(args.model, n_values=feature_width(features))
    named = list(songs(args.songs))
    width = max(len(str(song)) for song, _ in named)
    if not args.json:
        print(f"{'song':{width}}  {'windows':>7}  {'1st':>15}  {'2nd':>15}  {'3rd':>15}")
    failed = 0
    for song, problem in named:
        try:
            if problem is not None:
                raise UserError(problem)
            probabilities, n_windows = predict_song(song, model, features)
        except UserError as error:
            log(f"predict: {song}: {error}")
            failed += 1
            continue
        best = top_genres(probabilities[np.newaxis], GENRES)[0]
        if args.json:
            print(json.dumps({"song": str(song), "windows": n_windows,
                              "top": [{"genre": g, "probability": round(p, 4)} for g, p in best]}), flush=True)
        else:
            print(format_row(song, n_windows, best, width), flush=True)
    if failed:
        raise UserError(f"{failed} of the songs could not be classified (see above)")


if __name__ == "__main__":
    run(main)
