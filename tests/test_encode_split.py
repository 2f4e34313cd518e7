"""One-hot labels from the data, and the train/validation/test splits."""

import numpy as np
import pandas as pd
import pytest

from stages.dataset import listed_tracks, write_list
from stages.encode import one_hot
from stages.source_gtzan import GENRES
from stages.split import listed_split, random_split, split, stratified_split


def test_one_hot_is_the_seeds_np_unique_encoding():
    genres = np.array([g for g in GENRES for _ in range(3)])[::-1]
    classes, index = np.unique(genres, return_inverse=True)
    ours_classes, ours = one_hot(genres)
    assert ours_classes == list(classes) == list(GENRES)
    np.testing.assert_array_equal(ours, np.eye(len(classes))[index])
    assert ours.dtype == np.float32


def test_the_classes_are_whatever_labels_the_data_has():
    classes, onehot = one_hot(["hip hop", "Métal", "calm", "Métal"])
    assert classes == ["Métal", "calm", "hip hop"]
    np.testing.assert_array_equal(onehot.argmax(axis=1), [2, 0, 1, 0])


@pytest.fixture
def tracks():
    return pd.DataFrame({"track_id": [f"{g}.{i:05d}" for g in GENRES for i in range(10)],
                         "label": [g for g in GENRES for _ in range(10)]})


def test_random_split_is_an_80_20_partition_fixed_by_the_seed(tracks):
    sets = random_split(tracks["track_id"], 0.8, 0.2, seed=1)
    assert (len(sets["train"]), len(sets["valid"]), len(sets["test"])) == (64, 16, 20)
    assert sorted(sets["train"] + sets["valid"] + sets["test"]) == sorted(tracks["track_id"])
    assert random_split(tracks["track_id"], 0.8, 0.2, seed=1) == sets
    assert random_split(tracks["track_id"], 0.8, 0.2, seed=2) != sets


def test_random_validation_is_what_kerass_validation_split_held_out(tracks):
    """The seed validated on the last fifth of its shuffled training clips: the same clips, in the same order."""
    sets = random_split(tracks["track_id"], 0.8, 0.2, seed=42)
    order = np.random.default_rng(42).permutation(100)
    seeds_train = list(np.asarray(tracks["track_id"])[order][:80])
    split_at = int(np.floor(80 * (1 - 0.2)))  # keras' train_validation_split
    assert sets["train"] == seeds_train[:split_at] and sets["valid"] == seeds_train[split_at:]


def per_label(ids):
    return pd.Series([t.split(".")[0] for t in ids]).value_counts().to_dict()


def test_stratified_split_keeps_each_labels_share_in_all_three_sets(tracks):
    sets = stratified_split(tracks["track_id"], tracks["label"], 0.7, 0.3, seed=0)
    assert per_label(sets["test"]) == {g: 3 for g in GENRES}
    assert per_label(sets["valid"]) == {g: 3 for g in GENRES}
    assert per_label(sets["train"]) == {g: 4 for g in GENRES}
    assert len(set(sets["train"]) & set(sets["test"])) == 0


def test_fault_filtered_split_has_the_published_sizes():
    every_clip = [f"{g}.{i:05d}" for g in GENRES for i in range(100)]
    sets, missing = listed_split(every_clip)
    assert {name: len(ids) for name, ids in sets.items()} == {"train": 443, "valid": 197, "test": 290}
    assert missing == []
    assert not set(sets["train"]) & set(sets["test"])


def test_fault_filtered_reports_listed_clips_that_are_missing(tracks):
    sets, missing = split(tracks, "fault_filtered")
    listed = sum(len(ids) for ids in sets.values())
    assert listed + len(missing) == 930
    assert all(track in set(tracks["track_id"]) for ids in sets.values() for track in ids)
    assert "blues.00000" in sets["valid"] and "blues.00029" in missing


def test_fault_filtered_refuses_tracks_that_are_not_gtzans():
    from stages.common import UserError
    mine = pd.DataFrame({"track_id": ["calm/a.mp3", "loud/b.mp3"], "label": ["calm", "loud"]})
    with pytest.raises(UserError, match="use split.method=random or stratified"):
        split(mine, "fault_filtered")


def test_track_ids_with_carriage_returns_and_line_separators_come_back_from_the_split_lists(tmp_path):
    ids = ["calm/a\rb.wav", "calm/c\u2028d.wav", "loud/e\x85f.wav", "loud/plain name.wav"]
    write_list(tmp_path / "train.txt", ids)
    assert listed_tracks("train", split=tmp_path) == ids
