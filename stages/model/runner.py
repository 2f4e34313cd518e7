"""Running a saved model with NumPy: its probabilities, its loss, its best guesses.

Evaluate and predict run the network `train` saved (stages/model/network.py) without TensorFlow: a
Dense stack is two matrix products, and importing TensorFlow would cost each of them 3 s
(measured in benchmarks/iteration_speed.py). model.keras records, beside Keras's own files, what
the network was trained on and its layers as .npy arrays: the members named here.
"""

import io
import itertools
import json
import zipfile
from pathlib import Path

import numpy as np

from stages.core.errors import UserError

RECORD = "pipeline.json"
"""The member that records the feature recipe, the classes, the layers' activations and the standardization."""
LAYERS = "pipeline/{name}_{index}.npy"
"""Members holding each Dense layer's kernel and bias, numbered on through the networks of an ensemble."""
STANDARDIZATION = "pipeline/{name}.npy"
"""Members holding the training rows' feature `mean` and `scale` (train.standardize), both (n_values,) float32."""
ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0),
    "softmax": lambda z: (lambda e: e / e.sum(axis=-1, keepdims=True))(np.exp(z - z.max(axis=-1, keepdims=True))),
    "linear": lambda z: z,
}
MAX_MEMBER_BYTES = 4 << 30
"""A member larger than this is no layer of this pipeline's networks (25,000 x 100 float32 is 10 MB)."""
EPSILON = 1e-7
"""Keras's backend epsilon: the clip of probabilities in its cross-entropy."""


def _dotted(params, prefix="features"):
    for key, value in params.items():
        if isinstance(value, dict):
            yield from _dotted(value, f"{prefix}.{key}")
        else:
            yield f"{prefix}.{key}", value


def _read_array(archive, member):
    if archive.getinfo(member).file_size > MAX_MEMBER_BYTES:
        raise ValueError(f"{member} is too large")
    return np.load(io.BytesIO(archive.read(member)), allow_pickle=False)


class Network:
    """A model saved by network.save_model, run with NumPy: probabilities like the Keras model's
    (within float32 rounding).

    Refuses, in one line, a file that is not such a model, and, when given, rows made by other
    `features` params or other `classes` than the model's.
    """

    def __init__(self, path, features=None, classes=None):
        path = Path(path)
        if not path.exists():
            raise UserError(f"no model at {path}: run `dvc repro train` first, or pass --model")
        try:
            with zipfile.ZipFile(path) as archive:
                record = json.loads(archive.read(RECORD))
                # an ensemble records each network's activations; a single network (and older files) one list
                networks = record.get("ensemble") or [record["activations"]]
                firsts = itertools.accumulate(map(len, networks), initial=0)  # layers are numbered on through them
                self.networks = [[(_read_array(archive, LAYERS.format(name="kernel", index=index)),
                                   _read_array(archive, LAYERS.format(name="bias", index=index)),
                                   ACTIVATIONS[activation])
                                  for index, activation in enumerate(activations, first)]
                                 for activations, first in zip(networks, firsts)]
                self.standardization = (tuple(_read_array(archive, STANDARDIZATION.format(name=name))
                                              for name in ("mean", "scale"))
                                        if record.get("standardized") else None)
            self.features, self.classes = record["features"], record["classes"]
            self._check_shapes()
        except (zipfile.BadZipFile, KeyError, IsADirectoryError, ValueError, TypeError):
            raise UserError(f"{path} is not a model saved by this pipeline's `train` stage: "
                            "pass a data/model/model.keras, or run `dvc repro train`")
        self.path = path
        if features is not None:
            self.check_features(features)
        if classes is not None:
            self.check_classes(classes)

    def _check_shapes(self):
        inputs = self.networks[0][0][0].shape[0] if self.networks[0] else None
        for layers in self.networks:
            width = inputs
            for kernel, bias, _ in layers:
                if kernel.ndim != 2 or kernel.shape[0] != width or bias.shape != (kernel.shape[1],):
                    raise ValueError("layer shapes do not chain")
                width = kernel.shape[1]
            if width != len(self.classes):
                raise ValueError("the last layer does not give one output per class")
        if self.standardization and any(part.shape != (inputs,) for part in self.standardization):
            raise ValueError("the standardization does not fit the first layer")

    def check_features(self, features):
        """Raise UserError, naming the first differing param or table column, unless the model was trained
        on rows made by the recipe `features` (the rows of data/features or of params.yaml)."""
        trained, wanted = dict(_dotted(self.features)), dict(_dotted(features))
        if trained.get("features.columns") is not None and wanted.get("features.columns") is not None:
            for index, (was, now) in enumerate(zip(trained["features.columns"], wanted["features.columns"])):
                if was != now:
                    raise UserError(f"{self.path} was trained on a table whose column {index + 1} is '{was}', but "
                                    f"this table's is '{now}': run `dvc repro` to retrain on it")
        for key in sorted(set(trained) | set(wanted)):
            if trained.get(key) != wanted.get(key):
                raise UserError(f"{self.path} was trained on features with {key}={trained.get(key)!r}, but these "
                                f"have {wanted.get(key)!r}: set it back in params.yaml, or run `dvc repro` to retrain")

    def check_classes(self, classes):
        if list(classes) != self.classes:
            raise UserError(f"{self.path} was trained on the classes {self.classes}, but the labels are "
                            f"{list(classes)}: run `dvc repro` to retrain")

    def predict(self, x, batch_size=1024):
        """(n_rows, n_classes) float32 probabilities of x (n_rows, n_values): an array or core.rows.MappedRows.

        An ensemble's probabilities are the mean of its networks'.
        """
        out = np.empty((len(x), len(self.classes)), np.float32)
        for start in range(0, len(x), batch_size):
            positions = np.arange(start, min(start + batch_size, len(x)))
            rows = x[positions]
            if self.standardization:
                mean, scale = self.standardization
                rows = (rows - mean) / scale
            out[positions] = np.mean([self._network(layers, rows) for layers in self.networks], axis=0)
        return out

    @staticmethod
    def _network(layers, rows):
        for kernel, bias, activation in layers:
            rows = activation(rows @ kernel + bias)
        return rows


def cross_entropy(y, probabilities):
    """Mean categorical cross-entropy of one-hot y and probabilities (n, n_classes), as Keras computes it."""
    p = probabilities / probabilities.sum(axis=-1, keepdims=True)
    return float(np.mean(-np.sum(y * np.log(np.clip(p, EPSILON, 1 - EPSILON)), axis=-1)))


def top_labels(probabilities, classes, k=3):
    """(n, n_classes) probabilities -> for each row, the k most probable (label, probability)."""
    best = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [[(classes[c], float(row[c])) for c in order] for row, order in zip(probabilities, best)]
