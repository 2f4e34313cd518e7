"""The extract stage: the seed's MFCC recipe, faithfully and in parallel, one row per window."""

import json
import os
import signal
import subprocess
import sys

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import PROJECT

import stages.features.files
import stages.features.workers
from stages.core.errors import UserError
from stages.core.rows import RowWriter
from stages.core.tracks import read_tracks
from stages.extract import extract
from stages.features.audio import ClipTooShort, windows
from stages.features.mfcc import mfcc_matrix, mfcc_values

FEATURES = {"kind": "mfcc", "sample_rate": 22050, "windows": "first",
            "mfcc": {"n_mfcc": 20, "n_fft": 2048, "hop_length": 512, "n_mels": 128, "n_values": 25000}}


def seed_recipe(path, n_samples=None):
    """The seed tutorial's loop body, written out with librosa directly (on the first `n_samples` if given)."""
    y, sr = librosa.load(path)
    y = y[:n_samples]
    mfcc = librosa.feature.mfcc(y=y, sr=sr)
    mfcc /= np.amax(np.absolute(mfcc))
    return np.ndarray.flatten(mfcc)[:25000]


def run_extract(paths, folder, features=FEATURES, n_jobs=2):
    """extract() on the files `paths` (labels: their folder names); returns (matrix, rows table, skipped table)."""
    tracks = pd.DataFrame({"track_id": [p.stem for p in paths], "label": [p.parent.name for p in paths],
                           "path": [str(p) for p in paths], "md5": "", "status": "ok", "source": "test"})
    extract(tracks, features, folder, n_jobs)
    return (np.load(folder / "features.npy"), read_tracks(folder / "tracks.csv"),
            pd.read_csv(folder / "skipped.csv", keep_default_na=False))


def test_rows_equal_the_seed_recipe_on_real_gtzan_clips(sample_dir, tmp_path):
    clips = sorted(sample_dir.glob("*/*.00000.wav"))
    for choice in ("first", "all"):
        matrix, rows, skipped = run_extract(clips, tmp_path / choice, FEATURES | {"windows": choice})
        assert matrix.shape == (10, 25000) and matrix.dtype == np.float32 and skipped.empty
        assert rows["window"].tolist() == [0] * 10
        for row, clip in zip(matrix, clips):
            np.testing.assert_allclose(row, seed_recipe(clip), rtol=0, atol=1e-5)


def test_every_window_of_a_long_song_is_a_row_of_its_track(sample_dir, tmp_path):
    song = tmp_path / "songs" / "rock" / "two minutes.flac"
    song.parent.mkdir(parents=True)
    clips = [sf.read(path, dtype="float32")[0] for path in sorted(sample_dir.glob("rock/*.wav"))[:4]]
    sf.write(song, np.concatenate(clips), 22050)
    matrix, rows, _ = run_extract([song], tmp_path / "all", FEATURES | {"windows": "all"})
    assert matrix.shape == (4, 25000)
    assert rows["track_id"].tolist() == ["two minutes"] * 4 and rows["window"].tolist() == [0, 1, 2, 3]
    assert rows["start"].tolist() == [0.0, 30.0, 60.0, 90.0]
    first, rows_first, _ = run_extract([song], tmp_path / "first")
    np.testing.assert_array_equal(first, matrix[:1])


def test_a_file_up_to_31_seconds_is_one_window_whole():
    for seconds in (29.9, 30.7, 31.0):
        y = np.ones(round(22050 * seconds), np.float32)
        assert windows(y, 22050, every=True).shape == (1, len(y))
    with pytest.raises(ClipTooShort):
        windows(np.empty(0, np.float32), 22050)


def test_a_longer_file_is_cut_into_exact_30_s_windows_and_a_shorter_rest_is_dropped():
    assert windows(np.ones(round(22050 * 31.1), np.float32), 22050, every=True).shape == (1, 661_500)
    assert windows(np.ones(round(22050 * 45.5), np.float32), 22050, every=True).shape == (1, 661_500)
    assert windows(np.ones(22050 * 95, np.float32), 22050, every=True).shape == (3, 661_500)
    assert windows(np.ones(22050 * 95, np.float32), 22050, every=False).shape == (1, 661_500)


def test_a_45_s_songs_row_is_the_seed_recipe_on_its_first_661500_samples(sample_dir, tmp_path):
    song = tmp_path / "songs" / "jazz" / "45 seconds.wav"
    song.parent.mkdir(parents=True)
    first, second = (sf.read(path, dtype="int16")[0] for path in sorted(sample_dir.glob("jazz/*.wav"))[:2])
    sf.write(song, np.concatenate([first, second[:22050 * 15]]), 22050, subtype="PCM_16")
    for choice in ("first", "all"):
        matrix, rows, _ = run_extract([song], tmp_path / choice, FEATURES | {"windows": choice}, n_jobs=1)
        assert matrix.shape == (1, 25000) and rows["duration"].tolist() == [30.0]
        np.testing.assert_allclose(matrix[0], seed_recipe(song, 661_500), rtol=0, atol=1e-5)


def test_windows_first_decodes_only_the_start_of_a_long_file(tmp_path, monkeypatch):
    song = tmp_path / "mixes" / "pop" / "ten minutes.wav"
    song.parent.mkdir(parents=True)
    sf.write(song, np.random.default_rng(0).uniform(-0.5, 0.5, 22050 * 600).astype(np.float32), 22050)
    decoded = []
    load_audio = stages.features.files.load_audio
    monkeypatch.setattr(stages.features.files, "load_audio", lambda *args, **kwargs: decoded.append(
        len(y := load_audio(*args, **kwargs))) or y)
    matrix, _, _ = run_extract([song], tmp_path / "first", n_jobs=1)
    assert matrix.shape == (1, 25000) and decoded == [22050 * 32]


@pytest.mark.parametrize("n_fft, hop_length, n_mels", [(2048, 512, 128), (1024, 256, 64)])
def test_mfcc_matrix_is_librosas_mfcc(n_fft, hop_length, n_mels):
    y = np.random.default_rng(3).uniform(-0.5, 0.5, 22050 * 5).astype(np.float32)
    ours = mfcc_matrix(y, 22050, 13, n_fft, hop_length, n_mels)
    theirs = librosa.feature.mfcc(y=y, sr=22050, n_mfcc=13, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
    assert ours.shape == theirs.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 * np.abs(theirs).max())


def test_values_are_scaled_into_minus_one_to_one():
    y = np.random.default_rng(0).standard_normal(22050 * 30).astype(np.float32)
    row = mfcc_values(y)
    assert row.shape == (25000,) and np.abs(row).max() == pytest.approx(1.0)


def test_a_stack_of_windows_gives_the_rows_of_each_window():
    stack = np.random.default_rng(1).standard_normal((3, 22050 * 30)).astype(np.float32)
    stacked = mfcc_values(stack)
    assert stacked.shape == (3, 25000)
    for window, row in zip(stack, stacked):
        np.testing.assert_allclose(row, mfcc_values(window), atol=1e-6)


def test_audio_too_short_for_n_values_is_refused():
    with pytest.raises(ClipTooShort, match="fewer than n_values=25000"):
        mfcc_values(np.zeros(22050 * 10, np.float32) + 0.1)


def test_the_matrix_is_written_row_by_row_as_numpy_saves_it(tmp_path):
    matrix = np.random.default_rng(0).standard_normal((7, 33)).astype(np.float32)
    writer = RowWriter(tmp_path / "rows.npy", 33)
    for start in range(0, 7, 3):
        writer.write(matrix[start:start + 3])
    writer.close()
    np.save(tmp_path / "saved.npy", matrix)
    assert (tmp_path / "rows.npy").read_bytes() == (tmp_path / "saved.npy").read_bytes()


@pytest.fixture
def corpus_with_bad_clips(tmp_path):
    """Three usable 30 s clips, a 10 s clip, a file that does not decode and a text file named .mp3."""
    rng = np.random.default_rng(2)
    paths = []
    for name, seconds in [("a", 30), ("b", 30), ("short", 10), ("c", 30)]:
        paths.append(tmp_path / "x" / f"{name}.wav")
        paths[-1].parent.mkdir(exist_ok=True)
        sf.write(paths[-1], rng.uniform(-0.5, 0.5, 22050 * seconds), 22050)
    paths.insert(2, tmp_path / "x" / "corrupt.wav")
    paths[2].write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 100)
    paths.append(tmp_path / "x" / "notes.mp3")
    paths[-1].write_text("not audio at all")
    return paths


def test_bad_clips_are_reported_not_fatal_and_never_padded(corpus_with_bad_clips, tmp_path):
    matrix, rows, skipped = run_extract(corpus_with_bad_clips, tmp_path / "out")
    assert matrix.shape == (3, 25000) and rows["track_id"].tolist() == ["a", "b", "c"]
    reasons = dict(zip(skipped["track_id"], skipped["reason"]))
    assert set(reasons) == {"corrupt", "short", "notes"}
    assert reasons["corrupt"].startswith("cannot decode") and reasons["notes"].startswith("cannot decode")
    assert reasons["short"].startswith("too short for the features: 10.0 s")
    assert str(tmp_path) not in " ".join(reasons.values()), "reasons name no machine-specific path"


def test_row_order_does_not_depend_on_the_number_of_workers(corpus_with_bad_clips, tmp_path):
    one, _, skipped_one = run_extract(corpus_with_bad_clips, tmp_path / "one", n_jobs=1)
    two, _, skipped_two = run_extract(corpus_with_bad_clips, tmp_path / "two", n_jobs=2)
    assert skipped_one.equals(skipped_two)
    np.testing.assert_array_equal(one, two)


def test_workers_from_the_fork_server_give_the_same_rows(corpus_with_bad_clips, tmp_path, monkeypatch):
    one, _, _ = run_extract(corpus_with_bad_clips, tmp_path / "one", n_jobs=1)
    monkeypatch.setattr(stages.features.workers, "_fork_is_safe", lambda: False)  # as where TensorFlow already runs
    served, _, _ = run_extract(corpus_with_bad_clips, tmp_path / "served", n_jobs=2)
    np.testing.assert_array_equal(one, served)


def test_an_error_that_is_not_about_the_file_stops_the_stage(corpus_with_bad_clips, tmp_path, monkeypatch):
    def broken(path, features):
        raise KeyError("a bug, not a bad file")
    monkeypatch.setattr(stages.features.files, "file_rows", broken)
    with pytest.raises(KeyError, match="a bug"):
        run_extract(corpus_with_bad_clips, tmp_path / "out", n_jobs=1)


def test_a_worker_that_dies_ends_the_stage_with_one_line_not_a_hang(corpus_with_bad_clips, tmp_path, monkeypatch):
    real = stages.features.files.file_rows

    def dying(path, features):
        if path.endswith("b.wav"):
            os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
        return real(path, features)
    monkeypatch.setattr(stages.features.files, "file_rows", dying)
    # forked workers, so that they see the patch (where TensorFlow already runs, a fork server's would not)
    monkeypatch.setattr(stages.features.workers, "_fork_is_safe", lambda: True)
    with pytest.raises(UserError, match="a worker process died .* with .*/b.wav.* in flight") as error:
        run_extract(corpus_with_bad_clips, tmp_path / "out", n_jobs=2)
    assert "\n" not in str(error.value)


def test_local_workers_start_safely_where_tensorflow_already_runs(corpus_with_bad_clips, tmp_path):
    """As in a notebook that trained a model first: no fork of TensorFlow's threads, and the same rows."""
    expected, _, _ = run_extract(corpus_with_bad_clips, tmp_path / "expected", n_jobs=1)
    probe = ("import json, sys\n"
             "import tensorflow as tf\n"
             "tf.constant(1.0) + 1  # TensorFlow's thread pools now run\n"
             "import numpy as np\n"
             "from stages.features.files import file_results\n"
             "rows = [r for r, _, reason in file_results(sys.argv[2:], json.loads(sys.argv[1]), n_jobs=2)"
             " if reason is None]\n"
             "np.save(sys.argv[2] + '.npy', np.concatenate(rows))\n")
    result = subprocess.run([sys.executable, "-c", probe, json.dumps(FEATURES), *map(str, corpus_with_bad_clips)],
                            cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(f"{corpus_with_bad_clips[0]}.npy"), expected)


def test_more_values_than_a_window_gives_is_named_as_the_cause_with_the_limit():
    from stages.features.mfcc import check_width
    check_width({"n_mfcc": 20, "hop_length": 512, "n_values": 25000}, 22050)
    with pytest.raises(UserError, match=r"features.mfcc.n_values=25000 is more than a 30 s window gives with "
                                        r"n_mfcc=13: 13 x 1292 frames = 16796; set n_values to at most 16796"):
        check_width({"n_mfcc": 13, "hop_length": 512, "n_values": 25000}, 22050)
