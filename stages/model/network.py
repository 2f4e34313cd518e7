"""The seed's network in Keras: building, seeding, feeding it from memory or disk, and saving it with what it was
trained on.

What runs a saved network (evaluate, predict) is stages/model/runner.py, with NumPy only.
"""

import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from stages.core.errors import UserError
from stages.core.files import atomic_output
from stages.core.params import Train
from stages.model.keras_import import keras_and_tensorflow
from stages.model.runner import ACTIVATIONS, LAYERS, RECORD, STANDARDIZATION

FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def seed_everything(seed):
    """Same seed, same numbers: Python, NumPy and Keras generators, deterministic TensorFlow ops."""
    keras, tf = keras_and_tensorflow()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build_model(n_inputs, n_classes=10, hidden_units=Train.hidden_units, learning_rate=Train.learning_rate,
                l2=Train.l2, dropout=Train.dropout):
    """The seed's network: Dense(hidden_units, relu) -> Dense(n_classes, softmax), Adam.

    hidden_units=0 leaves out the hidden layer: a linear (softmax regression) classifier. `l2` penalises
    every kernel; `dropout` drops that share of the hidden units while training. With both 0 (the
    defaults) the network is exactly the seed's.
    """
    keras, _ = keras_and_tensorflow()
    penalty = keras.regularizers.L2(l2) if l2 else None
    # Named layers: Keras would number them per process, and the saved file would differ.
    hidden = [keras.layers.Dense(hidden_units, activation="relu", kernel_regularizer=penalty, name="hidden")
              ] if hidden_units else []
    if hidden and dropout:
        hidden.append(keras.layers.Dropout(dropout, name="dropout"))
    model = keras.Sequential([
        keras.Input(shape=(n_inputs,), name="features"),
        *hidden,
        keras.layers.Dense(n_classes, activation="softmax", kernel_regularizer=penalty, name="output"),
    ], name="seed_network")
    model.compile(optimizer=fused_adam(learning_rate), loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def fused_adam(learning_rate=Train.learning_rate):
    """Keras's Adam, each step done by TensorFlow's fused Adam kernel (ResourceApplyAdam, which the seed's
    tf.keras 2 ran): the same formula in three passes over the weights where Keras 3 runs twelve operations,
    each a pass over the 2.5 million weights of the seed's first layer (a fit takes about 40% less time).

    The numbers differ from Keras 3's by float32 rounding: the kernel rounds 1 - beta_1 in float32, Keras in
    float64 (weights within 1e-5 after 20 epochs). The optimizer is Keras's Adam with its update step replaced,
    so a saved model names, and loads with, Keras's Adam.
    """
    keras, tf = keras_and_tensorflow()
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, name="adam")

    def update_step(gradient, variable, learning_rate):
        dtype, slot = variable.dtype, optimizer._get_variable_index(variable)
        step = tf.cast(optimizer.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(optimizer.beta_1, dtype), tf.cast(optimizer.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=optimizer._momentums[slot].value.handle,
            v=optimizer._velocities[slot].value.handle, beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step), lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(optimizer.epsilon, dtype), grad=tf.cast(gradient, dtype))

    optimizer.update_step = update_step
    return optimizer


def softmax_model(kernel, bias):
    """A Keras model of one softmax layer with `kernel` (n_inputs, n_classes) and `bias` (n_classes,): how a linear
    classifier fitted elsewhere (a logistic regression) is saved, so that evaluate and predict run it as any other."""
    model = build_model(kernel.shape[0], kernel.shape[1], hidden_units=0)
    model.get_layer("output").set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return model


def standardization(x, batch_size=4096):
    """(mean, scale) of the columns of x (n_rows, n_values), an array or MappedRows, read in batches:
    both (n_values,) float32, scale the standard deviation (1 where a column is constant)."""
    total, squares = np.zeros(x.shape[1]), np.zeros(x.shape[1])
    for start in range(0, len(x), batch_size):
        rows = np.asarray(x[np.arange(start, min(start + batch_size, len(x)))], np.float64)
        total += rows.sum(axis=0)
        squares += (rows ** 2).sum(axis=0)
    mean = total / len(x)
    deviation = np.sqrt(np.maximum(squares / len(x) - mean ** 2, 0))
    return mean.astype(np.float32), np.where(deviation > 0, deviation, 1).astype(np.float32)


def save_model(model, path, features, classes, standardized=None):
    """Save `model` (or a list of models: an ensemble, whose probabilities are averaged) to `path` with its
    `features` recipe, `classes` and `standardized` (mean, scale) or None, the same bytes for the same weights.

    An ensemble's Keras files are its first network's; every network's layers are in the arrays that
    runner.Network runs.

    Raises UserError for a layer or activation that runner.Network cannot run, so that no
    model is saved that evaluate would refuse. Keras stamps the save time and the memory addresses
    of shared objects into the file: the time is left out, the addresses numbered in order, and
    the zip's dates fixed.
    """
    models = model if isinstance(model, list) else [model]
    model = models[0]
    networks = [[layer for layer in member.layers if layer.weights] for member in models]
    dense = [layer for layers in networks for layer in layers]
    for layer in dense:
        activation = getattr(getattr(layer, "activation", None), "__name__", None)
        if layer.__class__.__name__ != "Dense" or activation not in ACTIVATIONS:
            raise UserError(f"layer '{layer.name}' ({layer.__class__.__name__}, activation {activation}) cannot be "
                            f"run by stages/model/runner.py: it runs Dense layers with {', '.join(ACTIVATIONS)}")
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
            activations = [[layer.activation.__name__ for layer in layers] for layers in networks]
            record = {"features": features, "classes": classes, "activations": activations[0]}
            if len(networks) > 1:
                record["ensemble"] = activations
            arrays = {LAYERS.format(name=name, index=index): array
                      for index, layer in enumerate(dense) for name, array in zip(("kernel", "bias"),
                                                                                   layer.get_weights())}
            if standardized is not None:
                record["standardized"] = True
                arrays |= {STANDARDIZATION.format(name=name): array for name, array in zip(("mean", "scale"),
                                                                                           standardized)}
            out.writestr(zipfile.ZipInfo(RECORD, FIXED_DATE), json.dumps(record, indent=2, sort_keys=True))
            for member, array in arrays.items():
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, array)
                out.writestr(zipfile.ZipInfo(member, FIXED_DATE), buffer.getvalue())


def _numbered_shared_objects(config, numbers=None):
    """`config` with each "shared_object_id" (a memory address) replaced by its order of first appearance."""
    numbers = {} if numbers is None else numbers
    if isinstance(config, list):
        return [_numbered_shared_objects(item, numbers) for item in config]
    if not isinstance(config, dict):
        return config
    return {key: numbers.setdefault(value, len(numbers)) if key == "shared_object_id"
            else _numbered_shared_objects(value, numbers) for key, value in config.items()}


def training_batches(x, y, batch_size=Train.batch_size):
    """(tf.data.Dataset, steps per epoch): the batches Keras's fit(x, y, batch_size, shuffle=True) trains on, for any
    number of epochs, from one iterator. x (n_rows, n_values), y (n_rows, n_classes) float32 arrays.

    Keras's fit makes a new tf.data iterator for every epoch, and each one restarts the shuffle that
    seed_everything seeded: every epoch sees the rows in one order. That order is drawn here as Keras draws it
    (tf.random.shuffle of the row numbers, in a tf.data function) and repeated: the same batches, so the same
    weights to the bit (tested), without two iterators made and torn down an epoch.
    """
    _, tf = keras_and_tensorflow()
    n_rows = len(x)
    order = next(iter(tf.data.Dataset.range(1).map(lambda _: tf.random.shuffle(tf.range(n_rows, dtype=tf.int64)))))
    rows, labels = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
    batches = batches.map(lambda positions: (tf.gather(rows, positions), tf.gather(labels, positions)))
    return unoptimized(batches.repeat()), -(-n_rows // batch_size)


def validation_batches(x, y, batch_size=Train.batch_size):
    """tf.data batches of x (n_rows, n_values), y (n_rows, n_classes) in order, once: Keras's validation batches."""
    _, tf = keras_and_tensorflow()
    return unoptimized(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size))


def unoptimized(dataset):
    """`dataset` with tf.data's graph rewrites and autotuner off: neither has anything to improve in slicing rows.
    A rewrite serializes the pipeline's graph, arrays and all, at its first iterator (1 GB of rows: 0.5 s and 1 GB
    more; Keras's own array pipeline turns the rewrites off for this). The autotuner runs a thread per iterator that
    sleeps in doubling periods, and tearing the iterator down waited out that sleep: 2 s at the end of one fit in
    three (docs/figures.md)."""
    _, tf = keras_and_tensorflow()
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.autotune.enabled = False
    return dataset.with_options(options)


def batches(x, y, batch_size=Train.batch_size, seed=None, standardized=None):
    """A Keras PyDataset of (x, y) batches of MappedRows x: in order, or shuffled each epoch by `seed`;
    each batch standardized by `standardized` (mean, scale) if given."""
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
            rows = x[positions]
            if standardized is not None:
                rows = (rows - standardized[0]) / standardized[1]
            return rows, y[positions]

        def on_epoch_end(self):
            self.order = np.arange(len(x)) if self.shuffle is None else self.shuffle.permutation(len(x))

    return Batches()
