"""predict: the genre of any song, with the features of `extract` and the trained model."""

import io
import json
import os
import shutil
from contextlib import redirect_stderr, redirect_stdout
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from conftest import PARAMS_YAML, write_params

from stages.core.errors import run
from stages.core.gtzan import GENRES
from stages.core.params import load_params
from stages.features.files import file_results, recipe
from stages.model.network import build_model, save_model, seed_everything
from stages.model.runner import Network
from stages.predict import classify, main

SR = 22050
FEATURES = {"kind": "mfcc", "sample_rate": SR, "windows": "all",
            "mfcc": {"n_mfcc": 20, "n_fft": 2048, "hop_length": 512, "n_mels": 128, "n_values": 25000}}


def noise(seconds, seed=0):
    return np.random.default_rng(seed).uniform(-0.3, 0.3, round(SR * seconds)).astype(np.float32)


def song(folder, seconds, name="song.wav"):
    sf.write(folder / name, noise(seconds), SR)
    return folder / name


@pytest.fixture(scope="module")
def model():
    seed_everything(0)
    return build_model(25000)


def rows_of(path, features=FEATURES):
    """(rows, reason) of one song, as predict computes them."""
    rows, _, reason = next(file_results([path], features, n_jobs=1))
    return rows, reason


def test_classify_averages_the_windows_into_one_distribution(model, tmp_path):
    rows, _ = rows_of(song(tmp_path, 95))
    save_model(model, tmp_path / "model.keras", FEATURES, list(GENRES))
    network = Network(tmp_path / "model.keras")
    probabilities = classify(rows, network)
    assert len(rows) == 3 and probabilities.shape == (10,)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(probabilities, network.predict(rows).mean(axis=0), rtol=1e-6)


def test_with_the_first_window_only_a_long_song_is_one_row_as_in_extract(tmp_path):
    rows, _ = rows_of(song(tmp_path, 95), FEATURES | {"windows": "first"})
    assert len(rows) == 1


def test_a_song_too_short_for_the_features_gets_its_reason(tmp_path):
    rows, reason = rows_of(song(tmp_path, 12))
    assert rows is None and reason.startswith("too short for the features")


def test_a_song_of_eight_real_clips_has_eight_windows(sample_dir, tmp_path):
    clips = [sf.read(path, dtype="float32")[0] for path in sorted(sample_dir.glob("rock/*.wav"))[:4] * 2]
    sf.write(tmp_path / "long.wav", np.concatenate(clips), SR)
    rows, _ = rows_of(tmp_path / "long.wav")
    assert len(rows) == 8


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, model):
    """A folder with the project's params and a (seeded, untrained) model, and songs of every kind."""
    folder = tmp_path_factory.mktemp("predict")
    (folder / "params.yaml").write_text(PARAMS_YAML)
    write_params(folder, {"features.n_jobs": 1})  # in this process: no worker forked from a process running TensorFlow
    (folder / "data/model").mkdir(parents=True)
    save_model(model, folder / "data/model/model.keras", recipe(load_params(folder / "params.yaml")["features"]),
               list(GENRES))
    songs = folder / "songs"
    songs.mkdir()
    for fmt in ["wav", "flac", "ogg", "au", "mp3"]:
        sf.write(songs / f"song.{fmt}", noise(31, seed=1), SR, format=fmt.upper())
    sf.write(songs / "short.wav", noise(5), SR)
    (songs / "broken.mp3").write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 20)
    (folder / "empty").mkdir()
    return folder


def predict(workspace, *args):
    """`python -m stages.predict ARGS` in `workspace`, run in this process: (returncode, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            run(main, list(args))
        code = 0
    except SystemExit as stopped:
        code = stopped.code
    finally:
        os.chdir(cwd)
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


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


def test_the_table_has_a_row_per_song_with_three_labels(workspace):
    result = predict(workspace, "songs/song.wav")
    header, row = result.stdout.splitlines()
    assert header.split() == ["song", "windows", "1st", "2nd", "3rd"]
    assert row.startswith("songs/song.wav") and row.count("%") == 3
    assert result.returncode == 0 and result.stderr == ""


def test_a_model_of_other_feature_params_computes_rows_by_its_own_recipe(workspace, tmp_path):
    recipe_of_params = recipe(load_params(workspace / "params.yaml")["features"])
    other = recipe_of_params | {"mfcc": recipe_of_params["mfcc"] | {"n_values": 20000}}
    save_model(build_model(20000), tmp_path / "other.keras", other, list(GENRES))
    result = predict(workspace, "songs/song.wav", "--model", str(tmp_path / "other.keras"), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["windows"] == 1


@pytest.mark.parametrize("not_a_model", ["params.yaml", "songs", "songs/song.wav"])
def test_a_model_path_that_is_not_a_model_is_one_line(workspace, not_a_model):
    result = predict(workspace, "songs/song.wav", "--model", not_a_model)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: {not_a_model} is not a model saved by this pipeline's `train` stage: "
        "pass a data/model/model.keras, or run `dvc repro train`"]


def test_musicnn_features_without_the_checkpoint_say_what_to_run_once(workspace, model, tmp_path):
    other = tmp_path / "ws"
    shutil.copytree(workspace, other, symlinks=True)
    params = (other / "params.yaml").read_text().replace("kind: mfcc", "kind: musicnn")
    (other / "params.yaml").write_text(params)
    save_model(model, other / "data/model/model.keras", recipe(load_params(other / "params.yaml")["features"]),
               list(GENRES))
    result = predict(other, "songs")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: features.kind=musicnn needs the checkpoint in data/pretrained/MSD_musicnn: run `dvc repro pretrained`"]


def test_real_gtzan_clips_are_classified(workspace, sample_dir):
    result = predict(workspace, str(sample_dir / "jazz"), "--json")
    assert [json.loads(line)["windows"] for line in result.stdout.splitlines()] == [1] * 5
