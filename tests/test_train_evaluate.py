"""The seed's network, reproducible training and saving, and the test metrics."""

import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from conftest import PROJECT

from stages.core.errors import UserError
from stages.core.gtzan import GENRES
from stages.evaluate import misclassified, scores, track_probabilities
from stages.model.network import build_model, save_model, seed_everything, training_batches
from stages.model.runner import Network, cross_entropy, top_labels
from stages.train import train

RECIPE = {"kind": "mfcc", "sample_rate": 22050, "windows": "first",
          "mfcc": {"n_mfcc": 20, "n_fft": 2048, "hop_length": 512, "n_mels": 128, "n_values": 50}}


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


def test_the_fused_adam_steps_as_keras_adam_does_within_float32_rounding(toy_data):
    import keras
    x, y = toy_data
    weights = {}
    for name in ("fused", "keras"):
        keras.utils.set_random_seed(3)
        model = build_model(50)
        if name == "keras":
            model.compile(optimizer=keras.optimizers.Adam(0.001), loss="categorical_crossentropy")
        for start in range(0, 60, 10):
            model.train_on_batch(x[start:start + 10], y[start:start + 10])
        weights[name] = model.get_weights()
    # The kernel rounds 1 - beta in float32 where Keras rounds it in float64: weights of order 0.1 differ by up to
    # 1e-7 after these six steps.
    for fused, reference in zip(weights["fused"], weights["keras"]):
        np.testing.assert_allclose(fused, reference, rtol=0, atol=1e-6)
    assert any((fused != reference).any() for fused, reference in zip(weights["fused"], weights["keras"]))


def test_training_twice_with_one_seed_gives_the_same_bytes(toy_data, tmp_path):
    x, y = toy_data
    for name, seed in [("a", 7), ("b", 7), ("c", 8)]:
        model, _, _ = train(x[:48], y[:48], (x[48:], y[48:]), epochs=3, seed=seed, log_path=tmp_path / f"{name}.csv")
        save_model(model, tmp_path / f"{name}.keras", RECIPE, list(GENRES))
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.csv").read_bytes() != (tmp_path / "c.csv").read_bytes()
    assert (tmp_path / "a.keras").read_bytes() == (tmp_path / "b.keras").read_bytes()
    assert (tmp_path / "a.csv").read_text().splitlines()[0] == "epoch,accuracy,loss,val_accuracy,val_loss"


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_training_in_memory_gives_the_weights_and_history_of_kerass_own_fit(dropout, toy_data, tmp_path):
    # The same batches through the same ops on this machine: equal to the bit. 50 rows leave a partial batch of 16.
    x, y = toy_data
    model, history, _ = train(x[:50], y[:50], (x[50:], y[50:]), epochs=3, seed=5, batch_size=16, dropout=dropout,
                              log_path=tmp_path / "log.csv", verbose=0)
    seed_everything(5)
    reference = build_model(50, 10, dropout=dropout)
    expected = reference.fit(x[:50], y[:50], batch_size=16, epochs=3, validation_data=(x[50:], y[50:]), verbose=0)
    assert history == expected.history
    for ours, kerass in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(ours, kerass)


def test_the_training_batches_repeat_one_shuffled_order_from_one_iterator_without_tf_datas_optimizations(toy_data):
    x, y = toy_data
    seed_everything(1)
    stream, steps = training_batches(x[:50], y[:50], batch_size=16)
    batches = [rows for rows, _ in stream.take(2 * steps).as_numpy_iterator()]
    assert steps == 4 and [len(rows) for rows in batches] == [16, 16, 16, 2] * 2
    epoch = np.concatenate(batches[:steps])
    np.testing.assert_array_equal(np.concatenate(batches[steps:]), epoch)
    assert not np.array_equal(epoch, x[:50])
    np.testing.assert_array_equal(np.sort(epoch, axis=0), np.sort(x[:50], axis=0))
    assert stream.options().autotune.enabled is False
    assert stream.options().experimental_optimization.apply_default_optimizations is False


def test_the_model_records_its_feature_params_and_classes(tmp_path):
    save_model(build_model(50), tmp_path / "model.keras", RECIPE, list(GENRES))
    network = Network(tmp_path / "model.keras", RECIPE, GENRES)
    assert (network.features, network.classes) == (RECIPE, list(GENRES))


@pytest.mark.parametrize("hidden_units", [0, 100])
def test_the_saved_network_predicts_as_keras_does_without_tensorflow(hidden_units, toy_data, tmp_path):
    x, y = toy_data
    model, _, _ = train(x, y, epochs=2, seed=3, hidden_units=hidden_units, log_path=tmp_path / "log.csv", verbose=0)
    save_model(model, tmp_path / "model.keras", RECIPE, list(GENRES))
    ours = Network(tmp_path / "model.keras").predict(x, batch_size=7)
    np.testing.assert_allclose(ours, model.predict(x, verbose=0), rtol=0, atol=1e-6)
    import keras
    assert cross_entropy(y, ours) == pytest.approx(float(np.mean(keras.losses.categorical_crossentropy(y, ours))),
                                                   rel=1e-6)


def test_a_standardized_model_stores_the_training_mean_and_scale_and_runs_on_raw_rows(toy_data, tmp_path):
    x, y = toy_data
    raw = x * np.linspace(0.01, 1e5, x.shape[1], dtype=np.float32)  # descriptors of very different scales
    model, _, standardized = train(raw.copy(), y, epochs=2, seed=3, standardize=True, log_path=tmp_path / "log.csv",
                                   verbose=0)
    mean, scale = standardized
    np.testing.assert_allclose(mean, raw.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(scale, raw.std(axis=0), rtol=1e-4)
    save_model(model, tmp_path / "model.keras", RECIPE, list(GENRES), standardized)
    ours = Network(tmp_path / "model.keras").predict(raw)
    np.testing.assert_allclose(ours, model.predict((raw - mean) / scale, verbose=0), rtol=0, atol=1e-6)


def test_a_layer_the_numpy_runner_cannot_run_is_refused_when_saving(tmp_path):
    import keras
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3, activation="tanh", name="odd")])
    with pytest.raises(UserError, match="layer 'odd' \\(Dense, activation tanh\\) cannot be run"):
        save_model(model, tmp_path / "model.keras", RECIPE, ["a", "b", "c"])
    assert not (tmp_path / "model.keras").exists()


def test_a_model_whose_layers_do_not_chain_is_refused_in_one_line(tmp_path):
    save_model(build_model(50), tmp_path / "model.keras", RECIPE, list(GENRES))
    with zipfile.ZipFile(tmp_path / "model.keras") as original, \
            zipfile.ZipFile(tmp_path / "broken.keras", "w") as broken:
        for info in original.infolist():
            data = original.read(info)
            if info.filename == "pipeline/kernel_1.npy":
                buffer = io.BytesIO()
                np.save(buffer, np.zeros((7, 10), np.float32))
                data = buffer.getvalue()
            broken.writestr(info, data)
    with pytest.raises(UserError, match="is not a model saved by this pipeline's `train` stage"):
        Network(tmp_path / "broken.keras")


def test_a_model_trained_on_another_tables_columns_is_refused_naming_the_column(tmp_path):
    trained = {"kind": "table", "columns": ["tempo", "rms_mean", "rms_var"]}
    save_model(build_model(3), tmp_path / "model.keras", trained, list(GENRES))
    with pytest.raises(UserError, match="whose column 2 is 'rms_mean', but this table's is 'zcr_mean'"):
        Network(tmp_path / "model.keras", {"kind": "table", "columns": ["tempo", "zcr_mean", "rms_var"]})


def test_the_saved_file_is_still_a_keras_model_with_kerass_adam(toy_data, tmp_path):
    import keras
    model = build_model(50)
    model.train_on_batch(*toy_data)
    save_model(model, tmp_path / "model.keras", RECIPE, list(GENRES))
    assert keras.models.load_model(tmp_path / "model.keras", compile=False).input_shape == (None, 50)
    assert type(keras.models.load_model(tmp_path / "model.keras").optimizer) is keras.optimizers.Adam


@pytest.mark.parametrize("dotted, value", [("sample_rate", 16000), ("mfcc.n_fft", 1024), ("mfcc.n_mels", 64),
                                           ("windows", "all")])
def test_a_model_for_other_feature_params_is_refused_naming_the_param(dotted, value, tmp_path):
    save_model(build_model(50), tmp_path / "model.keras", RECIPE, list(GENRES))
    other = {**RECIPE, "mfcc": dict(RECIPE["mfcc"])}
    group, _, key = dotted.rpartition(".")
    (other[group] if group else other)[key] = value
    with pytest.raises(UserError, match=rf"trained on features with features.{dotted}=.*but these have {value!r}"):
        Network(tmp_path / "model.keras", other)


def test_a_model_for_other_classes_is_refused(tmp_path):
    save_model(build_model(50), tmp_path / "model.keras", RECIPE, list(GENRES))
    with pytest.raises(UserError, match="trained on the classes"):
        Network(tmp_path / "model.keras", RECIPE, ["calm", "loud"])


@pytest.mark.parametrize("kind", ["text", "folder", "wav", "plain keras"])
def test_a_file_that_is_not_a_pipeline_model_is_refused_in_one_line(kind, tmp_path):
    path = tmp_path / {"text": "notes.keras", "folder": "dir.keras", "wav": "song.wav", "plain keras": "m.keras"}[kind]
    if kind == "text":
        path.write_text("hello")
    elif kind == "folder":
        path.mkdir()
    elif kind == "wav":
        path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt ")
    else:
        build_model(50).save(path)
    with pytest.raises(UserError, match="is not a model saved by this pipeline's `train` stage") as error:
        Network(path)
    assert "\n" not in str(error.value)


def test_a_missing_model_says_how_to_make_one(tmp_path):
    with pytest.raises(UserError, match="dvc repro train"):
        Network(tmp_path / "model.keras")


def test_scores_on_a_known_confusion():
    y = np.eye(10, dtype=np.float32)[[0, 0, 1, 1]]
    probabilities = np.full((4, 10), 0.01, np.float32)
    probabilities[[0, 1, 2, 3], [0, 1, 1, 1]] = 0.91  # blues, classical, classical, classical
    result = scores(y, probabilities, GENRES)
    assert result["accuracy"] == 0.75
    assert result["per_label"]["blues"] == {"precision": 1.0, "recall": 0.5, "f1": 0.666667, "test_tracks": 2}
    assert result["per_label"]["classical"]["precision"] == 0.666667
    assert result["loss"] == pytest.approx(-np.log(0.91) * 0.75 - np.log(0.01) * 0.25, rel=1e-4)


def test_macro_f1_averages_over_the_labels_present_in_the_test_set():
    y = np.eye(10, dtype=np.float32)[[0, 0, 1, 1]]
    probabilities = np.full((4, 10), 0.01, np.float32)
    probabilities[[0, 1, 2, 3], [0, 1, 1, 1]] = 0.91
    result = scores(y, probabilities, GENRES)
    assert result["macro_f1"] == pytest.approx((0.666667 + 0.8) / 2, abs=1e-6)
    assert set(result["per_label"]) == {"blues", "classical"}, "labels with no test track and no guess are left out"


def test_a_label_only_guessed_is_listed_but_not_averaged():
    y = np.eye(3, dtype=np.float32)[[0, 0]]
    probabilities = np.eye(3, dtype=np.float32)[[0, 2]]
    result = scores(y, probabilities, ["a", "b", "c"])
    assert set(result["per_label"]) == {"a", "c"} and result["per_label"]["c"]["test_tracks"] == 0
    assert result["macro_f1"] == pytest.approx(2 / 3, abs=1e-6)


def test_a_tracks_probabilities_are_the_mean_of_its_windows():
    import pandas as pd
    rows = pd.DataFrame({"track_id": ["song", "song", "clip"]})
    y = np.eye(2, dtype=np.float32)[[1, 1, 0]]
    p = np.array([[0.8, 0.2], [0.2, 0.8], [0.6, 0.4]], np.float32)
    tracks, track_y, track_p = track_probabilities(rows, y, p)
    assert tracks == ["song", "clip"]
    np.testing.assert_allclose(track_p, [[0.5, 0.5], [0.6, 0.4]])
    np.testing.assert_array_equal(track_y, [[0, 1], [1, 0]])


def test_misclassified_lists_the_top_three_guesses():
    y = np.eye(10, dtype=np.float32)[[0, 6]]
    probabilities = np.array([[0.5, 0.3, 0.2] + [0] * 7, [0.1, 0, 0, 0, 0, 0.2, 0.6, 0, 0, 0.1]], np.float32)
    table = misclassified(["blues.00001", "metal.00002"], y, probabilities, GENRES)
    assert table.to_dict("records") == []
    probabilities[0] = [0.2, 0.5, 0.3] + [0] * 7
    row = misclassified(["blues.00001", "metal.00002"], y, probabilities, GENRES).iloc[0]
    assert (row.track_id, row.actual, row.guess_1, row.guess_2, row.guess_3) == (
        "blues.00001", "blues", "classical", "country", "blues")


def test_top_labels_orders_by_probability():
    assert top_labels(np.array([[0.1, 0.7, 0.2]]), ["a", "b", "c"], k=2) == [[("b", 0.7), ("c", 0.2)]]


def test_the_saved_model_has_no_save_date(tmp_path):
    save_model(build_model(50), tmp_path / "model.keras", RECIPE, list(GENRES))
    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        assert b"date_saved" not in archive.read("metadata.json")


@pytest.fixture
def mapped(toy_data, tmp_path):
    """The toy rows as a .npy memory map, seen through MappedRows in a shuffled order."""
    from stages.core.rows import MappedRows
    x, y = toy_data
    np.save(tmp_path / "features.npy", x)
    index = np.random.default_rng(1).permutation(len(x))
    return MappedRows(np.load(tmp_path / "features.npy", mmap_mode="r"), index), y[index], x[index]


def test_mapped_rows_are_read_from_disk_in_any_order(mapped):
    rows, _, x = mapped
    np.testing.assert_array_equal(rows[np.array([5, 0, 59, 5])], x[[5, 0, 59, 5]])
    assert rows.shape == x.shape


def test_training_from_disk_is_deterministic_and_learns(mapped, tmp_path):
    rows, y, _ = mapped
    for name in ("a", "b"):
        train(rows, y, epochs=3, seed=7, from_disk=True, log_path=tmp_path / f"{name}.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_predicting_from_disk_gives_the_in_memory_numbers(mapped, tmp_path):
    rows, _, x = mapped
    save_model(build_model(50), tmp_path / "model.keras", RECIPE, list(GENRES))
    network = Network(tmp_path / "model.keras")
    # Batches of 16 and of all rows add in another order in the BLAS kernel (within 2.4e-7 seen on OpenBLAS's
    # Haswell kernel): equal within float32 rounding, not bit for bit.
    np.testing.assert_allclose(network.predict(rows, batch_size=16), network.predict(x), rtol=0, atol=1e-6)


def test_training_rows_larger_than_free_memory_ask_for_from_disk():
    from stages.train import check_memory
    with pytest.raises(UserError, match="set train.from_disk: true"):
        check_memory((10**9, 25000), (0, 25000))


def test_the_memory_check_counts_the_copies_loading_makes():
    from stages.train import check_memory
    one_copy = 4 * 1000 * 25000
    check_memory((1000, 25000), (0, 25000), free=4 * one_copy)
    with pytest.raises(UserError, match="needs about 0.3 GiB, and 0.2 GiB are free"):
        check_memory((1000, 25000), (0, 25000), free=2 * one_copy)


def test_the_memory_check_sees_an_address_space_limit():
    check = ("import resource, psutil; from stages.train import check_memory, run\n"
             "vms = psutil.Process().memory_info().vms\n"
             "resource.setrlimit(resource.RLIMIT_AS, (vms + 300 * 2**20, resource.RLIM_INFINITY))\n"
             "run(lambda: check_memory((2000, 25000), (500, 25000)))")
    result = subprocess.run([sys.executable, "-c", check], cwd=PROJECT, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.startswith("error: loading the training rows needs about 0.7 GiB, and 0.3 GiB are free")
    assert result.stderr.count("\n") == 1


FRESH_IMPORT = (
    "import gc, json, sys\n"
    "from stages.model.keras_import import keras_and_tensorflow\n"
    "collections = [generation['collections'] for generation in gc.get_stats()]\n"
    "_, tf = keras_and_tensorflow()\n"
    "seen = {'extras': sorted({'sklearn', 'matplotlib'} & set(sys.modules)),\n"
    "        'inter_op_threads': tf.config.threading.get_inter_op_parallelism_threads(),\n"
    "        'collections': [generation['collections'] for generation in gc.get_stats()] != collections,\n"
    "        'collector_enabled': gc.isenabled()}\n"
    "import matplotlib.pyplot, sklearn\n"
    "print(json.dumps(seen | {'extras_import_after': True}))\n")


@pytest.fixture(scope="module")
def fresh_import():
    """What a fresh process saw of keras_and_tensorflow() (FRESH_IMPORT): one TensorFlow import for these tests."""
    result = subprocess.run([sys.executable, "-c", FRESH_IMPORT], cwd=PROJECT, capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout)


def test_keras_starts_without_unused_extras_and_runs_one_op_at_a_time(fresh_import):
    """What keeps `train` at the bare script's speed: no scikit-learn or matplotlib import, no inter-op pool."""
    assert (fresh_import["extras"], fresh_import["inter_op_threads"]) == ([], 1)


def test_the_hidden_extras_still_import_after_keras(fresh_import):
    assert fresh_import["extras_import_after"]


def test_the_garbage_collector_is_paused_for_the_import_and_back_after(fresh_import):
    """The import makes 300,000 objects and no garbage: no collection walks them while it runs."""
    assert (fresh_import["collections"], fresh_import["collector_enabled"]) == (False, True)


def test_keras_import_works_where_tensorflow_already_runs():
    """In a notebook that used TensorFlow first, its thread pools are kept as they are."""
    probe = ("import tensorflow as tf; tf.constant(1.0) + 1; from stages.model.keras_import import keras_and_tensorflow; "
             "keras, _ = keras_and_tensorflow(); print(keras.ops.convert_to_numpy(keras.ops.ones(2)).sum())")
    result = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT, capture_output=True, text=True)
    assert (result.returncode, result.stdout.strip()) == (0, "2.0"), result.stderr[-500:]


def fake_tensorflow(folder, body):
    """A `tensorflow` (and `keras`) package in `folder` whose import runs `body`, to stand in for TensorFlow."""
    for name in ("tensorflow", "keras"):
        (folder / name).mkdir()
    (folder / "keras/__init__.py").write_text("import tensorflow\n")
    (folder / "tensorflow/__init__.py").write_text(body)
    return folder


def import_keras_with(folder):
    probe = "from stages.model.keras_import import keras_and_tensorflow; keras_and_tensorflow()"
    return subprocess.run([sys.executable, "-c", probe], cwd=PROJECT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": f"{folder}{os.pathsep}{PROJECT}"})


def test_tensorflows_start_up_lines_are_dropped_and_its_error_lines_kept(tmp_path):
    folder = fake_tensorflow(tmp_path, (
        "import os\n"
        "os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n')\n"
        "os.write(2, b'I0000 00:00:1.5 1 port.cc:153] oneDNN custom operations are on. You may see ...\\n')\n"
        "os.write(2, b'E0000 00:00:1.6 1 cuda_blas.cc:9] a real error about cuda memory\\n')\n"
        "class config:\n"
        "    class threading:\n"
        "        set_inter_op_parallelism_threads = staticmethod(lambda n: None)\n"))
    result = import_keras_with(folder)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "E0000 00:00:1.6 1 cuda_blas.cc:9] a real error about cuda memory\n"


def test_an_abort_while_importing_tensorflow_still_shows_its_message(tmp_path):
    folder = fake_tensorflow(tmp_path, (
        "import os\n"
        "os.write(2, b'F0000 00:00:1.7 1 cpu_info.cc:42] The TensorFlow library was compiled to use AVX "
        "instructions, but these are not available on your machine.\\n')\n"
        "os.abort()\n"))
    result = import_keras_with(folder)
    assert result.returncode < 0
    assert "The TensorFlow library was compiled to use AVX instructions" in result.stderr


def test_a_loss_that_becomes_non_finite_stops_training_in_one_line_and_keeps_no_log(toy_data, tmp_path):
    x, y = toy_data
    huge = x * np.float32(3e37)  # finite float32 rows whose products overflow
    with pytest.raises(UserError, match=r"the training loss became (nan|inf) at epoch 1: .*train.standardize"):
        train(huge[:48], y[:48], (huge[48:], y[48:]), epochs=3, learning_rate=1.0, log_path=tmp_path / "log.csv")
    assert not (tmp_path / "log.csv").exists()


def test_no_metrics_file_ever_holds_nan_or_infinity(tmp_path):
    from stages.core.files import write_json
    with pytest.raises(ValueError):
        write_json(tmp_path / "eval.json", {"loss": float("nan")})
    assert not (tmp_path / "eval.json").exists()


# ---------------------------------------------------------------- heads chosen on validation

def separable(n_per_class=20, n_classes=3, shift=0.0, seed=0):
    """Rows of 5 values, each class's mean far apart: x (n, 5) float32, one-hot y (n, n_classes)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    x = rng.standard_normal((len(labels), 5)) * 0.1 + np.eye(n_classes, 5)[labels] * 3 + shift
    return x.astype(np.float32), np.eye(n_classes, dtype=np.float32)[labels]


def test_the_logistic_head_separates_a_separable_table_the_same_bytes_twice(tmp_path):
    from stages.train import fit_logistic
    saved = []
    for name in ("a", "b"):
        x, y = separable()
        valid = separable(seed=1)
        model, standardized, chosen = fit_logistic(x, y, valid, [0.01, 1], standardize=True,
                                                   log_path=tmp_path / f"{name}.csv")
        save_model(model, tmp_path / f"{name}.keras", RECIPE, ["a", "b", "c"], standardized)
        saved.append((tmp_path / f"{name}.keras").read_bytes())
    test_x, test_y = separable(seed=2)
    probabilities = Network(tmp_path / "a.keras").predict(test_x)
    assert np.mean(probabilities.argmax(axis=1) == test_y.argmax(axis=1)) == 1.0
    assert saved[0] == saved[1]


def test_C_is_chosen_by_the_validation_tracks_and_the_kept_model_never_saw_them(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from stages.train import fit_logistic, softmax_weights
    # training: 6 rows of class 0 at -1, 4 of class 1 at +1; a tiny C predicts the majority class everywhere
    x = np.array([[-1.0]] * 6 + [[1.0]] * 4, np.float32)
    y = np.eye(2, dtype=np.float32)[[0] * 6 + [1] * 4]
    majority = (np.array([[0.5]] * 4, np.float32), np.eye(2, dtype=np.float32)[[0] * 4])
    sides = (np.array([[-1.0], [1.0]], np.float32), np.eye(2, dtype=np.float32)[[0, 1]])
    assert fit_logistic(x.copy(), y, majority, [1e-4, 100], log_path=tmp_path / "a.csv")[2]["C"] == 1e-4
    model, _, chosen = fit_logistic(x.copy(), y, sides, [1e-4, 100], log_path=tmp_path / "b.csv")
    assert chosen["C"] == 100 and chosen["candidates"] == {1e-4: 0.5, 100: 1.0}
    kernel, bias = softmax_weights(LogisticRegression(C=100, max_iter=1000).fit(x, y.argmax(axis=1)), 2)
    np.testing.assert_allclose(model.get_layer("output").get_weights()[0], kernel, rtol=1e-6)
    np.testing.assert_allclose(model.get_layer("output").get_weights()[1], bias, rtol=1e-6)


def test_a_tie_goes_to_the_stronger_regularisation(tmp_path):
    from stages.train import fit_logistic
    x, y = separable()
    assert fit_logistic(x, y, separable(seed=1), [10, 0.1, 1], log_path=tmp_path / "log.csv")[2]["C"] == 0.1


def test_the_runner_gives_the_logistic_regressions_probabilities(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from stages.train import fit_logistic
    x, y = separable(n_classes=4)
    model, _, _ = fit_logistic(x.copy(), y, separable(n_classes=4, seed=1), 1.0, log_path=tmp_path / "log.csv")
    save_model(model, tmp_path / "model.keras", RECIPE, list("abcd"))
    expected = LogisticRegression(C=1.0, max_iter=1000).fit(x, y.argmax(axis=1)).predict_proba(x)
    # float64 in scikit-learn, float32 in the runner
    np.testing.assert_allclose(Network(tmp_path / "model.keras").predict(x), expected, atol=1e-5)


def test_early_stopping_keeps_the_epoch_of_best_validation_accuracy(toy_data, tmp_path):
    x, y = toy_data
    flipped = (x[48:], y[48:][:, ::-1].copy())  # the more the network learns, the worse it does on these
    model, history, _ = train(x[:48], y[:48], flipped, epochs=30, seed=3, early_stopping=3,
                              log_path=tmp_path / "log.csv", verbose=0)
    best = int(np.argmax(history["val_accuracy"]))
    assert best < len(history["loss"]) - 3 and len(history["loss"]) < 30, "it stopped early"
    first, _, _ = train(x[:48], y[:48], flipped, epochs=best + 1, seed=3, log_path=tmp_path / "first.csv", verbose=0)
    for kept, plain in zip(model.get_weights(), first.get_weights()):
        np.testing.assert_array_equal(kept, plain)


def test_l2_and_dropout_are_layers_of_the_network_and_the_runner_still_runs_it(toy_data, tmp_path):
    x, y = toy_data
    model, _, _ = train(x[:48], y[:48], (x[48:], y[48:]), epochs=2, l2=0.01, dropout=0.5,
                        log_path=tmp_path / "log.csv", verbose=0)
    assert model.get_layer("dropout").rate == 0.5 and model.get_layer("hidden").kernel_regularizer.l2 == 0.01
    save_model(model, tmp_path / "model.keras", RECIPE, list(GENRES))
    np.testing.assert_allclose(Network(tmp_path / "model.keras").predict(x), model.predict_on_batch(x), atol=1e-6)


def test_an_ensemble_scores_as_the_mean_of_its_members_and_is_the_same_bytes_twice(toy_data, tmp_path):
    from stages.train import train_ensemble
    x, y = toy_data
    saved = []
    for name in ("a", "b"):
        models, _, _ = train_ensemble(x[:48].copy(), y[:48], (x[48:].copy(), y[48:]), epochs=2, seed=5, members=2,
                                      log_path=tmp_path / f"{name}.csv", hidden_units=100, learning_rate=0.001,
                                      batch_size=32, from_disk=False, standardize=False, early_stopping=0, l2=0,
                                      dropout=0)
        save_model(models, tmp_path / f"{name}.keras", RECIPE, list(GENRES))
        saved.append((tmp_path / f"{name}.keras").read_bytes())
    assert saved[0] == saved[1]
    members = [train(x[:48], y[:48], None, epochs=2, seed=seed, log_path=tmp_path / "m.csv", verbose=0)[0]
               for seed in (5, 6)]
    mean = np.mean([member.predict_on_batch(x) for member in members], axis=0)
    np.testing.assert_allclose(Network(tmp_path / "a.keras").predict(x), mean, atol=1e-6)


def test_a_fit_drops_tensorflows_start_up_lines_wherever_they_come_and_keeps_its_errors():
    # Some CPUs print absl's first line during the first epoch, after the import's filter has stopped.
    probe = ("import os\n"
             "from stages.model.keras_import import FIT_NOISE, without_lines\n"
             "with without_lines(FIT_NOISE):\n"
             "    os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to "
             "STDERR\\n')\n"
             "    os.write(2, b'E0000 00:00 kernel.cc:1] a real error\\n')\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT, capture_output=True, text=True)
    assert result.stderr == "E0000 00:00 kernel.cc:1] a real error\n"


def test_the_confusion_counts_show_every_label_on_both_sides_also_one_never_predicted():
    from stages.evaluate import confusion_counts
    counts = confusion_counts(["a", "b", "c", "c"], ["a", "a", "c", "a"], ["a", "b", "c"])
    assert list(counts.index) == list(counts.columns) == ["a", "b", "c"]
    assert counts.to_numpy().tolist() == [[1, 0, 0], [1, 0, 0], [1, 0, 1]]
