"""Stage `split`: which tracks train, which validate each epoch, and which test.

Output in data/split/: `train.txt`, `valid.txt` and `test.txt`, one track id a line. The split
is drawn from the download's catalogue (every track that is not a duplicate), never from what
extract could use: every experiment on the same data, `seed` and `split.*` is scored on the same
test tracks, whatever its feature params. A track is split as a whole: every window of a song is
on the same side.
"""

import math

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from stages.core.console import log
from stages.core.errors import UserError, run
from stages.core.files import atomic_output
from stages.core.gtzan import CLIP_ID
from stages.core.params import Data, Params, Split, load_params
from stages.core.paths import FAULT_FILTERED, RAW_TRACKS, SPLIT
from stages.core.tracks import in_catalogue_order, is_unused, read_tracks, write_list

SETS = ("train", "valid", "test")
SHOWN = 10
"""Track ids or labels printed by name in a message; the rest are counted."""


def hold_out(ids, validation_fraction, keep=0):
    """(train, valid): the last `validation_fraction` of `ids` held out, as Keras's validation_split slices,
    keeping at least `keep` of them (when there are as many) for training."""
    n_fit = max(min(keep, len(ids)), math.floor(len(ids) * (1.0 - validation_fraction)))
    return list(ids[:n_fit]), list(ids[n_fit:])


def random_split(track_ids, train_fraction=Split.train_fraction, validation_fraction=Split.validation_fraction,
                 seed=Params.seed):
    """The seed's shuffle: {'train', 'valid', 'test': ids}, a `train_fraction` share for train and valid.

    The training tracks are the seed's; valid is the last `validation_fraction` of them, the
    very tracks Keras's `validation_split` held out.
    """
    order = np.random.default_rng(seed).permutation(len(track_ids))
    n_train = round(train_fraction * len(track_ids))
    shuffled = [str(track) for track in np.asarray(track_ids)[order]]
    train, valid = hold_out(shuffled[:n_train], validation_fraction)
    return {"train": train, "valid": valid, "test": shuffled[n_train:]}


def shuffled_by_label(track_ids, labels, seed=Params.seed):
    """Yield each label's track ids, shuffled, labels in sorted order: one generator seeded by `seed` for all."""
    rng = np.random.default_rng(seed)
    track_ids, labels = np.asarray(track_ids, dtype=str), np.asarray(labels, dtype=str)
    for label in np.unique(labels):
        group = track_ids[labels == label]
        yield [str(track) for track in group[rng.permutation(len(group))]]


def stratified_split(track_ids, labels, train_fraction=Split.train_fraction,
                     validation_fraction=Split.validation_fraction, seed=Params.seed):
    """{'train', 'valid', 'test': ids} with each label's share the same in all three sets.

    A label with one track trains on it; one with two or more keeps at least one for training
    and one for testing.
    """
    sets = {name: [] for name in SETS}
    for shuffled in shuffled_by_label(track_ids, labels, seed):
        n_train = round(train_fraction * len(shuffled))
        if len(shuffled) >= 2:
            n_train = min(max(n_train, 1), len(shuffled) - 1)
        train, valid = hold_out(shuffled[:n_train], validation_fraction, keep=1)
        sets["train"] += train
        sets["valid"] += valid
        sets["test"] += shuffled[n_train:]
    return sets


def listed_split(track_ids, lists=FAULT_FILTERED):
    """The split written in `lists/{train,valid,test}.txt` (lines `genre/genre.NNNNN.wav`).

    Returns ({'train', 'valid', 'test': ids}, {'train', 'valid', 'test': listed ids not among `track_ids`}).
    """
    available = set(track_ids)
    sets, missing = {}, {}
    for name in SETS:
        listed = [line.rsplit("/", 1)[-1].rsplit(".", 1)[0] for line in (lists / f"{name}.txt").read_text().split()]
        sets[name] = [track for track in listed if track in available]
        missing[name] = [track for track in listed if track not in available]
    return sets, missing


def validation_from_training(sets, tracks, validation_fraction=Split.validation_fraction, seed=Params.seed):
    """`sets` with validation drawn from the training tracks, per label (stratified), for a list without one."""
    training = tracks.set_index("track_id").loc[sets["train"]].reset_index()
    drawn = {"train": [], "valid": [], "test": sets["test"]}
    for shuffled in shuffled_by_label(training["track_id"], training["label"], seed):
        train, valid = hold_out(shuffled, validation_fraction, keep=1)
        drawn["train"] += train
        drawn["valid"] += valid
    return drawn


def artist_groups(tracks):
    """(n_tracks,) str: each track's artist, or its own id where the artist is unknown (so that it stands alone)."""
    artists = tracks["artist"] if "artist" in tracks else pd.Series("", index=tracks.index)
    return np.where(artists.fillna("").str.strip() != "", artists.fillna(""), "\0track " + tracks["track_id"])


def held_out_by_group(tracks, groups, fraction, seed=Params.seed):
    """(kept, held out) track ids of `tracks` (track_id, label): about `fraction` of them held out, whole groups at
    a time, each label's share as even as the groups allow (scikit-learn's StratifiedGroupKFold, first fold)."""
    n_groups = len(set(groups))
    if n_groups < 2 or fraction <= 0:
        return list(tracks["track_id"]), []
    folds = StratifiedGroupKFold(n_splits=min(max(2, round(1 / fraction)), n_groups), shuffle=True, random_state=seed)
    kept, held = next(folds.split(tracks["track_id"], tracks["label"], groups))
    return list(tracks["track_id"].iloc[kept]), list(tracks["track_id"].iloc[held])


def artist_split(tracks, train_fraction=Split.train_fraction, validation_fraction=Split.validation_fraction,
                 seed=Params.seed):
    """({'train', 'valid', 'test': ids}, warnings) with no artist on two sides (artist_groups), as close to the
    fractions and each label's share as the artists allow; deterministic for a `seed`.

    A label whose tracks are all by one artist cannot be both trained and tested: it is trained on only, and
    a warning names it.
    """
    tracks = tracks.reset_index(drop=True)
    groups = artist_groups(tracks)
    warnings, alone = [], np.zeros(len(tracks), bool)
    for label, artists in pd.Series(groups).groupby(tracks["label"].to_numpy(), sort=True):
        if artists.nunique() == 1 and not artists.iat[0].startswith("\0"):
            alone[artists.index] = True
            warnings.append(f"split: warning: every track of label {label} is by {artists.iat[0]}: it is trained on "
                            "and never tested (add tracks of other artists)")
    rest = ~alone
    train_valid, test = held_out_by_group(tracks[rest], groups[rest], 1 - train_fraction, seed)
    fit = tracks["track_id"].isin(train_valid).to_numpy()
    train, valid = held_out_by_group(tracks[fit], groups[fit], validation_fraction, seed)
    return {"train": train + list(tracks["track_id"][alone]), "valid": valid, "test": test}, warnings


def named(items, shown=SHOWN):
    items = list(items)
    return ", ".join(items[:shown]) + (f" and {len(items) - shown} more" if len(items) > shown else "")


def check_gtzan(tracks, source):
    """Raise UserError unless `tracks` are GTZAN clips (of GTZAN's audio or a table of its features),
    as split.method=fault_filtered needs."""
    if source not in ("gtzan", "table"):
        raise UserError(f"split.method=fault_filtered lists GTZAN clips, and these tracks come from the {source} "
                        "source: use split.method=random or stratified")
    foreign = [track for track in tracks["track_id"] if not CLIP_ID.match(track)]
    if foreign:
        raise UserError(f"split.method=fault_filtered lists GTZAN clips, and {named(foreign, 3)} are not GTZAN clip "
                        "ids (genre.NNNNN): use split.method=random or stratified")


OFFICIAL_SETS = {"training": "train", "validation": "valid", "test": "test"}
"""FMA's ('set', 'split') values and the sets they are."""


def official_split(tracks, source):
    """{'train', 'valid', 'test': ids} of FMA's own artist-filtered split (the catalogue's `split` column)."""
    if source != "fma":
        raise UserError(f"split.method=official is FMA's own split, and these tracks come from the {source} source: "
                        "use split.method=random, stratified or (GTZAN) fault_filtered")
    return {name: tracks["track_id"][tracks["split"] == official].tolist() for official, name in OFFICIAL_SETS.items()}


def split(tracks, method=Split.method, train_fraction=Split.train_fraction,
          validation_fraction=Split.validation_fraction, seed=Params.seed, source=Data.source):
    """Split the tracks (track_id, label: one row per track) by `method`.

    Returns (sets, {set name: listed ids missing}, whether validation was drawn from training).
    With fault_filtered, a validation list none of whose tracks are here is drawn from the training
    tracks instead (stratified, `validation_fraction`).
    """
    if method == "fault_filtered":
        check_gtzan(tracks, source)
        sets, missing = listed_split(tracks["track_id"])
        if sets["valid"] or not sets["train"]:
            return sets, missing, False
        return validation_from_training(sets, tracks, validation_fraction, seed), missing, True
    if method == "official":
        return official_split(tracks, source), {}, False
    if method == "artist":
        sets, warnings = artist_split(tracks, train_fraction, validation_fraction, seed)
        for warning in warnings:
            log(warning)
        return sets, {}, False
    if method == "stratified":
        sets = stratified_split(tracks["track_id"], tracks["label"], train_fraction, validation_fraction, seed)
        return sets, {}, False
    return random_split(tracks["track_id"], train_fraction, validation_fraction, seed), {}, False


def labels_missing(sets, tracks):
    """{set name: labels of `tracks` (track_id, label) that have no track in that set}, each in label order."""
    label_of = dict(zip(tracks["track_id"], tracks["label"]))
    everyone = sorted(set(label_of.values()))
    return {name: [label for label in everyone if label not in {label_of[track] for track in ids}]
            for name, ids in sets.items()}


def check_labels(sets, tracks):
    """Raise UserError for a label with no training track; return warnings for labels without validation or test
    tracks in a set that has some (an empty set has a message of its own)."""
    missing = labels_missing(sets, tracks)
    if missing["train"]:
        raise UserError(f"no training track for label {named(missing['train'])}: use split.method: stratified, "
                        "which trains on every label, or add tracks of it")
    return [f"split: warning: no {what} track for label {named(missing[name])}"
            for name, what in (("valid", "validation"), ("test", "test")) if missing[name] and sets[name]]


def candidates(catalogue):
    """The tracks (track_id, label, and FMA's split and the artist if known) a split is drawn from: every catalogued track but the
    unused (duplicates, excluded), in catalogue order."""
    columns = [column for column in ("track_id", "label", "split", "artist") if column in catalogue]
    return in_catalogue_order(catalogue[~is_unused(catalogue)])[columns]


def split_catalogue(catalogue, settings, seed=Params.seed):
    """{'train', 'valid', 'test': ids} of a download's catalogue (RAW_TRACKS rows) by the `split` params group.

    Raises UserError for an empty training or test set and for a label without a training track.
    """
    tracks = candidates(catalogue)
    sets, missing, drawn = split(tracks, settings["method"], settings["train_fraction"],
                                 settings["validation_fraction"], seed, catalogue["source"].iat[0])
    for name, ids in missing.items():
        if ids:
            log(f"split: {len(ids)} clips of the {name} list are not in the catalogue: {named(ids)}")
    if drawn:
        log(f"split: none of the validation list's clips are here: {len(sets['valid'])} validation tracks drawn "
            f"from the training list instead (stratified, split.validation_fraction={settings['validation_fraction']})")
    if not sets["train"]:
        raise UserError(f"the train set is empty with {len(tracks)} tracks: check split.train_fraction")
    if not sets["test"]:
        if settings["method"] != "fault_filtered":
            raise UserError(f"the test set is empty with {len(tracks)} tracks: check split.train_fraction")
        log("split: warning: none of the test list's clips are here: evaluate will have no test track to score")
    for warning in check_labels(sets, tracks):
        log(warning)
    return sets


def main():
    params = load_params()
    sets = split_catalogue(read_tracks(RAW_TRACKS), params["split"], params["seed"])
    with atomic_output(SPLIT) as staging:
        staging.mkdir()
        for name, ids in sets.items():
            write_list(staging / f"{name}.txt", ids)
    log("split: " + ", ".join(f"{len(ids)} {name}" for name, ids in sets.items()) + " tracks")


if __name__ == "__main__":
    run(main)
