"""Stage `train`: the seed's dense network on the training tracks, validated on the validation tracks.

Output: `data/model/model.keras` (with the feature params and classes it was trained on);
`metrics/train_log.csv` (loss, accuracy, val_loss, val_accuracy for every epoch) and
`metrics/train.json` (the last epoch's).
"""

import resource
from pathlib import Path

import numpy as np
import psutil

from stages.core.console import log
from stages.core.errors import UserError, run
from stages.core.files import atomic_output, write_json
from stages.core.params import load_params
from stages.core.paths import MODEL, SKIPPED, TRAIN_LOG, TRAIN_METRICS
from stages.core.sets import classes, data_source, feature_recipe, load_set
from stages.model.keras_import import FIT_NOISE, keras_and_tensorflow, without_lines
from stages.model.network import batches, build_model, save_model, seed_everything, standardization


def train(x, y, validation=None, epochs=10, seed=42, hidden_units=100, learning_rate=0.001,
          batch_size=32, from_disk=False, standardize=False, log_path=TRAIN_LOG, verbose=2):
    """Fit the seed's network on x (n_rows, n_values), y (n_rows, n_classes); validate on `validation` (x, y) if given.

    x (and validation's) may be dataset.MappedRows: with `from_disk` the rows are read in batches,
    shuffled each epoch by `seed`. With `standardize`, every row is centred and scaled by the mean
    and deviation of x's columns (in place, for arrays). Writes one line per epoch to the CSV
    `log_path` (and, with verbose=2, to the console); returns (model, history, (mean, scale) or None).
    """
    keras, _ = keras_and_tensorflow()
    seed_everything(seed)
    model = build_model(x.shape[1], y.shape[1], hidden_units, learning_rate)
    standardized = standardization(x) if standardize else None
    if from_disk:
        data = {"x": batches(x, y, batch_size, seed, standardized)}
        validation = validation and batches(*validation, batch_size, standardized=standardized)
    else:
        if standardized is not None:
            mean, scale = standardized
            for rows in [x, *(validation[:1] if validation else [])]:
                rows -= mean  # in place: the rows are this stage's own copy, and may be most of the memory
                rows /= scale
        data = {"x": x, "y": y, "batch_size": batch_size}
    with atomic_output(log_path) as temporary, without_lines(FIT_NOISE):
        history = model.fit(**data, epochs=epochs, validation_data=validation, verbose=verbose,
                            callbacks=[keras.callbacks.CSVLogger(str(temporary)), keras.callbacks.TerminateOnNaN()])
        check_finite(history.history["loss"])
    return model, history.history, standardized


def check_finite(losses):
    """Raise UserError if the last of the epochs' `losses` is not finite: such a model predicts one class."""
    if not np.isfinite(losses[-1]):
        raise UserError(f"the training loss became {losses[-1]} at epoch {len(losses)}: the features hold values too "
                        "large to train on; set train.standardize: true or lower train.learning_rate")


CGROUP = Path("/sys/fs/cgroup")


def free_memory(cgroup=CGROUP):
    """Bytes this process may still take: the least of the machine's available memory, the room left
    under its cgroup's limit (a container's, a SLURM job's) and under its address-space limit (ulimit -v)."""
    room = [psutil.virtual_memory().available]
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        room.append(soft - psutil.Process().memory_info().vms)
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            room.append(int(limit) - int((cgroup / "memory.current").read_text()))
    except (OSError, ValueError):
        pass  # no cgroup v2 memory controller here
    return max(0, min(room))


def check_memory(train_shape, valid_shape, free=None):
    """Raise UserError if loading the (n_rows, n_values) float32 training and validation rows would not fit.

    Loading the training rows takes them three times at its peak (the rows read from the memory map,
    their copy in file order, Keras's tensor), the validation rows twice (the rows, Keras's tensor).
    """
    needed = 4 * (3 * train_shape[0] * train_shape[1] + 2 * valid_shape[0] * valid_shape[1])
    free = free_memory() if free is None else free
    if needed > 0.9 * free:
        raise UserError(f"loading the training rows needs about {needed / 2**30:.1f} GiB, and "
                        f"{free / 2**30:.1f} GiB are free to this process: set train.from_disk: true "
                        "to read them from disk in batches")


def main():
    params = load_params()
    from_disk = params["train"]["from_disk"]
    x, y, rows, train_without_rows = load_set("train", in_memory=False)
    x_valid, y_valid, valid_rows, valid_without_rows = load_set("valid", in_memory=False)
    for name, without_rows in (("training", train_without_rows), ("validation", valid_without_rows)):
        if without_rows:
            log(f"train: {len(without_rows)} {name} tracks have no feature rows (extract skipped them: "
                f"see {SKIPPED}) and are left out")
    if not from_disk:
        check_memory(x.shape, x_valid.shape)
        x, x_valid = x[np.arange(len(x))], x_valid[np.arange(len(x_valid))]
    if len(x) == 0:
        raise UserError("the training set is empty: check the split params")
    if len(x_valid) == 0:
        raise UserError("the validation set is empty: raise split.validation_fraction")
    log(f"train: {rows['track_id'].nunique()} tracks ({len(x)} rows x {x.shape[1]} values), "
        f"validating on {valid_rows['track_id'].nunique()} tracks")
    model, history, standardized = train(x, y, (x_valid, y_valid), params["epochs"], params["seed"],
                                         **params["train"])
    save_model(model, MODEL, feature_recipe(), classes(), standardized)
    write_json(TRAIN_METRICS, {name: round(float(values[-1]), 6) for name, values in history.items()}
               | {"epochs": params["epochs"], "train_clips": len(x), "source": data_source()})


if __name__ == "__main__":
    run(main)
