"""Stage `train`: the seed's dense network on the training tracks, validated on the validation tracks.

Output: `data/model/model.keras` (with the feature params and classes it was trained on);
`metrics/train_log.csv` (loss, accuracy, val_loss, val_accuracy for every epoch) and
`metrics/train.json` (the last epoch's).
"""

from stages.common import UserError, atomic_output, load_params, log, run, write_json
from stages.dataset import classes, data_source, feature_recipe, load_set
from stages.keras_import import keras_and_tensorflow
from stages.model import build_model, save_model, seed_everything
from stages.paths import MODEL, TRAIN_LOG, TRAIN_METRICS


def train(x, y, validation=None, epochs=10, seed=42, hidden_units=100, learning_rate=0.001,
          batch_size=32, log_path=TRAIN_LOG, verbose=2):
    """Fit the seed's network on x (n_rows, n_values), y (n_rows, n_classes); validate on `validation` (x, y) if given.

    Writes one line per epoch to the CSV `log_path` (and, with verbose=2, to the console);
    returns (model, history).
    """
    keras, _ = keras_and_tensorflow()
    seed_everything(seed)
    model = build_model(x.shape[1], y.shape[1], hidden_units, learning_rate)
    with atomic_output(log_path) as temporary:
        history = model.fit(x, y, epochs=epochs, batch_size=batch_size, validation_data=validation,
                            callbacks=[keras.callbacks.CSVLogger(str(temporary))], verbose=verbose)
    return model, history.history


def main():
    params = load_params()
    x, y, rows = load_set("train")
    x_valid, y_valid, valid_rows = load_set("valid")
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
