"""Stage `train`: a head on the training tracks, chosen on the validation tracks.

    python -m stages.train

`train.head: network` is the seed's dense network (with `train.early_stopping`, the epoch of best
validation accuracy is kept); `logistic` a multinomial logistic regression fitted with
scikit-learn's L-BFGS for each `train.C`, the one of best validation accuracy kept (ties go to the
stronger regularisation), saved as one softmax layer. No validation track is ever trained on.

Output: `data/model/model.keras` (with the feature params and classes it was trained on);
`metrics/train_log.csv` (loss, accuracy, val_loss, val_accuracy for every epoch; one line for
`logistic`) and `metrics/train.json` (the kept epoch's or fit's, and what was chosen).
"""

import os
import resource
import sys
import tempfile
from pathlib import Path

import numpy as np
import psutil

from stages.core.console import log
from stages.core.errors import UserError, run
from stages.core.files import atomic_output, write_json
from stages.core.params import Params, Train, load_params
from stages.core.paths import MODEL, SKIPPED, TRAIN_LOG, TRAIN_METRICS
from stages.core.rows import MappedRows
from stages.core.sets import classes, feature_recipe, load_set
from stages.model.keras_import import FIT_NOISE, keras_and_tensorflow, without_lines
from stages.model.network import (
    batches,
    build_model,
    save_model,
    seed_everything,
    softmax_model,
    standardization,
    training_batches,
    validation_batches,
)
from stages.model.runner import ACTIVATIONS, cross_entropy


def train(x, y, validation=None, epochs=Params.epochs, seed=Params.seed, hidden_units=Train.hidden_units,
          learning_rate=Train.learning_rate, batch_size=Train.batch_size, from_disk=Train.from_disk,
          standardize=Train.standardize, early_stopping=Train.early_stopping, l2=Train.l2, dropout=Train.dropout,
          log_path=TRAIN_LOG, verbose=2):
    """Fit the seed's network on x (n_rows, n_values), y (n_rows, n_classes); validate on `validation` (x, y) if given.

    x (and validation's) may be core.rows.MappedRows: with `from_disk` the rows are read in batches,
    shuffled each epoch by `seed`. With `standardize`, every row is centred and scaled by the mean
    and deviation of x's columns (in place, for arrays). With `early_stopping` (epochs of patience),
    training stops when validation accuracy has not improved for that long, and the best epoch's
    weights are kept. Writes one line per epoch to the CSV `log_path` (and, with verbose=2, to the
    console); returns (model, history, (mean, scale) or None).
    """
    keras, _ = keras_and_tensorflow()
    seed_everything(seed)
    model = build_model(x.shape[1], y.shape[1], hidden_units, learning_rate, l2, dropout)
    standardized = standardization(x) if standardize else None
    if from_disk:
        data = {"x": batches(x, y, batch_size, seed, standardized)}
        validation = validation and batches(*validation, batch_size, standardized=standardized)
    else:
        standardize_in_place(standardized, x, *(validation[:1] if validation else []))
        stream, steps = training_batches(x, y, batch_size)
        data = {"x": stream, "steps_per_epoch": steps, "shuffle": False}  # already in the order Keras shuffles to
        validation = validation and validation_batches(*validation, batch_size)
    callbacks = [keras.callbacks.TerminateOnNaN()]
    if early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping("val_accuracy", patience=early_stopping, mode="max",
                                                       restore_best_weights=True))
    with atomic_output(log_path) as temporary, without_lines(FIT_NOISE):
        history = model.fit(**data, epochs=epochs, validation_data=validation, verbose=verbose,
                            callbacks=[keras.callbacks.CSVLogger(str(temporary)), *callbacks])
        check_finite(history.history["loss"])
        epochs_from_one(temporary)
    return model, history.history, standardized


def epochs_from_one(log_path):
    """Number the epochs of Keras's CSV log from 1, as its console lines do (`Epoch 1/20`)."""
    lines = Path(log_path).read_text().splitlines(keepends=True)
    Path(log_path).write_text(lines[0] + "".join(f"{int(line.split(',', 1)[0]) + 1},{line.split(',', 1)[1]}"
                                                 for line in lines[1:]))


def train_ensemble(x, y, validation, epochs=Params.epochs, seed=Params.seed, members=Train.ensemble, log_path=TRAIN_LOG,
                   **network):
    """`members` networks trained as train() trains one, with seeds seed, seed + 1, ...: (the model, or a list of
    models for an ensemble, the first network's history, (mean, scale) or None). The first network's epochs go
    to `log_path`."""
    models, first = [], None
    for member in range(members):
        with tempfile.TemporaryDirectory() as folder:
            # In memory, the first network standardized x in place: the others take it as it now is.
            standardize = network["standardize"] and (member == 0 or network["from_disk"])
            model, history, standardized = train(x, y, validation, epochs, seed + member, **network | {
                "standardize": standardize}, log_path=log_path if member == 0 else Path(folder) / "log.csv")
        models.append(model)
        first = first or (history, standardized)
    return (models if members > 1 else models[0]), *first


def ensemble_accuracy(models, x, y, standardized):
    """The validation accuracy of an ensemble's mean probabilities on x (already standardized in memory, or
    MappedRows read in batches and standardized by `standardized`)."""
    rows = batches(x, y, 1024, standardized=standardized) if isinstance(x, MappedRows) else [(x, y)]
    right = sum(int(np.sum(np.mean([model.predict_on_batch(batch) for model in models], axis=0).argmax(axis=1)
                           == truth.argmax(axis=1))) for batch, truth in rows)
    return round(right / len(x), 6)


def standardize_in_place(standardized, *matrices):
    """Centre and scale each of `matrices` (n_rows, n_values) by `standardized` (mean, scale), if not None; in place:
    the rows are this stage's own copy, and may be most of the memory."""
    if standardized is not None:
        for rows in matrices:
            rows -= standardized[0]
            rows /= standardized[1]


def fit_logistic(x, y, validation, C=Train.C, standardize=Train.standardize, log_path=TRAIN_LOG):
    """The multinomial logistic regression of x (n_rows, n_values), y (n_rows, n_classes) whose inverse
    regularisation strength `C` (a number or a list) scores best on `validation` (x, y); ties go to the smaller C.

    Every candidate is fitted on x only (scikit-learn's L-BFGS, deterministic). With `standardize`, x and
    validation's x are standardized in place first. Writes the kept fit's scores as one line to `log_path`.
    Returns (Keras model of one softmax layer, (mean, scale) or None, {"C": the chosen, "candidates": {C: val acc}}).
    """
    from sklearn.linear_model import LogisticRegression
    standardized = standardization(x) if standardize else None
    standardize_in_place(standardized, x, validation[0])
    labels, valid_labels = y.argmax(axis=1), validation[1].argmax(axis=1)
    best, candidates = None, {}
    for strength in sorted(C if isinstance(C, (list, tuple)) else [C]):
        fitted = LogisticRegression(C=strength, max_iter=1000).fit(x, labels)
        candidates[strength] = float(np.mean(fitted.predict(validation[0]) == valid_labels))
        if best is None or candidates[strength] > candidates[best.C]:
            best = fitted
    kernel, bias = softmax_weights(best, y.shape[1])
    scores = {name: value for split, (rows, truth) in (("", (x, y)), ("val_", validation))
              for name, value in zip((f"{split}accuracy", f"{split}loss"), linear_scores(kernel, bias, rows, truth))}
    with atomic_output(log_path) as temporary:
        Path(temporary).write_text("epoch,accuracy,loss,val_accuracy,val_loss\n1," + ",".join(
            repr(scores[name]) for name in ("accuracy", "loss", "val_accuracy", "val_loss")) + "\n")
    return (softmax_model(kernel, bias), standardized,
            {"C": best.C, "candidates": candidates} | {name: [value] for name, value in scores.items()})


def softmax_weights(fitted, n_classes):
    """(kernel (n_values, n_classes), bias (n_classes,)) of a fitted scikit-learn LogisticRegression as one softmax
    layer. Two classes: sigmoid(w.x + b) is softmax([0, w.x + b]). A class with no training row gets a bias of -30
    (a probability below 1e-13)."""
    coef, intercept = fitted.coef_, fitted.intercept_
    if len(fitted.classes_) == 2:
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    kernel, bias = np.zeros((coef.shape[1], n_classes)), np.full(n_classes, -30.0)
    kernel[:, fitted.classes_], bias[fitted.classes_] = coef.T, intercept
    return kernel, bias


def linear_scores(kernel, bias, x, y):
    """(accuracy, categorical cross-entropy) of the softmax layer (kernel, bias) on x, one-hot y."""
    probabilities = ACTIVATIONS["softmax"](x @ kernel + bias)
    return float(np.mean(probabilities.argmax(axis=1) == y.argmax(axis=1))), cross_entropy(y, probabilities)


def check_finite(losses):
    """Raise UserError if the last of the epochs' `losses` is not finite: such a model predicts one class."""
    if not np.isfinite(losses[-1]):
        raise UserError(f"the training loss became {losses[-1]} at epoch {len(losses)}: the features hold values too "
                        "large to train on; set train.standardize: true or lower train.learning_rate")


NETWORK_SETTINGS = ("hidden_units", "learning_rate", "batch_size", "from_disk", "standardize", "early_stopping", "l2",
                    "dropout")
"""The `train` params that train() reads for each network (`ensemble` says how many, `head` and `C` choose and fit
the logistic head)."""

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
    their copy in file order, the tensor fed to Keras), the validation rows twice (the rows, their tensor).
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
    settings = params["train"]
    chosen = {}
    if settings["head"] == "logistic" and from_disk:
        raise UserError("train.head: logistic fits on rows in memory: set train.from_disk: false")
    if settings["head"] == "logistic" and settings["ensemble"] > 1:
        raise UserError("train.ensemble averages networks of different seeds; a logistic regression has no seed: "
                        "set train.ensemble: 1, or train.head: network")
    if settings["head"] == "logistic":
        model, standardized, history = fit_logistic(x, y, (x_valid, y_valid), settings["C"], settings["standardize"])
        chosen = {"C": history.pop("C"), "candidates": {f"C={c:g}": round(a, 6)
                                                        for c, a in history.pop("candidates").items()}}
        log(f"train: logistic regression, C={chosen['C']:g} chosen on the validation tracks "
            f"({', '.join(f'{name}: {accuracy:.3f}' for name, accuracy in chosen['candidates'].items())})")
    else:
        network = {key: settings[key] for key in NETWORK_SETTINGS}
        model, history, standardized = train_ensemble(x, y, (x_valid, y_valid), params["epochs"], params["seed"],
                                                      settings["ensemble"], **network)
        if settings["early_stopping"]:
            chosen = {"epoch_kept": int(np.argmax(history["val_accuracy"])) + 1}
            log(f"train: epoch {chosen['epoch_kept']} of {len(history['loss'])} kept (best validation accuracy)")
        if settings["ensemble"] > 1:
            chosen["ensemble_val_accuracy"] = ensemble_accuracy(model, x_valid, y_valid, standardized)
            log(f"train: an ensemble of {settings['ensemble']} networks (seeds {params['seed']} to "
                f"{params['seed'] + settings['ensemble'] - 1}), validation accuracy {chosen['ensemble_val_accuracy']:.3f}")
    kept = chosen.get("epoch_kept", len(history["loss"])) - 1
    save_model(model, MODEL, feature_recipe(), classes(), standardized)
    # eval.json's accuracy and loss are the test tracks': the training rows' are named so, to tell them apart
    write_json(TRAIN_METRICS, {name if name.startswith("val_") else f"train_{name}": round(float(values[kept]), 6)
                               for name, values in history.items()} | chosen
               | {"epochs": params["epochs"], "train_clips": len(x)})


if __name__ == "__main__":
    run(main)
    # Past this point everything is written and closed. TensorFlow's teardown at interpreter exit takes about 0.4 s of
    # every training run (docs/figures.md) and writes nothing: leave without it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
