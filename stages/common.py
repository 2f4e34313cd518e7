"""What every stage needs: atomic writes, progress, clear errors."""

import errno
import hashlib
import json
import os
import re
import shutil
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from stages.paths import STAGE_OUTPUTS


class UserError(Exception):
    """A mistake the user can fix; printed as one line, without a traceback."""


class ClipTooShort(ValueError):
    """The audio is too short for the features asked for."""


# ---------------------------------------------------------------- files

CHUNK = 1 << 20
"""Bytes read or written at a time when copying, hashing or downloading."""


def file_digest(path, algorithm="md5"):
    """The hex digest of a file's bytes by a hashlib algorithm, read a chunk at a time."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


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
    """Point the OS-level file descriptor `fd` at `file` for a while (C libraries write there directly).

    In the main thread only: a file descriptor is the whole process's, and two threads redirecting it
    at once (a Dask worker with --nthreads 2) would leave it pointing at the wrong file. Elsewhere
    nothing is redirected.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
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

    Set STAGES_TRACEBACK=1 to see the traceback of an unexpected error. First, the temporaries that
    killed runs left beside any stage's output are deleted: a re-run that DVC restores from its run
    cache runs no stage, so the stage that left one may never run again to clean up after itself.
    """
    for output in STAGE_OUTPUTS:
        remove_stale_temporaries(output)
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
