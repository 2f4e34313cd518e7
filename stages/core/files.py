"""Files written whole or not at all (atomic writes), and their checksums."""

import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

CHUNK = 1 << 20
"""Bytes read or written at a time when copying, hashing or downloading."""


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
    """Write `data` as JSON; raises ValueError for NaN or infinity, which JSON cannot hold (nothing is written)."""
    write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def write_csv(path, frame):
    """Write a pandas DataFrame without its index."""
    with atomic_output(path) as temporary:
        frame.to_csv(temporary, index=False)
