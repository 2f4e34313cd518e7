"""Per-file work (decoding and features) on local worker processes or a Dask cluster, results in order.

Locally: `n_jobs` worker processes, forked, or started from a fork server where TensorFlow
already runs in this process (a notebook, say): a fork would copy its threads' locks mid-use.
Each worker sets itself up (_prepare_process); the driver's own settings are never touched.
With a scheduler address (`features.scheduler`), the cluster's workers: the project's code is
sent to them (as Client.upload_file does, under a name of this run's, unregistered when the run
ends), each task carries absolute paths resolved here and sets its worker up on first use, and a
worker that dies has its files redone by the others (Dask's own rescheduling). A cluster is
shared by one run at a time: a worker holds one version of the `stages` package, so a second
run, whose code may differ, waits for the first (a cluster-wide Dask Lock, at most LOCK_SECONDS)
rather than mix the two. A chunk whose results take more than CHUNK_SECONDS (a stopped worker, a
stuck network read) stops the run naming the worker and the files. Either way the driver holds
only a bounded window of results: its memory does not grow with the corpus.
"""

import asyncio
import ctypes
import logging
import multiprocessing
import os
import re
import shutil
import signal
import sys
import tempfile
import zipfile
from collections import deque
from concurrent.futures import CancelledError, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from itertools import islice
from pathlib import Path

from threadpoolctl import threadpool_limits

from stages.core.console import log
from stages.core.errors import UserError
from stages.core.files import remove
from stages.core.params import Features

CONNECT_SECONDS = 10
WORKERS_SECONDS = 20
CHUNK_SECONDS = 3600
"""The longest wait for one chunk's results from the cluster (16 files) before the run stops naming its worker."""
LOCK = "genre-pipeline-extract"
LOCK_SECONDS = 3600
"""The longest wait for another run to release the cluster."""
LOCAL_CHUNK = 4                 # files per task sent to a local worker process
CLUSTER_CHUNK = 16              # files per Dask task: a network round trip costs more than a pipe's
CHUNKS_IN_FLIGHT_PER_WORKER = 4
SHOWN = 5
"""Files named in a message; the rest are counted."""
CODE_FOLDER = "genre-pipeline-code-{pid}-"
"""The temporary folder, in the system's, of the code zip sent to a cluster (the pid finds a killed run's)."""


def usable_cores():
    """The cores this process may run on (a container or SLURM job may get 2 of a machine's 64)."""
    return len(os.sched_getaffinity(0))


def _keep_freed_memory():
    """Let glibc keep freed memory: each clip allocates some 30 MB of temporaries, and handing
    them back to the kernel to fault them in again for the next clip costs a sixth of the run."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc: nothing to tune
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    libc.mallopt(m_mmap_threshold, 256 << 20)
    libc.mallopt(m_trim_threshold, 512 << 20)
    libc.mallopt(m_top_pad, 64 << 20)


def _prepare_process():
    # One BLAS thread per process: two workers with two threads each would fight over two
    # cores, and rows computed with other thread counts differ in the last bits. threadpoolctl
    # limits the libraries loaded so far: a worker from the fork server has loaded none yet.
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401
    threadpool_limits(1)
    _keep_freed_memory()


def _prepare_local_worker():
    # Ctrl-C is the driver's to report; a worker would print a stray traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _prepare_process()


def _fork_is_safe():
    """Whether fork copies no lock mid-use: TensorFlow's thread pools do not survive it (BLAS's idle
    threads do: OpenBLAS re-creates them in the child)."""
    return "tensorflow" not in sys.modules


class WorkFailed(Exception):
    """A chunk could not be done: `chunks` were in flight, `error` is why, `future` the first chunk's (None when
    submitting failed)."""

    def __init__(self, chunks, error, future=None):
        super().__init__(str(error))
        self.chunks, self.error, self.future = chunks, error, future


def _in_order(submit, chunks, window, timeout=None):
    """Yield (chunk, result) for each chunk, in order, through submit(chunk) -> future; at most window()
    chunks are in flight (asked again at each refill), so that neither side holds more than that.

    Raises WorkFailed with the chunks in flight when a future fails, or submitting one does (a broken pool),
    or a result takes more than `timeout` seconds (TimeoutError, the late future first in flight).
    """
    in_flight = deque()

    def refill():
        while len(in_flight) < window() and (chunk := next(chunks, None)) is not None:
            try:
                in_flight.append((chunk, submit(chunk)))
            except (KeyboardInterrupt, UserError):
                raise
            except BaseException as error:
                raise WorkFailed([*(chunk for chunk, _ in in_flight), chunk], error) from error
    refill()
    while in_flight:
        chunk, future = in_flight[0]
        try:
            result = future.result(timeout=timeout)
        except (KeyboardInterrupt, UserError):
            raise
        except BaseException as error:
            raise WorkFailed([chunk for chunk, _ in in_flight], error, future) from error
        in_flight.popleft()
        refill()
        yield chunk, result


def _named(tasks, name_of):
    names = [str(name_of(task)) for task in tasks]
    return ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def results(function, tasks, n_jobs=Features.n_jobs, scheduler=Features.scheduler, name_of=str, redo_elsewhere=None):
    """Yield function(task) for each of `tasks` (a list), in order: in this process (n_jobs=1), on `n_jobs`
    local processes (0: one per usable core; never more than tasks or cores), or on the Dask cluster at `scheduler`.

    `name_of(task)` names a task in messages (its file). On a cluster, a result for which
    `redo_elsewhere(task, result)` is true is a worker's failure, not the task's: the task is redone
    on the other workers. A worker that dies ends a local run with UserError naming the tasks in
    flight; so do an unreachable scheduler, a cluster without workers, a task that kept killing
    workers and a task no worker could do.
    """
    if scheduler:
        yield from _on_cluster(function, tasks, scheduler, name_of, redo_elsewhere)
        return
    n_jobs = min(n_jobs or usable_cores(), usable_cores(), max(1, -(-len(tasks) // LOCAL_CHUNK)))
    if n_jobs == 1:
        with threadpool_limits(1):  # as in the workers, and undone after
            yield from map(function, tasks)
        return
    context = multiprocessing.get_context("fork" if _fork_is_safe() else "forkserver")
    with ProcessPoolExecutor(n_jobs, mp_context=context, initializer=_prepare_local_worker) as pool:
        iter_tasks = iter(tasks)
        chunks = iter(lambda: list(islice(iter_tasks, LOCAL_CHUNK)), [])
        try:
            for _, done in _in_order(lambda chunk: pool.submit(_apply, function, chunk), chunks,
                                     lambda: CHUNKS_IN_FLIGHT_PER_WORKER * n_jobs):
                yield from done
        except WorkFailed as failure:
            pool.shutdown(cancel_futures=True)
            if isinstance(failure.error, BrokenProcessPool):
                in_flight = [task for chunk in failure.chunks for task in chunk]
                raise UserError(f"a worker process died (out of memory, or a crashing decoder) with "
                                f"{_named(in_flight, name_of)} in flight: run again, with features.n_jobs=1 "
                                "if memory is short") from None
            raise failure.error from None
        except BaseException:
            pool.shutdown(cancel_futures=True)  # Ctrl-C or an error: the files not started are not wanted
            raise


def _apply(function, chunk):
    return [function(task) for task in chunk]


_prepared = False


def _apply_on_worker(function, chunk):
    """(this worker's address, [function(task) for task in chunk]), the worker set up on its first chunk."""
    global _prepared
    from distributed import get_worker
    if not _prepared:
        _prepare_process()
        _prepared = True
    return get_worker().address, [function(task) for task in chunk]


def _forget_earlier_code():
    """Drop an earlier run's `stages.*` modules from a long-lived worker: Dask reloads only the top
    package of an uploaded zip, so the rest would be the old code."""
    for name in [name for name in sys.modules if name.startswith("stages.")]:
        del sys.modules[name]


def _package(folder):
    """The `stages` package and its subpackages as a zip in `folder`, for Client.upload_file."""
    archive = Path(folder) / "stages.zip"
    top = Path(__file__).resolve().parent.parent
    with zipfile.ZipFile(archive, "w") as zipped:
        for module in sorted(top.rglob("*.py")):
            zipped.write(module, f"stages/{module.relative_to(top).as_posix()}")
    return archive


@contextmanager
def _code_folder():
    """A temporary folder for the code zip; the folders of killed runs (their pid gone) are removed first."""
    pattern = re.compile(CODE_FOLDER.format(pid=r"(\d+)"))
    for folder in Path(tempfile.gettempdir()).glob(CODE_FOLDER.format(pid="*") + "*"):
        match = pattern.match(folder.name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            remove(folder)
    folder = tempfile.mkdtemp(prefix=CODE_FOLDER.format(pid=os.getpid()))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _quiet_distributed():
    """distributed's loggers print tracebacks of lost connections, and so does tornado's for the lock's lease
    refresh that runs in its loop; the run reports them in one line instead."""
    import distributed  # noqa: F401  (its loggers exist once it is imported)
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
               if name in ("distributed", "tornado") or name.startswith(("distributed.", "tornado."))]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


LOST = (CancelledError, asyncio.CancelledError, OSError, TimeoutError)
"""What distributed raises when the scheduler goes away (its CommClosedError is an OSError)."""


def _lost(scheduler, error):
    return UserError(f"lost the Dask scheduler at {scheduler} mid-run ({type(error).__name__}): "
                     "start it again and run again")


def _connect(scheduler):
    from distributed import Client
    try:
        client = Client(scheduler, timeout=CONNECT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        reason = " ".join(str(error).split()) or error.__class__.__name__
        raise UserError(f"cannot reach the Dask scheduler at {scheduler} ({reason[:200]}): start it "
                        "(`dask scheduler`), or fix features.scheduler in params.yaml (null: this machine)")
    try:
        client.wait_for_workers(1, timeout=WORKERS_SECONDS)
    except TimeoutError:
        client.close(timeout=CONNECT_SECONDS)
        raise UserError(f"the Dask scheduler at {scheduler} has no workers after {WORKERS_SECONDS} s: "
                        f"start some with `dask worker {scheduler} --nthreads 1`")
    return client


def _redo_on_other_workers(client, function, task, failed_on, redo_elsewhere, name_of):
    """function(task) from the first other worker that can do it; UserError naming the file and workers if none can."""
    for worker in sorted(set(client.nthreads()) - {failed_on}):
        future = client.submit(_apply_on_worker, function, [task], workers=[worker], allow_other_workers=False,
                               pure=False)
        _, [result] = future.result(timeout=CHUNK_SECONDS)
        if not redo_elsewhere(task, result):
            return result
    raise UserError(f"the Dask worker {failed_on} (and every other) cannot read {name_of(task)}, which this "
                    "machine can: mount the shared folder at the same path on every worker, or set "
                    "features.scheduler: null")


@contextmanager
def _code_on(client, scheduler):
    """This run's `stages` package on the cluster's workers (and any that join) while the context lasts, the
    cluster held by this run alone; the code is unregistered afterwards."""
    from distributed import Lock
    from distributed.diagnostics.plugin import SchedulerUploadFile, UploadFile
    lock = Lock(LOCK, scheduler_rpc=client.scheduler, loop=client.loop)
    if not lock.acquire(blocking=False):
        log(f"extract: another run is extracting on the Dask cluster at {scheduler}; waiting for it to finish "
            f"(at most {LOCK_SECONDS} s)")
        if not lock.acquire(timeout=LOCK_SECONDS):
            raise UserError(f"the Dask cluster at {scheduler} has been busy with another run for {LOCK_SECONDS} s "
                            "(one run at a time: a worker holds one version of the code): run again later, or "
                            "start a cluster of your own")
    name = f"{CODE_FOLDER.format(pid=os.getpid())}{os.urandom(6).hex()}"
    try:
        with _code_folder() as folder:
            package = str(_package(folder))
            client.register_plugin(SchedulerUploadFile(package), name=name)
            client.register_plugin(UploadFile(package), name=name)
        client.run(_forget_earlier_code)
        yield
    finally:
        try:  # bounded: a stopped worker never answers
            client.sync(client.scheduler.unregister_worker_plugin, name=name, callback_timeout=CONNECT_SECONDS)
            client.sync(client.scheduler.unregister_scheduler_plugin, name=name, callback_timeout=CONNECT_SECONDS)
        except (*LOST, ValueError):
            pass  # the scheduler is gone, or the plugin never got registered: nothing of this run is left on it
        try:
            lock.release()
        except (*LOST, RuntimeError):
            pass  # the scheduler is gone: so is the lease


def _late_worker(client, future):
    """The address of the worker running `future`, or "unknown" if the scheduler no longer says."""
    try:
        return next((worker for worker, keys in client.processing().items() if future.key in keys), "unknown")
    except LOST:
        return "unknown"


def _on_cluster(function, tasks, scheduler, name_of, redo_elsewhere):
    from distributed import KilledWorker
    with _quiet_distributed():
        client = _connect(scheduler)
        try:
            with _code_on(client, scheduler):
                iter_tasks = iter(tasks)
                chunks = iter(lambda: list(islice(iter_tasks, CLUSTER_CHUNK)), [])

                def submit(chunk):
                    return client.submit(_apply_on_worker, function, chunk, pure=False)

                def window():  # workers that join mid-run (cluster.scale) get work at the next refill
                    return CHUNKS_IN_FLIGHT_PER_WORKER * max(1, sum(client.nthreads().values()))
                for chunk, (worker, done) in _in_order(submit, chunks, window, CHUNK_SECONDS):
                    for task, result in zip(chunk, done):
                        if redo_elsewhere is not None and redo_elsewhere(task, result):
                            result = _redo_on_other_workers(client, function, task, worker, redo_elsewhere, name_of)
                        yield result
        except WorkFailed as failure:
            if isinstance(failure.error, KilledWorker):
                raise UserError(f"{_named(failure.chunks[0], name_of)} kept killing the Dask workers that ran them "
                                "(out of memory, or a crashing decoder): see the workers' logs") from None
            if isinstance(failure.error, TimeoutError) and failure.future is not None:
                worker = _late_worker(client, failure.future)
                raise UserError(f"the Dask worker {worker} has not finished {_named(failure.chunks[0], name_of)} in "
                                f"{CHUNK_SECONDS} s (stopped, or stuck reading): restart it and run again") from None
            if isinstance(failure.error, LOST):
                raise _lost(scheduler, failure.error) from None
            raise failure.error from None
        except LOST as error:  # from a call to the scheduler between chunks
            raise _lost(scheduler, error) from None
        finally:
            client.close(timeout=CONNECT_SECONDS)
