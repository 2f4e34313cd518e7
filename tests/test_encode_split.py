"""One-hot labels from the data, and the train/validation/test splits."""

import numpy as np
import pandas as pd
import pytest

from stages.core.errors import UserError
from stages.core.gtzan import GENRES
from stages.core.tracks import listed_tracks, write_list
from stages.encode import one_hot
from stages.split import check_labels, listed_split, random_split, split, stratified_split


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
    assert missing == {"train": [], "valid": [], "test": []}
    assert not set(sets["train"]) & set(sets["test"])


def test_fault_filtered_reports_listed_clips_that_are_missing(tracks):
    sets, missing, _ = split(tracks, "fault_filtered")
    listed = sum(len(ids) for ids in sets.values())
    assert listed + sum(map(len, missing.values())) == 930
    assert all(track in set(tracks["track_id"]) for ids in sets.values() for track in ids)
    assert "blues.00000" in sets["valid"] and "blues.00029" in missing["train"]


def test_track_ids_with_carriage_returns_and_line_separators_come_back_from_the_split_lists(tmp_path):
    ids = ["calm/a\rb.wav", "calm/c\u2028d.wav", "loud/e\x85f.wav", "loud/plain name.wav"]
    write_list(tmp_path / "train.txt", ids)
    assert listed_tracks("train", split=tmp_path) == ids


def test_stratified_trains_on_a_one_track_label_and_tests_a_two_track_label():
    tracks = pd.DataFrame({"track_id": ["solo", "duo 1", "duo 2"] + [f"many {i}" for i in range(10)],
                           "label": ["solo", "duo", "duo"] + ["many"] * 10})
    sets = stratified_split(tracks["track_id"], tracks["label"], 0.8, 0.2, seed=0)
    assert "solo" in sets["train"]
    assert len({"duo 1", "duo 2"} & set(sets["train"])) == 1 and len({"duo 1", "duo 2"} & set(sets["test"])) == 1


def test_a_label_without_a_training_track_stops_the_split_naming_it():
    tracks = pd.DataFrame({"track_id": ["a", "b", "c"], "label": ["calm", "calm", "loud"]})
    with pytest.raises(UserError, match="no training track for label loud: use split.method: stratified, which "
                                        "trains on every label, or add tracks of it"):
        check_labels({"train": ["a"], "valid": ["b"], "test": ["c"]}, tracks)


def test_a_label_without_validation_or_test_tracks_is_a_warning_naming_it():
    tracks = pd.DataFrame({"track_id": ["a", "b", "c", "d"], "label": ["calm", "calm", "loud", "loud"]})
    warnings = check_labels({"train": ["a", "c"], "valid": ["b"], "test": ["d"]}, tracks)
    assert warnings == ["split: warning: no validation track for label loud",
                        "split: warning: no test track for label calm"]


def test_fault_filtered_refuses_the_demo_corpus_though_its_ids_look_like_gtzans(tracks):
    with pytest.raises(UserError, match="come from the demo source: use split.method=random or stratified"):
        split(tracks, "fault_filtered", source="demo")


def test_fault_filtered_refuses_a_track_whose_id_is_not_a_gtzan_clip(tracks):
    odd = pd.concat([tracks, pd.DataFrame({"track_id": ["blues.00000 (copy)"], "label": ["blues"]})])
    with pytest.raises(UserError, match=r"blues.00000 \(copy\) are not GTZAN clip ids"):
        split(odd, "fault_filtered")


def test_fault_filtered_draws_validation_from_training_when_its_list_is_absent():
    training = listed_split([f"{g}.{i:05d}" for g in GENRES for i in range(100)])[0]["train"]
    tracks = pd.DataFrame({"track_id": training, "label": [t.split(".")[0] for t in training]})
    sets, missing, drawn = split(tracks, "fault_filtered", validation_fraction=0.2, source="table")
    assert drawn and len(missing["valid"]) == 197 and len(missing["test"]) == 290 and sets["test"] == []
    assert sorted(sets["train"] + sets["valid"]) == sorted(training) and not set(sets["train"]) & set(sets["valid"])
    assert set(per_label(sets["valid"])) == set(GENRES)
    assert len(sets["valid"]) == pytest.approx(0.2 * len(training), abs=10)


# ---------------------------------------------------------------- artists kept apart

@pytest.fixture
def with_artists():
    """10 labels x 12 tracks, each label's tracks by 6 artists of 2 tracks (artist 'a<label>-<k>'), 2 unknown."""
    rows = [(f"{g}.{i:05d}", g, "" if i >= 10 else f"a{g}-{i // 2}") for g in GENRES for i in range(12)]
    return pd.DataFrame(rows, columns=["track_id", "label", "artist"])


def artists_of(sets, tracks):
    artist = dict(zip(tracks["track_id"], tracks["artist"]))
    return {name: {artist[track] or track for track in ids} for name, ids in sets.items()}


def test_the_artist_split_puts_no_artist_on_two_sides(with_artists):
    sets, _, _ = split(with_artists, "artist", 0.8, 0.2, seed=1)
    artists = artists_of(sets, with_artists)
    assert not artists["train"] & artists["test"] and not artists["train"] & artists["valid"]
    assert not artists["valid"] & artists["test"]
    assert sorted(sum(sets.values(), [])) == sorted(with_artists["track_id"])
    assert 0.1 <= len(sets["test"]) / len(with_artists) <= 0.3
    assert {track.split(".")[0] for track in sets["test"]} == set(GENRES), "every label is tested"


def test_the_artist_split_is_fixed_by_the_seed(with_artists):
    first, again, other = (split(with_artists, "artist", 0.8, 0.2, seed=seed)[0] for seed in (1, 1, 2))
    assert first == again and first != other


def test_a_track_of_unknown_artist_counts_as_its_own_artist():
    from stages.split import artist_groups
    tracks = pd.DataFrame({"track_id": ["a", "b", "c"], "label": ["x"] * 3, "artist": ["", "", "Bob"]})
    groups = artist_groups(tracks)
    assert groups[0] != groups[1] and groups[2] == "Bob"


def test_a_label_of_one_artist_is_trained_never_tested_and_named_in_one_line(with_artists, capsys):
    from stages.split import split_catalogue
    one_artist = with_artists.assign(artist=np.where(with_artists["label"] == "blues", "John Lee Hooker",
                                                     with_artists["artist"]), source="gtzan", status="ok")
    sets = split_catalogue(one_artist, {"method": "artist", "train_fraction": 0.8, "validation_fraction": 0.2})
    blues = {track for track in one_artist["track_id"] if track.startswith("blues")}
    assert blues <= set(sets["train"])
    assert ("split: warning: every track of label blues is by John Lee Hooker: it is trained on and never tested "
            "(add tracks of other artists)") in capsys.readouterr().err.splitlines()


def test_gtzans_artists_are_sturms_index():
    from stages.sources.gtzan import gtzan_artists
    artists = gtzan_artists()
    assert len(artists) == 1000 and artists["blues.00000"] == "John Lee Hooker"
    assert artists["classical.00004"] == "JS Bach" and sum(artist == "" for artist in artists.values()) == 81
    assert artists["country.00002"] == ""


def test_the_fault_filtered_split_is_artist_disjoint_under_sturms_index():
    from stages.sources.gtzan import gtzan_artists
    artists = gtzan_artists()
    sets, _ = listed_split(list(artists))
    sides = {name: {artists[track] or track for track in ids} for name, ids in sets.items()}
    assert not sides["train"] & sides["test"] and not sides["valid"] & sides["test"]


def test_test_tracks_sharing_an_artist_with_training_are_counted():
    from stages.evaluate import shared_artists
    artist = {"a": "X", "b": "X", "c": "Y", "d": "", "e": "", "f": "Z"}
    assert shared_artists(["a", "c", "d"], ["b", "e", "f"], artist) == 1
    assert shared_artists(["a"], ["c", "d"], artist) == 0
