"""Stage `train`: the seed's dense network on the training tracks, validated on the validation tracks.

Output: `data/model/model.keras` (with the feature params and classes it was trained on);
`metrics/train_log.csv` (loss, accuracy, val_loss, val_accuracy for every epoch) and
`metrics/train.json` (the last epoch's).
"""

import numpy as np
import psutil

from stages.common import UserError, atomic_output, log, run, write_json
from stages.params import load_params
from stages.dataset import classes, data_source, feature_recipe, load_set
from stages.keras_import import keras_and_tensorflow
from stages.model import batches, build_model, save_model, seed_everything
from stages.paths import MODEL, TRAIN_LOG, TRAIN_METRICS


def train(x, y, validation=None, epochs=10, seed=42, hidden_units=100, learning_rate=0.001,
          batch_size=32, from_disk=False, log_path=TRAIN_LOG, verbose=2):
    """Fit the seed's network on x (n_rows, n_values), y (n_rows, n_classes); validate on `validation` (x, y) if given.

    x (and validation's) may be dataset.MappedRows: with `from_disk` the rows are read in batches,
    shuffled each epoch by `seed`. Writes one line per epoch to the CSV `log_path` (and, with
    verbose=2, to the console); returns (model, history).
    """
    keras, _ = keras_and_tensorflow()
    seed_everything(seed)
    model = build_model(x.shape[1], y.shape[1], hidden_units, learning_rate)
    if from_disk:
        data = {"x": batches(x, y, batch_size, seed)}
        validation = validation and batches(*validation, batch_size)
    else:
        data = {"x": x, "y": y, "batch_size": batch_size}
    with atomic_output(log_path) as temporary:
        history = model.fit(**data, epochs=epochs, validation_data=validation,
                            callbacks=[keras.callbacks.CSVLogger(str(temporary))], verbose=verbose)
    return model, history.history


def check_memory(n_rows, n_values):
    """Raise UserError if the training rows would not fit in the memory free now."""
    needed, free = n_rows * n_values * 4, psutil.virtual_memory().available
    if needed > 0.8 * free:
        raise UserError(f"the training rows need {needed / 2**30:.1f} GiB, and {free / 2**30:.1f} GiB are free: "
                        "set train.from_disk: true to read them from disk in batches")


def main():
    params = load_params()
    from_disk = params["train"]["from_disk"]
    x, y, rows = load_set("train", in_memory=False)
    if not from_disk:
        check_memory(*x.shape)
        x = x[np.arange(len(x))]
    x_valid, y_valid, valid_rows = load_set("valid", in_memory=not from_disk)
    if len(x) == 0:
        raise UserError("the training set is empty: check the split params")
    if len(x_valid) == 0:
        raise UserError("the validation set is empty: raise split.validation_fraction")
    log(f"train: {rows['track_id'].nunique()} tracks ({len(x)} rows x {x.shape[1]} values), "
        f"validating on {valid_rows['track_id'].nunique()} tracks")
    model, history = train(x, y, (x_valid, y_valid), params["epochs"], params["seed"], **params["train"])
    save_model(model, MODEL, feature_recipe(), classes())
    write_json(TRAIN_METRICS, {name: round(float(values[-1]), 6) for name, values in history.items()}
               | {"epochs": params["epochs"], "train_clips": len(x), "source": data_source()})


if __name__ == "__main__":
    run(main)
