"""What every stage needs: params, atomic writes, progress, clear errors."""

import difflib
import errno
import json
import os
import re
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

from ruamel.yaml import YAML, YAMLError

from stages.paths import PARAMS, STAGE_OUTPUTS


class UserError(Exception):
    """A mistake the user can fix; printed as one line, without a traceback."""


class ClipTooShort(ValueError):
    """The audio is too short for the features asked for."""


# ---------------------------------------------------------------- params

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


def _texts(value):
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        return "must be a list of strings"


def _path_or_null(value):
    if value is not None and not (isinstance(value, str) and value):
        return "must be a file path, or null"


def _scheduler_or_null(value):
    if value is not None and not (isinstance(value, str) and "://" in value):
        return "must be a Dask scheduler's address such as tcp://host:8786, or null for this machine"


def _md5_or_null(value):
    if value is not None and not (isinstance(value, str) and len(value) == 32
                                  and all(c in "0123456789abcdef" for c in value)):
        return "must be 32 lowercase hex digits, or null to skip the check"


SCHEMA = {
    "seed": _integer(0),
    "epochs": _integer(1),
    "data": {
        "source": _choice("gtzan", "demo", "folder"),
        "folder": _text,
        "gtzan": {
            "url": _text,
            "mirrors": _texts,
            "md5": _md5_or_null,
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
            "layer": _choice("penultimate", "max_pool", "mean_pool", "taggram"),
            "pooling": _choice("mean", "max"),
        },
    },
    "pretrained": {
        "wheel": _path_or_null,
    },
    "split": {
        "method": _choice("random", "stratified", "fault_filtered"),
        "train_fraction": _number(0.05, 0.95),
        "validation_fraction": _number(0.05, 0.9),
    },
    "train": {
        "hidden_units": _integer(0),
        "learning_rate": _number(1e-7, 1.0),
        "batch_size": _integer(1),
        "from_disk": _boolean,
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
    return params


# ---------------------------------------------------------------- files

def remove(path):
    """Delete a file, link or folder if it exists."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_temporaries(path):
    """Delete the temporaries of `path` left by processes that no longer run (SIGKILL, OOM, power loss)."""
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.stem)}\.tmp-(\d+){re.escape(path.suffix)}$")
    for sibling in path.parent.glob(f".{path.stem}.tmp-*"):
        match = pattern.match(sibling.name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            remove(sibling)


@contextmanager
def atomic_output(path):
    """Yield a temporary sibling of `path` to write a file or folder into.

    On success it replaces `path` in one rename; on any error it is deleted,
    so `path` is only ever absent, old or complete. Temporaries of killed runs are deleted first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    # Keep the suffix: some writers (Keras) insist on it.
    temporary = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    remove(temporary)
    try:
        yield temporary
        remove(path)
        os.replace(temporary, path)
    except BaseException:
        remove(temporary)
        raise


def write_text(path, text):
    with atomic_output(path) as temporary:
        Path(temporary).write_text(text)


def write_json(path, data):
    write_text(path, json.dumps(data, indent=2) + "\n")


def write_csv(path, frame):
    """Write a pandas DataFrame without its index."""
    with atomic_output(path) as temporary:
        frame.to_csv(temporary, index=False)


# ---------------------------------------------------------------- console

@contextmanager
def redirect_fd(fd, file):
    """Point the OS-level file descriptor `fd` at `file` for a while (C libraries write there directly)."""
    saved = os.dup(fd)
    try:
        os.dup2(file.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def log(message):
    print(message, file=sys.stderr, flush=True)


def progress(iterable, total, desc, unit="clips", size=None):
    """Yield from `iterable`, showing progress towards `total` units.

    Each item counts 1 unit, or `size(item)` units (bytes of a chunk, say).
    On a terminal this is a tqdm bar; in a log it is about ten plain lines.
    """
    count = size or (lambda item: 1)
    if sys.stderr.isatty():
        from tqdm import tqdm
        with tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B", dynamic_ncols=True) as bar:
            for item in iterable:
                yield item
                bar.update(count(item))
        return
    done, next_report = 0, (total or 0) / 10
    for item in iterable:
        yield item
        done += count(item)
        if total and done >= next_report:
            log(f"{desc}: {done:,}/{total:,} {unit} ({100 * done / total:.0f}%)")
            next_report = done + total / 10


def no_space_left(error):
    """Whether `error` (of any library) says the disk is full."""
    return (isinstance(error, OSError) and error.errno == errno.ENOSPC) or "No space left" in str(error)


def made_by_a_stage(path):
    """Whether `path` (relative to the repository's top folder) is, or is inside, a stage's output."""
    return path is not None and any(Path(path).is_relative_to(output) for output in STAGE_OUTPUTS)


def run(main, argv=None):
    """Run a stage's main(), turning any failure into one line on stderr and a non-zero exit.

    Set STAGES_TRACEBACK=1 to see the traceback of an unexpected error.
    """
    try:
        main() if argv is None else main(argv)
    except UserError as error:
        log(f"error: {error}")
        sys.exit(1)
    except KeyboardInterrupt:
        log("interrupted: nothing half-written was kept; run again to resume")
        sys.exit(130)
    except Exception as error:
        if no_space_left(error):
            log(f"error: no space left on device writing {getattr(error, 'filename', None) or 'output'}: "
                "free some disk space (a full GTZAN run needs about 4 GB) and run again")
            sys.exit(1)
        if isinstance(error, FileNotFoundError) and made_by_a_stage(error.filename):
            log(f"error: {error.filename} is missing: an earlier stage makes it; run `dvc repro` "
                "(or `dvc pull` for outputs pushed to the remote)")
            sys.exit(1)
        if os.environ.get("STAGES_TRACEBACK"):
            raise
        message = " ".join(str(error).split()) or "no message"
        log(f"error: {error.__class__.__name__}: {message} "
            "(unexpected: run again with STAGES_TRACEBACK=1 to see where, and report it)")
        sys.exit(1)
