"""predict: the genre of any song, with the features of `extract` and the trained model."""

import json
import shutil
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import PROJECT, run_in
from stages.common import ClipTooShort
from stages.predict import classify, windows
from stages.train import build_model, seed_everything

SR = 22050
FEATURES = {"kind": "mfcc", "sample_rate": SR,
            "mfcc": {"n_mfcc": 20, "n_fft": 2048, "hop_length": 512, "n_mels": 128, "n_values": 25000}}


def noise(seconds, seed=0):
    return np.random.default_rng(seed).uniform(-0.3, 0.3, round(SR * seconds)).astype(np.float32)


def test_a_long_song_is_cut_into_whole_30_s_windows():
    cut = windows(noise(4 * 60 + 10), 30 * SR)
    assert cut.shape == (8, 30 * SR)


def test_a_song_shorter_than_a_window_is_used_whole():
    assert windows(noise(29.5), 30 * SR).shape == (1, round(29.5 * SR))


@pytest.fixture(scope="module")
def model():
    seed_everything(0)
    return build_model(25000)


def test_classify_averages_the_windows_into_one_distribution(model):
    probabilities, n_windows = classify(noise(95), model, FEATURES)
    assert n_windows == 3 and probabilities.shape == (10,)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)


def test_classify_refuses_a_song_too_short_for_the_features(model):
    with pytest.raises(ClipTooShort):
        classify(noise(12), model, FEATURES)


def test_a_song_of_eight_real_clips_has_eight_windows(sample_dir, model):
    clips = [sf.read(path, dtype="float32")[0] for path in sorted(sample_dir.glob("rock/*.wav"))[:4] * 2]
    _, n_windows = classify(np.concatenate(clips), model, FEATURES)
    assert n_windows == 8


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, model):
    """A folder with the project's params and a (seeded, untrained) model, and songs of every kind."""
    folder = tmp_path_factory.mktemp("predict")
    shutil.copy(PROJECT / "params.yaml", folder)
    (folder / "stages").symlink_to(PROJECT / "stages")
    (folder / "data/model").mkdir(parents=True)
    model.save(folder / "data/model/model.keras")
    songs = folder / "songs"
    songs.mkdir()
    for fmt in ["wav", "flac", "ogg", "au", "mp3"]:
        sf.write(songs / f"song.{fmt}", noise(31, seed=1), SR, format=fmt.upper())
    sf.write(songs / "short.wav", noise(5), SR)
    (songs / "broken.mp3").write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 20)
    (folder / "empty").mkdir()
    return folder


def predict(workspace, *args):
    return run_in(workspace, sys.executable, "-m", "stages.predict", *args, check=False)


@pytest.fixture(scope="module")
def mixed_run(workspace):
    """One run over good songs and every kind of bad input."""
    return predict(workspace, "songs", "missing.wav", "empty", "--json")


def test_every_common_format_is_classified(mixed_run):
    results = [json.loads(line) for line in mixed_run.stdout.splitlines()]
    assert sorted(r["song"] for r in results) == [f"songs/song.{f}" for f in ["au", "flac", "mp3", "ogg", "wav"]]
    for result in results:
        assert result["windows"] == 1 and len(result["top"]) == 3
        assert result["top"][0]["probability"] >= result["top"][1]["probability"]


def test_each_bad_input_gets_one_clear_line_and_the_rest_still_run(mixed_run):
    *problems, summary = mixed_run.stderr.splitlines()
    by_song = {line.split(": ")[1]: line for line in problems}
    assert len(problems) == 4, "decoders' own warnings stay out of the way"
    assert set(by_song) == {"songs/broken.mp3", "songs/short.wav", "missing.wav", "empty"}
    assert "cannot decode" in by_song["songs/broken.mp3"]
    assert "too short for the features" in by_song["songs/short.wav"]
    assert "no such file or folder" in by_song["missing.wav"]
    assert "folder holds no audio files" in by_song["empty"]
    assert summary == "error: 4 of the songs could not be classified (see above)"
    assert mixed_run.returncode == 1


def test_the_table_has_a_row_per_song_with_three_genres(workspace):
    result = predict(workspace, "songs/song.wav")
    header, row = result.stdout.splitlines()
    assert header.split() == ["song", "windows", "1st", "2nd", "3rd"]
    assert row.startswith("songs/song.wav") and row.count("%") == 3
    assert result.returncode == 0 and result.stderr == ""


def test_a_model_for_other_feature_settings_is_refused(workspace, tmp_path):
    build_model(500).save(tmp_path / "narrow.keras")
    result = predict(workspace, "songs/song.wav", "--model", str(tmp_path / "narrow.keras"))
    assert result.returncode == 1
    assert result.stderr.strip().endswith("takes 500 values per clip, but the features have 25000: "
                                          "it was trained with other feature params; run `dvc repro` to retrain")
    assert len(result.stderr.strip().splitlines()) == 1


def test_real_gtzan_clips_are_classified(workspace, sample_dir):
    result = predict(workspace, str(sample_dir / "jazz"), "--json")
    assert [json.loads(line)["windows"] for line in result.stdout.splitlines()] == [1] * 5
