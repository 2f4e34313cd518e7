"""The params, declared once: every key of params.yaml with its type, default, the values it may take and its
meaning (the dataclasses Params, Data, ..., Train); params.yaml rendered from them; the loader every stage calls first.

    python -m stages.core.params      # after changing a declaration: writes params.yaml
"""

import difflib
import re
import sys
from dataclasses import dataclass, field, fields, is_dataclass
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
    every = list(dict.fromkeys(_MUSICNN + _VGG))
    if value != "all" and (not names or not all(name in every for name in names)):
        return f"must be all, one of {', '.join(every)}, or a list of them"


def layer_names(model, layer):
    """The layers of `model` that `layer` names: every one of MUSICNN_LAYERS[model] for "all", in its order; else
    the list, or the one name."""
    return list(MUSICNN_LAYERS[model]) if layer == "all" else layer if isinstance(layer, list) else [layer]


def check_musicnn_layer(musicnn):
    """Raise UserError when the `features.musicnn` params group names a layer its model does not have."""
    layers = MUSICNN_LAYERS[musicnn["model"]]
    if missing := [name for name in layer_names(musicnn["model"], musicnn["layer"]) if name not in layers]:
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


def param(default, check, meaning=""):
    """A key of params.yaml: its default, the rule its value must pass (returning what is wrong, or None) and
    its one-line meaning, written beside it in params.yaml."""
    return field(default=default, metadata={"check": check, "meaning": meaning})


def group(cls, meaning=""):
    """A group of keys of params.yaml: the dataclass `cls` of its keys, all at their defaults."""
    return field(default=cls(), metadata={"meaning": meaning})


# One declaration per params group: every key with its type, default, rule and meaning. params.yaml is their
# rendering (`python -m stages.core.params` writes it; a test keeps it so), and code that needs a default reads it
# here, e.g. Mfcc.n_mfcc.

FMA_ARCHIVE = "https://os.unil.cloud.switch.ch/fma/fma_{}.zip#sha1={}"  # FMA's archive of a subset, its sha1


@dataclass(frozen=True)
class Gtzan:
    url: str = param("https://huggingface.co/datasets/marsyas/gtzan/resolve/d2146561ecc7df707d9e6b8318885fe6a39668a2"
                     "/data/genres.tar.gz#sha256=b28cc067ff6199bd826f5d1a6931458586d64acae7f44b2e882b7a97af057531",
                     _archive_url)
    mirrors: tuple = param(("https://web.archive.org/web/20220328223413/http://opihi.cs.uvic.ca/sound/genres.tar.gz"
                            "#md5=5b3d6dddb579ab49814ab86dba69e7c7",
                            "http://opihi.cs.uvic.ca/sound/genres.tar.gz#md5=5b3d6dddb579ab49814ab86dba69e7c7"),
                           _archive_urls, "the original UVic archive")


@dataclass(frozen=True)
class FmaAudio:
    small: tuple = param((FMA_ARCHIVE.format("small", "ade154f733639d52e35e32f5593efe5be76c6d70"),), _archive_urls)
    medium: tuple = param((FMA_ARCHIVE.format("medium", "c67b69ea232021025fca9231fc1c7c1a063ab50b"),), _archive_urls)
    large: tuple = param((FMA_ARCHIVE.format("large", "497109f4dd721066b5ce5e5f250ec604dc78939e"),), _archive_urls)
    full: tuple = param((FMA_ARCHIVE.format("full", "0f0ace23fbe9ba30ecb7e95f763e435ea802b8ab"),), _archive_urls)


@dataclass(frozen=True)
class Fma:
    subset: str = param("small", _choice("small", "medium", "large", "full"),
                        "small (8,000 clips, 8 genres), medium (25,000, 16), large (106,574, 161) or full (untrimmed)")
    metadata: tuple = param(("https://os.unil.cloud.switch.ch/fma/fma_metadata.zip"
                             "#sha1=f0df49ffe5f2a6008d7dc83c6915b31835dfe733",),
                            _archive_urls, "tried in order, each with its published sha1")
    audio: FmaAudio = group(FmaAudio, "each subset's archive, tried in order, with its published sha1")


@dataclass(frozen=True)
class Demo:
    seed: int = param(0, _integer(0), "not the top-level seed, so that -S seed=N never remakes the data")
    clips_per_genre: int = param(10, _integer(10), "clips of 30 s made for each of the 10 genres")


@dataclass(frozen=True)
class Data:
    source: str = param("gtzan", _choice("gtzan", "demo", "folder", "table", "fma"),
                        "gtzan; demo: a synthetic corpus made offline; folder: your own music; table: features made "
                        "elsewhere; fma: the Free Music Archive")
    folder: str = param("music", _text, "for source folder: <label>/<audio files>, read in place")
    table: str = param("music/README.md", _text,
                       "for source table: a CSV, one row per track or window (stages/features/table.py); the "
                       "default only names a file that exists, as DVC wants of a dependency")
    table_ignore: tuple = param(("length",), _names, "the table's columns that are not features (Kaggle's CSVs "
                                                     "carry each file's sample count)")
    gtzan: Gtzan = group(Gtzan, "tried in order; #sha256=, #md5= or #sha1= declares the archive's checksum (none: "
                                "the clips are still checked)")
    fma: Fma = group(Fma, "the Free Music Archive; its zips are read in place (docs/data.md)")
    demo: Demo = group(Demo, "a synthetic GTZAN-shaped corpus (stages/sources/demo.py)")


@dataclass(frozen=True)
class Mfcc:
    n_mfcc: int = param(20, _integer(1), "coefficients per frame")
    n_fft: int = param(2048, _integer(16), "samples per FFT window")
    hop_length: int = param(512, _integer(1), "samples between frames")
    n_mels: int = param(128, _integer(1), "mel bands")
    n_values: int = param(25000, _integer(1), "the first values of the flattened (n_mfcc, frames) matrix")


@dataclass(frozen=True)
class Musicnn:
    model: str = param("MSD_musicnn", _choice(*MUSICNN_LAYERS),
                       "MSD_musicnn, MTT_musicnn, MSD_vgg or MTT_vgg (the musicnn 0.1.0 wheel's taggers)")
    layer: str | list = param("penultimate", _layers, "taggram (50); musicnn: penultimate (200), max_pool, "
                                                      "mean_pool (753); vgg: pool1 ... pool5 (128); a list; all")
    pooling: str = param("mean", _choice("mean", "max", "mean+max"),
                         "over the window's 3 s patches: mean, max or mean+max (both, twice the width)")
    res_type: str = param("soxr_hq", _choice("soxr_hq", "kaiser_best"),
                          "resampling to 16 kHz: soxr_hq (fast) or kaiser_best (the original package's, exact)")


@dataclass(frozen=True)
class Features:
    kind: str = param("mfcc", _choice("mfcc", "musicnn"), "mfcc: the seed's MFCC matrix; musicnn: a pretrained "
                                                          "tagger's embedding")
    sample_rate: int = param(22050, _integer(1), "Hz: the audio is decoded at this rate")
    windows: str = param("first", _choice("first", "all"),
                         "first: one row per file (the seed's); all: one row per 30 s window")
    n_jobs: int = param(0, _integer(0), "worker processes; 0 = one per core")
    scheduler: str | None = param(None, _scheduler_or_null,
                           "empty: this machine; or a Dask scheduler, tcp://host:8786 (README, \"Scaling out\")")
    mfcc: Mfcc = group(Mfcc, "the seed's recipe (librosa.feature.mfcc)")
    musicnn: Musicnn = group(Musicnn, "pretrained tagger embeddings (stages/features/musicnn.py)")


@dataclass(frozen=True)
class Pretrained:
    wheel: str | None = param(None, _path_or_null, "path to musicnn-0.1.0-py3-none-any.whl; empty: pip download it")


@dataclass(frozen=True)
class Split:
    method: str = param("random", _choice("random", "stratified", "artist", "fault_filtered", "official"),
                        "random (the seed's), stratified, artist (no artist on two sides), fault_filtered (GTZAN "
                        "only) or official (FMA's own)")
    train_fraction: float = param(0.8, _number(0.05, 0.95), "of the tracks (random, stratified and artist)")
    validation_fraction: float = param(0.2, _number(0.05, 0.9), "of the training tracks, held out to validate each "
                                                                "epoch (not fault_filtered: listed)")


@dataclass(frozen=True)
class Train:
    hidden_units: int = param(100, _integer(0), "0 = no hidden layer: a linear classifier")
    learning_rate: float = param(0.001, _number(1e-7, 1.0), "network: Adam's step size")
    batch_size: int = param(32, _integer(1), "network: rows per training step")
    from_disk: bool = param(False, _boolean, "true: read the rows from disk in batches each epoch, for a matrix "
                                             "larger than RAM")
    standardize: bool = param(False, _boolean, "true: centre and scale each feature by the training rows' mean and "
                                               "deviation (stored in the model)")
    head: str = param("network", _choice("network", "logistic"), "network: the seed's dense network; logistic: a "
                                                                 "multinomial logistic regression (L-BFGS)")
    C: tuple = param((0.01, 0.1, 1, 10), _inverse_strengths, "logistic: inverse regularisation strength, or a list: "
                                                              "the best on the validation tracks wins")
    early_stopping: int = param(0, _integer(0), "network: patience in epochs on validation accuracy, keeping the "
                                                "best epoch; 0 = off")
    l2: float = param(0, _number(0.0, 1.0), "network: L2 penalty on every layer's weights")
    dropout: float = param(0, _number(0.0, 0.95), "network: dropout rate after the hidden layer")
    ensemble: int = param(1, _integer(1), "network: how many, seeds seed, seed + 1, ...: the saved model averages "
                                          "their probabilities")


@dataclass(frozen=True)
class Params:
    seed: int = param(42, _integer(0), "seeds the split and the training")
    epochs: int = param(10, _integer(1), "training epochs of the network")
    data: Data = group(Data)
    features: Features = group(Features)
    pretrained: Pretrained = group(Pretrained)
    split: Split = group(Split)
    train: Train = group(Train)


def validate(params, schema=Params, prefix=""):
    """Raise UserError naming the first key of `params` that does not fit the params group `schema`."""
    if not isinstance(params, dict):
        raise UserError(f"params.yaml: '{prefix.rstrip('.') or 'the file'}' must be a mapping of keys")
    keys = {key.name: key for key in fields(schema)}
    for key in params:
        if key not in keys:
            close = difflib.get_close_matches(str(key), keys, n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            raise UserError(f"params.yaml: unknown key '{prefix}{key}'{hint}")
    for name, key in keys.items():
        if name not in params:
            raise UserError(f"params.yaml: missing key '{prefix}{name}'")
        if is_dataclass(key.type):
            validate(params[name], key.type, f"{prefix}{name}.")
        elif (problem := key.metadata["check"](params[name])) is not None:
            raise UserError(f"params.yaml: '{prefix}{name}' {problem}, got {params[name]!r}")


MEANING_COLUMN = 27
"""Where params.yaml's meanings start, so that they line up."""


def _scalar(value):
    """A value as params.yaml writes it, in the form DVC writes it back after `-S` (a null is written as nothing,
    by render)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def render(values=None, indent=0):
    """params.yaml's text: `values` (default: every default of Params) with each key's meaning beside it, in the
    form DVC writes it back after `-S`, so that `-S key=value` changes only that key's line."""
    values = Params() if values is None else values
    lines = []
    for key in fields(values):
        value, meaning = getattr(values, key.name), key.metadata["meaning"]
        if indent == 0 and is_dataclass(value):
            lines.append("")
        line = f"{' ' * indent}{key.name}:"
        if not (is_dataclass(value) or isinstance(value, tuple)) and value is not None:
            scalar = _scalar(value)
            # ruamel.yaml, which DVC writes with, moves a plain scalar beyond 80 columns to the next line
            line += f" \n{' ' * (indent + 2)}{scalar}" if len(f"{line} {scalar}") > 80 else f" {scalar}"
        if meaning:
            line += " " * max(1, MEANING_COLUMN - len(line.rsplit("\n", 1)[-1])) + f"# {meaning}"
        lines.append(line)
        if is_dataclass(value):
            lines.append(render(value, indent + 2))
        elif isinstance(value, tuple):
            lines += [f"{' ' * indent}- {_scalar(item)}" for item in value]
    return "\n".join(lines) + ("\n" if indent == 0 else "")


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


if __name__ == "__main__":
    # python -m stages.core.params: write params.yaml from the declarations above, every key at its default
    PARAMS.write_text(render())
    print(f"wrote {PARAMS}", file=sys.stderr)
