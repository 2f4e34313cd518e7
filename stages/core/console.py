"""What a stage prints: one-line messages, progress, and C libraries' output redirected."""

import os
import sys
import threading
from contextlib import contextmanager


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
