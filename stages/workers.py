"""Per-file work (decoding and features) on local worker processes or a Dask cluster, results in order.

Locally: `n_jobs` forked processes. With a scheduler address (`features.scheduler`), the
cluster's workers: the project's code is sent to them (Client.upload_file), each worker is
set up once (_worker_setup), files are read by the workers from the paths the client sees (a
shared file system), and a worker that dies has its files redone by the others (Dask's own
rescheduling). Either way the driver holds only a bounded window of results: its memory does
not grow with the corpus.
"""

import ctypes
import multiprocessing
import os
import signal
import sys
import tempfile
import zipfile
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import islice
from pathlib import Path

from threadpoolctl import threadpool_limits

from stages.common import UserError

CONNECT_SECONDS = 10
WORKERS_SECONDS = 20
LOCAL_CHUNK = 4                 # files per task sent to a local worker process
CLUSTER_CHUNK = 16              # files per Dask task: a network round trip costs more than a pipe's
CHUNKS_IN_FLIGHT_PER_WORKER = 4


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
    # cores, and rows computed with other thread counts differ in the last bits.
    threadpool_limits(1)
    _keep_freed_memory()


def _prepare_local_worker():
    # Ctrl-C is the driver's to report; a worker would print a stray traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _prepare_process()


def _worker_setup(project):
    """A Dask worker plugin that sets a worker up once: the thread limits of a local worker, and the
    project's folder as working folder (where the relative paths of data/ and the pretrained weights point)."""
    from distributed import WorkerPlugin  # here, so that a local run never imports distributed

    class WorkerSetup(WorkerPlugin):
        def setup(self, worker):
            # A long-lived worker may hold an earlier run's modules: Dask reloads only the top package
            # of an uploaded zip, so the rest is dropped here and imported afresh from this run's code.
            for name in [name for name in sys.modules if name.startswith("stages.")]:
                del sys.modules[name]
            _prepare_process()
            os.chdir(project)

    return WorkerSetup()


def results(function, tasks, n_jobs=0, scheduler=None):
    """Yield function(task) for each task, in order: in-process (n_jobs=1), on `n_jobs` local
    processes (0: one per core), or on the Dask cluster at `scheduler`.

    A local worker that dies ends the run with UserError; so do an unreachable scheduler,
    a cluster without workers and a task that kept killing workers.
    """
    if scheduler:
        yield from _on_cluster(function, tasks, scheduler)
        return
    n_jobs = n_jobs or os.cpu_count()
    if n_jobs == 1:
        with threadpool_limits(1):  # as in the workers, and undone after
            _keep_freed_memory()
            yield from map(function, tasks)
        return
    with ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("fork"),
                             initializer=_prepare_local_worker) as pool:
        try:
            yield from _in_order(pool.submit, function, tasks, LOCAL_CHUNK, CHUNKS_IN_FLIGHT_PER_WORKER * n_jobs)
        except BrokenProcessPool:
            raise UserError("a worker process died (out of memory, or a crashing decoder): "
                            "run again, with features.n_jobs=1 if memory is short")
        except BaseException:
            pool.shutdown(cancel_futures=True)  # Ctrl-C or an error: the files not started are not wanted
            raise


def _apply(function, chunk):
    return [function(task) for task in chunk]


def _in_order(submit, function, tasks, chunk_size, window):
    """Yield function(task) for each task, in order, through submit(_apply, function, chunk) -> future;
    at most `window` chunks are in flight, so that neither side holds more than that."""
    tasks = iter(tasks)
    chunks = iter(lambda: list(islice(tasks, chunk_size)), [])
    in_flight = deque(submit(_apply, function, chunk) for chunk in islice(chunks, window))
    while in_flight:
        done = in_flight.popleft().result()
        in_flight.extend(submit(_apply, function, chunk) for chunk in islice(chunks, 1))
        yield from done


def _package(folder):
    """The `stages` package as a zip in `folder`, for Client.upload_file."""
    archive = Path(folder) / "stages.zip"
    package = Path(__file__).resolve().parent
    with zipfile.ZipFile(archive, "w") as zipped:
        for module in sorted(package.glob("*.py")):
            zipped.write(module, f"stages/{module.name}")
    return archive


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
        client.close()
        raise UserError(f"the Dask scheduler at {scheduler} has no workers after {WORKERS_SECONDS} s: "
                        f"start some with `dask worker {scheduler} --nthreads 1`")
    return client


def _on_cluster(function, tasks, scheduler):
    from distributed import KilledWorker
    client = _connect(scheduler)
    with client, tempfile.TemporaryDirectory() as folder:
        client.upload_file(str(_package(folder)))
        client.register_plugin(_worker_setup(os.getcwd()), name="genre-pipeline-setup")
        n_workers = max(1, len(client.scheduler_info()["workers"]))

        def submit(*args):
            return client.submit(*args, pure=False)
        try:
            yield from _in_order(submit, function, tasks, CLUSTER_CHUNK, CHUNKS_IN_FLIGHT_PER_WORKER * n_workers)
        except KilledWorker:
            raise UserError("a file kept killing the Dask workers that ran it (out of memory, or a "
                            "crashing decoder): see the workers' logs")
