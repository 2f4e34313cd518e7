"""Stage `train`: the seed's dense network on the training clips.

Output: `data/model/model.keras`; `metrics/train_log.csv` (loss, accuracy,
val_loss, val_accuracy for every epoch) and `metrics/train.json` (the last epoch's).
"""

from pathlib import Path

import numpy as np
import pandas as pd

from stages.common import UserError, atomic_output, load_params, log, run, write_json

FEATURES = Path("data/features")
LABELS = Path("data/labels/onehot.npy")
SPLIT = Path("data/split")
MODEL = Path("data/model/model.keras")
TRAIN_LOG = Path("metrics/train_log.csv")
TRAIN_METRICS = Path("metrics/train.json")


def load_set(name, features=FEATURES, labels=LABELS, split=SPLIT):
    """(x, y, track_ids) of the clips listed in `split/<name>.txt`, or None where there is no such list.

    x: (n_clips, n_values) float32, y: (n_clips, n_classes) float32.
    """
    listed = split / f"{name}.txt"
    if not listed.exists():
        return None
    track_ids = listed.read_text().split()
    row_of = {track: row for row, track in enumerate(pd.read_csv(features / "tracks.csv")["track_id"])}
    rows = [row_of[track] for track in track_ids]
    x = np.load(features / "features.npy", mmap_mode="r")[rows]
    return x, np.load(labels)[rows], track_ids


def data_source(features=FEATURES):
    """Where the features' clips came from: "gtzan" or "demo", recorded by every stage since download."""
    return pd.read_csv(features / "tracks.csv")["source"].iat[0]


def seed_everything(seed):
    """Same seed, same numbers: Python, NumPy and Keras generators, deterministic TensorFlow ops."""
    import keras
    import tensorflow as tf
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build_model(n_inputs, n_classes=10, hidden_units=100, learning_rate=0.001):
    """The seed's network: Dense(hidden_units, relu) -> Dense(n_classes, softmax), Adam.

    hidden_units=0 leaves out the hidden layer: a linear (softmax regression) classifier.
    """
    import keras
    hidden = [keras.layers.Dense(hidden_units, activation="relu")] if hidden_units else []
    model = keras.Sequential([
        keras.Input(shape=(n_inputs,)),
        *hidden,
        keras.layers.Dense(n_classes, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def train(x, y, validation=None, epochs=10, seed=42, hidden_units=100, learning_rate=0.001,
          batch_size=32, validation_split=0.2, log_path=TRAIN_LOG, verbose=2):
    """Fit the seed's network on x (n_clips, n_values), y (n_clips, n_classes).

    Validates on `validation` (x, y) if given, else on the last `validation_split` of x,
    as Keras does. Writes one line per epoch to the CSV `log_path` (and, with verbose=2, to
    the console); returns (model, history).
    """
    import keras
    seed_everything(seed)
    model = build_model(x.shape[1], y.shape[1], hidden_units, learning_rate)
    with atomic_output(log_path) as temporary:
        history = model.fit(
            x, y, epochs=epochs, batch_size=batch_size,
            validation_data=validation, validation_split=0.0 if validation else validation_split,
            callbacks=[keras.callbacks.CSVLogger(str(temporary))], verbose=verbose)
    return model, history.history


def load_model(path=MODEL, n_values=None):
    """The trained Keras model; refuses one whose input width differs from `n_values`."""
    import keras
    if not Path(path).exists():
        raise UserError(f"no model at {path}: run `dvc repro train` first, or pass --model")
    model = keras.models.load_model(path, compile=False)  # the optimizer state is not needed to predict
    width = model.input_shape[-1]
    if n_values is not None and width != n_values:
        raise UserError(f"{path} takes {width} values per clip, but the features have {n_values}: "
                        "it was trained with other feature params; run `dvc repro` to retrain")
    return model


def top_genres(probabilities, classes, k=3):
    """(n, n_classes) probabilities -> for each row, the k most probable (genre, probability)."""
    best = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [[(classes[c], float(row[c])) for c in order] for row, order in zip(probabilities, best)]


def main():
    params = load_params()
    train_set = load_set("train")
    valid_set = load_set("valid")
    x, y, _ = train_set
    if len(x) == 0:
        raise UserError("the training set is empty: check the split params")
    validation = (f"{len(valid_set[0])} listed clips" if valid_set
                  else f"the last {params['train']['validation_split']:.0%}")
    log(f"train: {len(x)} clips x {x.shape[1]} values, validating on {validation}")
    model, history = train(x, y, valid_set[:2] if valid_set else None, params["epochs"], params["seed"],
                           **params["train"])
    with atomic_output(MODEL) as temporary:
        model.save(temporary)
    write_json(TRAIN_METRICS, {name: round(float(values[-1]), 6) for name, values in history.items()}
               | {"epochs": params["epochs"], "train_clips": len(x),
                  "source": data_source()})


if __name__ == "__main__":
    run(main)
