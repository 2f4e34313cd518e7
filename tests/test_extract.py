"""The extract stage: the seed's MFCC recipe, faithfully and in parallel."""

import librosa
import numpy as np
import pytest
import soundfile as sf

from stages.common import ClipTooShort
from stages.extract import extract, mfcc_matrix, mfcc_values

FEATURES = {"kind": "mfcc", "sample_rate": 22050,
            "mfcc": {"n_mfcc": 20, "n_fft": 2048, "hop_length": 512, "n_mels": 128, "n_values": 25000}}


def seed_recipe(path):
    """The seed tutorial's loop body, written out with librosa directly."""
    y, sr = librosa.load(path)
    mfcc = librosa.feature.mfcc(y=y, sr=sr)
    mfcc /= np.amax(np.absolute(mfcc))
    return np.ndarray.flatten(mfcc)[:25000]


def test_rows_equal_the_seed_recipe_on_real_gtzan_clips(sample_dir):
    clips = sorted(sample_dir.glob("*/*.00000.wav"))
    matrix, n_samples, reasons = extract(clips, FEATURES, n_jobs=2)
    assert matrix.shape == (10, 25000) and matrix.dtype == np.float32
    assert reasons == [None] * 10
    for row, clip in zip(matrix, clips):
        np.testing.assert_allclose(row, seed_recipe(clip), rtol=0, atol=1e-5)


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
    windows = np.random.default_rng(1).standard_normal((3, 22050 * 30)).astype(np.float32)
    stacked = mfcc_values(windows)
    assert stacked.shape == (3, 25000)
    for window, row in zip(windows, stacked):
        np.testing.assert_allclose(row, mfcc_values(window), atol=1e-6)


def test_audio_too_short_for_n_values_is_refused():
    with pytest.raises(ClipTooShort, match="fewer than n_values=25000"):
        mfcc_values(np.zeros(22050 * 10, np.float32) + 0.1)


@pytest.fixture
def corpus_with_bad_clips(tiny_corpus, tmp_path):
    """Three usable 30 s clips, a 10 s clip and a file that does not decode."""
    rng = np.random.default_rng(2)
    paths = []
    for name, seconds in [("a", 30), ("b", 30), ("short", 10), ("c", 30)]:
        paths.append(tmp_path / f"{name}.wav")
        sf.write(paths[-1], rng.uniform(-0.5, 0.5, 22050 * seconds), 22050)
    paths.insert(2, tmp_path / "corrupt.wav")
    paths[2].write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 100)
    return paths


def test_bad_clips_are_reported_not_fatal_and_never_padded(corpus_with_bad_clips):
    matrix, n_samples, reasons = extract(corpus_with_bad_clips, FEATURES, n_jobs=2)
    assert matrix.shape == (3, 25000)
    assert reasons[0] is None and reasons[1] is None and reasons[4] is None
    assert reasons[2].startswith("cannot decode")
    assert reasons[3].startswith("too short: 10.0 s")
    assert n_samples.tolist() == [22050 * 30, 22050 * 30, 0, 0, 22050 * 30]


def test_row_order_does_not_depend_on_the_number_of_workers(corpus_with_bad_clips):
    one, _, reasons_one = extract(corpus_with_bad_clips, FEATURES, n_jobs=1)
    two, _, reasons_two = extract(corpus_with_bad_clips, FEATURES, n_jobs=2)
    assert reasons_one == reasons_two
    np.testing.assert_array_equal(one, two)
