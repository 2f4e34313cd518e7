"""Stage `split`: which clips train and which test.

Output in data/split/: `train.txt` and `test.txt`, one track id a line, and for
the fault-filtered split `valid.txt`, which training then uses for validation.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from stages.common import atomic_output, load_params, log, run

FEATURE_TRACKS = Path("data/features/tracks.csv")
SPLIT = Path("data/split")
FAULT_FILTERED = Path("data/gtzan/splits/fault-filtered")


def random_split(track_ids, train_fraction=0.8, seed=42):
    """The seed's shuffle: {'train': ids, 'test': ids}, a `train_fraction` share in train."""
    order = np.random.default_rng(seed).permutation(len(track_ids))
    n_train = round(train_fraction * len(track_ids))
    shuffled = np.asarray(track_ids)[order]
    return {"train": list(shuffled[:n_train]), "test": list(shuffled[n_train:])}


def stratified_split(track_ids, genres, train_fraction=0.8, seed=42):
    """{'train': ids, 'test': ids} with each genre's share the same in both sets."""
    rng = np.random.default_rng(seed)
    sets = {"train": [], "test": []}
    table = pd.DataFrame({"track_id": track_ids, "genre": genres})
    for _, group in table.groupby("genre", sort=True):
        shuffled = group["track_id"].to_numpy()[rng.permutation(len(group))]
        n_train = round(train_fraction * len(group))
        sets["train"] += list(shuffled[:n_train])
        sets["test"] += list(shuffled[n_train:])
    return sets


def listed_split(track_ids, lists=FAULT_FILTERED):
    """The split written in `lists/{train,valid,test}.txt` (lines `genre/genre.NNNNN.wav`).

    Returns ({'train', 'valid', 'test': ids}, listed ids that are not among `track_ids`).
    """
    available = set(track_ids)
    sets, missing = {}, []
    for name in ("train", "valid", "test"):
        listed = [Path(line).stem for line in (lists / f"{name}.txt").read_text().split()]
        sets[name] = [track for track in listed if track in available]
        missing += [track for track in listed if track not in available]
    return sets, missing


def split(tracks, method="random", train_fraction=0.8, seed=42):
    """Dispatch on `method`; returns (sets, listed ids missing from `tracks`)."""
    if method == "fault_filtered":
        return listed_split(tracks["track_id"])
    if method == "stratified":
        return stratified_split(tracks["track_id"], tracks["genre"], train_fraction, seed), []
    return random_split(tracks["track_id"], train_fraction, seed), []


def main():
    params = load_params()
    tracks = pd.read_csv(FEATURE_TRACKS)
    sets, missing = split(tracks, params["split"]["method"], params["split"]["train_fraction"], params["seed"])
    if missing:
        log(f"split: {len(missing)} clips of the list are missing or were skipped: "
            f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}")
    with atomic_output(SPLIT) as staging:
        staging.mkdir()
        for name, ids in sets.items():
            (staging / f"{name}.txt").write_text("".join(f"{track}\n" for track in ids))
    log("split: " + ", ".join(f"{len(ids)} {name}" for name, ids in sets.items()))


if __name__ == "__main__":
    run(main)
