"""Stage `split`: which tracks train, which validate each epoch, and which test.

Output in data/split/: `train.txt`, `valid.txt` and `test.txt`, one track id a line. A track
is split as a whole: every window of a song is on the same side.
"""

import math

import numpy as np

from stages.common import UserError, atomic_output, log, run
from stages.params import load_params
from stages.dataset import read_tracks, write_list
from stages.paths import FAULT_FILTERED, FEATURE_TRACKS, SPLIT

SETS = ("train", "valid", "test")


def hold_out(ids, validation_fraction):
    """(train, valid): the last `validation_fraction` of `ids` held out, as Keras's validation_split slices."""
    n_fit = math.floor(len(ids) * (1.0 - validation_fraction))
    return list(ids[:n_fit]), list(ids[n_fit:])


def random_split(track_ids, train_fraction=0.8, validation_fraction=0.2, seed=42):
    """The seed's shuffle: {'train', 'valid', 'test': ids}, a `train_fraction` share for train and valid.

    The training tracks are the seed's; valid is the last `validation_fraction` of them, the
    very tracks Keras's `validation_split` held out.
    """
    order = np.random.default_rng(seed).permutation(len(track_ids))
    n_train = round(train_fraction * len(track_ids))
    shuffled = [str(track) for track in np.asarray(track_ids)[order]]
    train, valid = hold_out(shuffled[:n_train], validation_fraction)
    return {"train": train, "valid": valid, "test": shuffled[n_train:]}


def stratified_split(track_ids, labels, train_fraction=0.8, validation_fraction=0.2, seed=42):
    """{'train', 'valid', 'test': ids} with each label's share the same in all three sets."""
    rng = np.random.default_rng(seed)
    sets = {name: [] for name in SETS}
    track_ids, labels = np.asarray(track_ids, dtype=str), np.asarray(labels, dtype=str)
    for label in np.unique(labels):
        group = track_ids[labels == label]
        shuffled = [str(track) for track in group[rng.permutation(len(group))]]
        n_train = round(train_fraction * len(group))
        train, valid = hold_out(shuffled[:n_train], validation_fraction)
        sets["train"] += train
        sets["valid"] += valid
        sets["test"] += shuffled[n_train:]
    return sets


def listed_split(track_ids, lists=FAULT_FILTERED):
    """The split written in `lists/{train,valid,test}.txt` (lines `genre/genre.NNNNN.wav`).

    Returns ({'train', 'valid', 'test': ids}, listed ids that are not among `track_ids`).
    """
    available = set(track_ids)
    sets, missing = {}, []
    for name in SETS:
        listed = [line.rsplit("/", 1)[-1].rsplit(".", 1)[0] for line in (lists / f"{name}.txt").read_text().split()]
        sets[name] = [track for track in listed if track in available]
        missing += [track for track in listed if track not in available]
    return sets, missing


def split(tracks, method="random", train_fraction=0.8, validation_fraction=0.2, seed=42):
    """Split the tracks (track_id, label: one row per track) by `method`; returns (sets, listed ids missing)."""
    if method == "fault_filtered":
        sets, missing = listed_split(tracks["track_id"])
        if not sets["train"] or not sets["test"]:
            raise UserError("split.method=fault_filtered lists GTZAN clips, and these tracks are not GTZAN's: "
                            "use split.method=random or stratified")
        return sets, missing
    if method == "stratified":
        return stratified_split(tracks["track_id"], tracks["label"], train_fraction, validation_fraction, seed), []
    return random_split(tracks["track_id"], train_fraction, validation_fraction, seed), []


def main():
    params = load_params()
    rows = read_tracks(FEATURE_TRACKS)
    tracks = rows.drop_duplicates("track_id")[["track_id", "label"]]
    settings = params["split"]
    sets, missing = split(tracks, settings["method"], settings["train_fraction"], settings["validation_fraction"],
                          params["seed"])
    if missing:
        log(f"split: {len(missing)} clips of the list are missing or were skipped: "
            f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}")
    for name in ("train", "test"):
        if not sets[name]:
            raise UserError(f"the {name} set is empty with {len(tracks)} tracks: check split.train_fraction")
    with atomic_output(SPLIT) as staging:
        staging.mkdir()
        for name, ids in sets.items():
            write_list(staging / f"{name}.txt", ids)
    log("split: " + ", ".join(f"{len(ids)} {name}" for name, ids in sets.items()) + " tracks")


if __name__ == "__main__":
    run(main)
