"""One-hot labels and the train/test splits."""

import numpy as np
import pandas as pd
import pytest

from stages.common import GENRES
from stages.encode import one_hot
from stages.split import listed_split, random_split, split, stratified_split


def test_one_hot_matches_the_seeds_np_unique_encoding():
    genres = np.array([g for g in GENRES for _ in range(3)])[::-1]
    classes, index = np.unique(genres, return_inverse=True)
    seed = np.eye(len(classes))[index]
    assert list(classes) == list(GENRES)
    np.testing.assert_array_equal(one_hot(genres), seed)


def test_blues_is_the_first_column_and_classical_the_second():
    np.testing.assert_array_equal(one_hot(["blues", "classical"])[:, :3], [[1, 0, 0], [0, 1, 0]])


def test_an_absent_genre_keeps_its_column():
    labels = one_hot(["rock", "blues"])
    assert labels.shape == (2, 10) and labels.dtype == np.float32
    assert labels[:, GENRES.index("jazz")].sum() == 0


def test_an_unknown_genre_is_refused():
    with pytest.raises(ValueError, match="polka"):
        one_hot(["blues", "polka"])


@pytest.fixture
def tracks():
    return pd.DataFrame({"track_id": [f"{g}.{i:05d}" for g in GENRES for i in range(10)],
                         "genre": [g for g in GENRES for _ in range(10)]})


def test_random_split_is_an_80_20_partition_fixed_by_the_seed(tracks):
    sets = random_split(tracks["track_id"], 0.8, seed=1)
    assert len(sets["train"]) == 80 and len(sets["test"]) == 20
    assert sorted(sets["train"] + sets["test"]) == sorted(tracks["track_id"])
    assert random_split(tracks["track_id"], 0.8, seed=1) == sets
    assert random_split(tracks["track_id"], 0.8, seed=2) != sets


def test_stratified_split_keeps_each_genres_share(tracks):
    sets = stratified_split(tracks["track_id"], tracks["genre"], 0.7, seed=0)
    test_genres = pd.Series([t.split(".")[0] for t in sets["test"]]).value_counts()
    assert (test_genres == 3).all() and len(test_genres) == 10
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
