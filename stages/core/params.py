"""The params schema: every key of params.yaml, the values it may take, and the loader every stage calls first."""

import difflib
import re
from pathlib import Path

from ruamel.yaml import YAML, YAMLError

from stages.core.checksums import KNOWN, split_checksum
from stages.core.errors import UserError
from stages.core.paths import PARAMS

# ---------------------------------------------------------------- the schema

def _integer(minimum):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            return f"must be an integer >= {minimum}"
    return check


def _boolean(value):
    if not isinstance(value, bool):
        return "must be true or false"


def _number(low, high):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            return f"must be a number between {low} and {high}"
    return check


def _choice(*options):
    def check(value):
        if value not in options:
            return f"must be one of {', '.join(map(str, options))}"
    return check


def _text(value):
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"


def _archive_urls(value):
    if not isinstance(value, list):
        return "must be a list of URLs or paths"
    return next(filter(None, map(_archive_url, value)), None)


def _names(value):
    if not isinstance(value, list) or not all(isinstance(name, str) and name for name in value):
        return "must be a list of column names, [] for none"


def _inverse_strengths(value):
    values = value if isinstance(value, list) else [value]
    if not values or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf")
                         for v in values):
        return "must be a positive number or a non-empty list of them, e.g. [0.01, 0.1, 1, 10]"


_MUSICNN = ("taggram", "penultimate", "max_pool", "mean_pool")
_VGG = ("taggram", "pool1", "pool2", "pool3", "pool4", "pool5")
MUSICNN_LAYERS = {"MSD_musicnn": _MUSICNN, "MTT_musicnn": _MUSICNN, "MSD_vgg": _VGG, "MTT_vgg": _VGG}
"""features.musicnn.model -> its layers, in the order `layer: all` concatenates them."""


def _layers(value):
    names = value if isinstance(value, list) else [value]
    every = sorted(set(_MUSICNN + _VGG), key=(_MUSICNN + _VGG).index)
    if value != "all" and (not names or not all(name in every for name in names)):
        return f"must be all, one of {', '.join(every)}, or a list of them"


def check_musicnn_layer(musicnn):
    """Raise UserError when the `features.musicnn` params group names a layer its model does not have."""
    names = musicnn["layer"] if isinstance(musicnn["layer"], list) else [musicnn["layer"]]
    layers = MUSICNN_LAYERS[musicnn["model"]]
    if musicnn["layer"] != "all" and (missing := [name for name in names if name not in layers]):
        raise UserError(f"params.yaml: 'features.musicnn.layer' {missing[0]} is not a layer of {musicnn['model']}: "
                        f"set it to all, one of {', '.join(layers)}, or a list of them")


def _path_or_null(value):
    if value is not None and not (isinstance(value, str) and value):
        return "must be a file path, or null"


SCHEDULER = re.compile(r"^[a-z]+://(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(\d{1,5})$")


def _scheduler_or_null(value):
    match = SCHEDULER.match(value) if isinstance(value, str) else None
    if value is not None and not (match and 0 < int(match.group(2)) < 65536):
        return "must be a Dask scheduler's address such as tcp://host:8786, or null for this machine"


def _archive_url(value):
    if not isinstance(value, str) or not value:
        return f"must be a URL or path, with {KNOWN} to check its bytes"
    try:
        split_checksum(value)
    except UserError as error:
        return str(error)


SCHEMA = {
    "seed": _integer(0),
    "epochs": _integer(1),
    "data": {
        "source": _choice("gtzan", "demo", "folder", "table", "fma"),
        "folder": _text,
        "table": _text,
        "table_ignore": _names,
        "gtzan": {
            "url": _archive_url,
            "mirrors": _archive_urls,
        },
        "fma": {
            "subset": _choice("small", "medium", "large", "full"),
            "metadata": _archive_urls,
            "audio": {subset: _archive_urls for subset in ("small", "medium", "large", "full")},
        },
        "demo": {
            "seed": _integer(0),
            "clips_per_genre": _integer(10),
        },
    },
    "features": {
        "kind": _choice("mfcc", "musicnn"),
        "sample_rate": _integer(1),
        "windows": _choice("first", "all"),
        "n_jobs": _integer(0),
        "scheduler": _scheduler_or_null,
        "mfcc": {
            "n_mfcc": _integer(1),
            "n_fft": _integer(16),
            "hop_length": _integer(1),
            "n_mels": _integer(1),
            "n_values": _integer(1),
        },
        "musicnn": {
            "model": _choice(*MUSICNN_LAYERS),
            "layer": _layers,
            "pooling": _choice("mean", "max", "mean+max"),
            "res_type": _choice("soxr_hq", "kaiser_best"),
        },
    },
    "pretrained": {
        "wheel": _path_or_null,
    },
    "split": {
        "method": _choice("random", "stratified", "artist", "fault_filtered", "official"),
        "train_fraction": _number(0.05, 0.95),
        "validation_fraction": _number(0.05, 0.9),
    },
    "train": {
        "hidden_units": _integer(0),
        "learning_rate": _number(1e-7, 1.0),
        "batch_size": _integer(1),
        "from_disk": _boolean,
        "standardize": _boolean,
        "head": _choice("network", "logistic"),
        "C": _inverse_strengths,
        "early_stopping": _integer(0),
        "l2": _number(0.0, 1.0),
        "dropout": _number(0.0, 0.95),
        "ensemble": _integer(1),
    },
}


def validate(params, schema=SCHEMA, prefix=""):
    """Raise UserError naming the first key of `params` that does not fit `schema`."""
    if not isinstance(params, dict):
        raise UserError(f"params.yaml: '{prefix.rstrip('.') or 'the file'}' must be a mapping of keys")
    for key in params:
        if key not in schema:
            close = difflib.get_close_matches(str(key), schema, n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            raise UserError(f"params.yaml: unknown key '{prefix}{key}'{hint}")
    for key, rule in schema.items():
        if key not in params:
            raise UserError(f"params.yaml: missing key '{prefix}{key}'")
        if isinstance(rule, dict):
            validate(params[key], rule, f"{prefix}{key}.")
        elif (problem := rule(params[key])) is not None:
            raise UserError(f"params.yaml: '{prefix}{key}' {problem}, got {params[key]!r}")


def load_params(path=PARAMS):
    """Read and validate params.yaml; every stage calls this first.

    Read as YAML 1.2, as DVC reads it: `1e-4` is the number 0.0001, not a string.
    """
    try:
        params = YAML(typ="safe", pure=True).load(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path} not found: run the stage from the repository's top folder")
    except YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"{path} is not valid YAML{where}: fix its syntax")
    validate(params)
    check_musicnn_layer(params["features"]["musicnn"])
    return params
