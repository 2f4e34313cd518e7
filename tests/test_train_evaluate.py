"""The seed's network, reproducible training, and the test metrics."""

import numpy as np
import pytest

from stages.common import GENRES, UserError
from stages.evaluate import misclassified, scores
from stages.train import build_model, load_model, top_genres, train


@pytest.fixture(scope="module")
def toy_data():
    """60 clips x 50 values whose genre shifts their mean: learnable in a few epochs."""
    rng = np.random.default_rng(0)
    genres = np.arange(60) % 10
    x = (rng.standard_normal((60, 50)) + genres[:, None] / 3).astype(np.float32)
    return x, np.eye(10, dtype=np.float32)[genres]


def test_the_network_is_the_seeds():
    model = build_model(25000)
    hidden, output = model.layers
    assert model.input_shape == (None, 25000)
    assert (hidden.units, hidden.activation.__name__) == (100, "relu")
    assert (output.units, output.activation.__name__) == (10, "softmax")
    assert model.optimizer.learning_rate.numpy() == pytest.approx(0.001)
    assert model.count_params() == 25000 * 100 + 100 + 100 * 10 + 10


def test_training_twice_with_one_seed_gives_the_same_bytes(toy_data, tmp_path):
    x, y = toy_data
    train(x, y, epochs=3, seed=7, log_path=tmp_path / "a.csv")
    train(x, y, epochs=3, seed=7, log_path=tmp_path / "b.csv")
    train(x, y, epochs=3, seed=8, log_path=tmp_path / "c.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.csv").read_bytes() != (tmp_path / "c.csv").read_bytes()
    assert (tmp_path / "a.csv").read_text().splitlines()[0] == "epoch,accuracy,loss,val_accuracy,val_loss"


def test_listed_validation_clips_replace_validation_split(toy_data, tmp_path):
    x, y = toy_data
    _, history = train(x[:40], y[:40], validation=(x[40:], y[40:]), epochs=2, log_path=tmp_path / "log.csv")
    assert len(history["val_accuracy"]) == 2


def test_a_model_for_other_feature_settings_is_refused(tmp_path):
    build_model(50).save(tmp_path / "model.keras")
    with pytest.raises(UserError, match="takes 50 values per clip, but the features have 25000"):
        load_model(tmp_path / "model.keras", n_values=25000)


def test_a_missing_model_says_how_to_make_one(tmp_path):
    with pytest.raises(UserError, match="dvc repro train"):
        load_model(tmp_path / "model.keras")


def test_scores_on_a_known_confusion():
    y = np.eye(10, dtype=np.float32)[[0, 0, 1, 1]]
    probabilities = np.full((4, 10), 0.01, np.float32)
    probabilities[[0, 1, 2, 3], [0, 1, 1, 1]] = 0.91  # blues, classical, classical, classical
    result = scores(y, probabilities, GENRES)
    assert result["accuracy"] == 0.75
    assert result["per_genre"]["blues"] == {"precision": 1.0, "recall": 0.5, "f1": 0.666667, "test_clips": 2}
    assert result["per_genre"]["classical"]["precision"] == 0.666667
    assert result["macro_f1"] == pytest.approx((0.666667 + 0.8) / 10, abs=1e-6)
    assert result["loss"] == pytest.approx(-np.log(0.91) * 0.75 - np.log(0.01) * 0.25, rel=1e-4)


def test_misclassified_lists_the_top_three_guesses():
    y = np.eye(10, dtype=np.float32)[[0, 6]]
    probabilities = np.array([[0.5, 0.3, 0.2] + [0] * 7, [0.1, 0, 0, 0, 0, 0.2, 0.6, 0, 0, 0.1]], np.float32)
    table = misclassified(["blues.00001", "metal.00002"], y, probabilities, GENRES)
    assert table.to_dict("records") == []
    probabilities[0] = [0.2, 0.5, 0.3] + [0] * 7
    row = misclassified(["blues.00001", "metal.00002"], y, probabilities, GENRES).iloc[0]
    assert (row.track_id, row.actual, row.guess_1, row.guess_2, row.guess_3) == (
        "blues.00001", "blues", "classical", "country", "blues")


def test_top_genres_orders_by_probability():
    assert top_genres(np.array([[0.1, 0.7, 0.2]]), ["a", "b", "c"], k=2) == [[("b", 0.7), ("c", 0.2)]]
