"""The seed's network: building, seeding, saving it with what it was trained on, and running it.

Train builds and fits it with Keras. Evaluate and predict run the saved network with NumPy
(`Network`), which needs no TensorFlow: a Dense stack is two matrix products, and importing
TensorFlow would cost each of them 3 s (measured in benchmarks/iteration_speed.py).
"""

import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from stages.common import UserError, atomic_output
from stages.keras_import import keras_and_tensorflow

RECORD = "pipeline.json"
"""The member of model.keras that records the feature params, the classes and the layers' activations."""
LAYERS = "pipeline/{name}_{index}.npy"
"""Members of model.keras holding each Dense layer's kernel and bias as .npy arrays, for Network."""
ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0),
    "softmax": lambda z: (lambda e: e / e.sum(axis=-1, keepdims=True))(np.exp(z - z.max(axis=-1, keepdims=True))),
    "linear": lambda z: z,
}
EPSILON = 1e-7
"""Keras's backend epsilon: the clip of probabilities in its cross-entropy."""

FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def seed_everything(seed):
    """Same seed, same numbers: Python, NumPy and Keras generators, deterministic TensorFlow ops."""
    keras, tf = keras_and_tensorflow()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build_model(n_inputs, n_classes=10, hidden_units=100, learning_rate=0.001):
    """The seed's network: Dense(hidden_units, relu) -> Dense(n_classes, softmax), Adam.

    hidden_units=0 leaves out the hidden layer: a linear (softmax regression) classifier.
    """
    keras, _ = keras_and_tensorflow()
    # Named layers: Keras would number them per process, and the saved file would differ.
    hidden = [keras.layers.Dense(hidden_units, activation="relu", name="hidden")] if hidden_units else []
    model = keras.Sequential([
        keras.Input(shape=(n_inputs,), name="features"),
        *hidden,
        keras.layers.Dense(n_classes, activation="softmax", name="output"),
    ], name="seed_network")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate, name="adam"),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def save_model(model, path, features, classes):
    """Save `model` to `path` with its `features` recipe and `classes`, the same bytes for the same weights.

    Keras stamps the save time and the memory addresses of shared objects into the file: the
    time is left out, the addresses numbered in order, and the zip's dates fixed.
    """
    with tempfile.TemporaryDirectory() as folder, atomic_output(path) as fixed:
        keras_file = Path(folder) / "model.keras"
        model.save(keras_file)
        with zipfile.ZipFile(keras_file) as saved, zipfile.ZipFile(fixed, "w", zipfile.ZIP_DEFLATED) as out:
            for info in saved.infolist():
                data = saved.read(info)
                if info.filename == "metadata.json":
                    metadata = json.loads(data)
                    metadata.pop("date_saved", None)
                    data = json.dumps(metadata).encode()
                elif info.filename == "config.json":
                    data = json.dumps(_numbered_shared_objects(json.loads(data))).encode()
                out.writestr(zipfile.ZipInfo(info.filename, FIXED_DATE), data, info.compress_type)
            dense = [layer for layer in model.layers if layer.weights]
            record = {"features": features, "classes": classes,
                      "activations": [layer.activation.__name__ for layer in dense]}
            out.writestr(zipfile.ZipInfo(RECORD, FIXED_DATE), json.dumps(record, indent=2, sort_keys=True))
            for index, layer in enumerate(dense):
                for name, array in zip(("kernel", "bias"), layer.get_weights()):
                    member = io.BytesIO()
                    np.lib.format.write_array(member, array)
                    out.writestr(zipfile.ZipInfo(LAYERS.format(name=name, index=index), FIXED_DATE),
                                 member.getvalue())


def _numbered_shared_objects(config, numbers=None):
    """`config` with each "shared_object_id" (a memory address) replaced by its order of first appearance."""
    numbers = {} if numbers is None else numbers
    if isinstance(config, list):
        return [_numbered_shared_objects(item, numbers) for item in config]
    if not isinstance(config, dict):
        return config
    return {key: numbers.setdefault(value, len(numbers)) if key == "shared_object_id"
            else _numbered_shared_objects(value, numbers) for key, value in config.items()}


def _dotted(params, prefix="features"):
    for key, value in params.items():
        if isinstance(value, dict):
            yield from _dotted(value, f"{prefix}.{key}")
        else:
            yield f"{prefix}.{key}", value


class Network:
    """A model saved by save_model, run with NumPy: probabilities like the Keras model's (within float32 rounding).

    Refuses, in one line naming the first differing param, a model trained on other
    `features` params or other `classes` than the given ones.
    """

    def __init__(self, path, features=None, classes=None):
        path = Path(path)
        if not path.exists():
            raise UserError(f"no model at {path}: run `dvc repro train` first, or pass --model")
        try:
            with zipfile.ZipFile(path) as archive:
                record = json.loads(archive.read(RECORD))
                self.layers = [tuple(np.load(io.BytesIO(archive.read(LAYERS.format(name=name, index=index))))
                                     for name in ("kernel", "bias"))
                               + (ACTIVATIONS[activation],)
                               for index, activation in enumerate(record["activations"])]
        except (zipfile.BadZipFile, KeyError, IsADirectoryError, ValueError):
            raise UserError(f"{path} is not a model saved by this pipeline's `train` stage: "
                            "pass a data/model/model.keras, or run `dvc repro train`")
        self.features, self.classes = record["features"], record["classes"]
        if features is not None:
            trained, wanted = dict(_dotted(self.features)), dict(_dotted(features))
            for key in sorted(set(trained) | set(wanted)):
                if trained.get(key) != wanted.get(key):
                    raise UserError(f"{path} was trained on features with {key}={trained.get(key)!r}, but these "
                                    f"have {wanted.get(key)!r}: set it back in params.yaml, "
                                    "or run `dvc repro` to retrain")
        if classes is not None and list(classes) != self.classes:
            raise UserError(f"{path} was trained on the classes {self.classes}, but the labels are {list(classes)}: "
                            "run `dvc repro` to retrain")

    def predict(self, x, batch_size=1024):
        """(n_rows, n_classes) float32 probabilities of x (n_rows, n_values): an array or dataset.MappedRows."""
        out = np.empty((len(x), len(self.classes)), np.float32)
        for start in range(0, len(x), batch_size):
            positions = np.arange(start, min(start + batch_size, len(x)))
            rows = x[positions]
            for kernel, bias, activation in self.layers:
                rows = activation(rows @ kernel + bias)
            out[positions] = rows
        return out


def cross_entropy(y, probabilities):
    """Mean categorical cross-entropy of one-hot y and probabilities (n, n_classes), as Keras computes it."""
    p = probabilities / probabilities.sum(axis=-1, keepdims=True)
    return float(np.mean(-np.sum(y * np.log(np.clip(p, EPSILON, 1 - EPSILON)), axis=-1)))


def batches(x, y, batch_size=32, seed=None):
    """A Keras PyDataset of (x, y) batches of MappedRows x: in order, or shuffled each epoch by `seed`."""
    keras, _ = keras_and_tensorflow()

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.shuffle = None if seed is None else np.random.default_rng(seed)
            self.on_epoch_end()

        def __len__(self):
            return -(-len(x) // batch_size)

        def __getitem__(self, i):
            positions = self.order[i * batch_size:(i + 1) * batch_size]
            return x[positions], y[positions]

        def on_epoch_end(self):
            self.order = np.arange(len(x)) if self.shuffle is None else self.shuffle.permutation(len(x))

    return Batches()


def top_labels(probabilities, classes, k=3):
    """(n, n_classes) probabilities -> for each row, the k most probable (label, probability)."""
    best = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [[(classes[c], float(row[c])) for c in order] for row, order in zip(probabilities, best)]
