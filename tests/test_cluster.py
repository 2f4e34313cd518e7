"""extract (and predict) on a real Dask cluster on 127.0.0.1: the same rows as a local run, and failures in one line."""

import json
import signal
import socket
import subprocess
import sys
import time
import zipfile

import pytest
from conftest import PROJECT as PROJECT_DIR
from conftest import changed_stages, copy_of, dvc, params_set, run_in, tool_env

from stages.core.errors import UserError


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """`dask scheduler` and `dask worker` processes on 127.0.0.1, stopped by stop()."""

    def __init__(self, n_workers, nanny=False):
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.scheduler = self._start("scheduler", "--host", "127.0.0.1", "--port", self.address.rsplit(":", 1)[1])
        self.workers = []
        for _ in range(n_workers):
            self.add_worker(nanny=nanny)
        self.wait_for_workers(n_workers)

    def add_worker(self, nanny=False, prefix=()):
        """Start one more worker, `prefix` the command it runs under (a mount namespace, say)."""
        command = ["worker", self.address, "--nthreads", "1", "--host", "127.0.0.1", *([] if nanny else ["--no-nanny"])]
        self.workers.append(self._start(*command, prefix=prefix))
        return self.workers[-1]

    @staticmethod
    def _start(*command, prefix=()):
        return subprocess.Popen([*prefix, "dask", *command, "--no-dashboard"], env=tool_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_for_workers(self, n):
        from distributed import Client
        with Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(n, timeout=60)

    def worker_pids(self):
        """{worker address: pid of the worker process} (under a nanny, the nanny's child) of the workers that answer."""
        import os

        from distributed import Client
        with Client(self.address, timeout=30, set_as_default=False) as client:
            return client.run(os.getpid, on_error="ignore")

    def stop(self):
        """Stop the workers, then the scheduler: a worker still closing when its scheduler goes may wait out its
        reconnection for seconds."""
        for processes in (self.workers, [self.scheduler]):
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture(scope="module")
def cluster():
    cluster = Cluster(n_workers=2)
    yield cluster
    cluster.stop()


def features_on(repo, scheduler):
    """features.npy's bytes after `dvc repro extract` (forced) with features.scheduler = `scheduler`."""
    with params_set(repo, {"features.scheduler": scheduler}):
        dvc(repo, "repro", "--force", "--single-item", "extract")
    return (repo / "data/features/features.npy").read_bytes()


def test_the_cluster_gives_the_rows_of_a_local_run_on_the_demo_corpus(scratch_repo, cluster):
    local = (scratch_repo / "data/features/features.npy").read_bytes()
    assert features_on(scratch_repo, cluster.address) == local


def test_the_cluster_gives_the_rows_of_a_local_run_on_real_clips(gtzan_repo, cluster, tmp_path):
    copy = copy_of(gtzan_repo, tmp_path)
    local = (copy / "data/features/features.npy").read_bytes()
    assert features_on(copy, cluster.address) == local


def test_a_file_the_workers_cannot_see_is_that_files_reason(cluster, tmp_path):
    from stages.features.files import file_results
    features = {"kind": "mfcc", "sample_rate": 22050, "windows": "first",
                "mfcc": {"n_mfcc": 20, "n_fft": 2048, "hop_length": 512, "n_mels": 128, "n_values": 25000}}
    [(rows, _, reason)] = file_results([tmp_path / "only on the client.wav"], features, scheduler=cluster.address)
    assert rows is None and reason == "cannot read: No such file or directory"


def test_predict_runs_on_the_cluster(scratch_repo, cluster):
    with params_set(scratch_repo, {"features.scheduler": cluster.address}):
        result = run_in(scratch_repo, sys.executable, "-m", "stages.predict", "--json", "data/raw/genres/metal")
    assert len(result.stdout.splitlines()) == 10


def test_an_unreachable_scheduler_ends_the_stage_in_one_line_naming_the_address(scratch_repo, monkeypatch, capsys):
    import stages.extract
    import stages.features.workers
    from stages.core.errors import run
    monkeypatch.setattr(stages.features.workers, "CONNECT_SECONDS", 2)
    monkeypatch.chdir(scratch_repo)
    with params_set(scratch_repo, {"features.scheduler": "tcp://127.0.0.1:9"}), pytest.raises(SystemExit) as stopped:
        run(stages.extract.main)
    assert stopped.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:9 (") and error.count("\n") == 1
    assert changed_stages(scratch_repo) == set(), "the features were left as they were"


def test_a_cluster_without_workers_is_one_line(monkeypatch):
    import stages.features.workers
    lonely = Cluster.__new__(Cluster)
    lonely.address = f"tcp://127.0.0.1:{free_port()}"
    lonely.scheduler = Cluster._start("scheduler", "--host", "127.0.0.1", "--port", lonely.address.rsplit(":", 1)[1])
    lonely.workers = []
    monkeypatch.setattr(stages.features.workers, "WORKERS_SECONDS", 3)
    try:
        with pytest.raises(UserError, match=f"the Dask scheduler at {lonely.address} has no workers"):
            list(stages.features.workers.results(abs, [1], scheduler=lonely.address))
    finally:
        lonely.stop()


def test_a_worker_killed_mid_run_has_its_clips_redone_by_the_other(scratch_repo):
    import os

    from distributed import Client
    local = (scratch_repo / "data/features/features.npy").read_bytes()
    doomed = Cluster(n_workers=2)
    try:
        pids = doomed.worker_pids()
        with params_set(scratch_repo, {"features.scheduler": doomed.address}):
            stage = subprocess.Popen(["dvc", "repro", "--force", "--single-item", "extract"], cwd=scratch_repo, env=tool_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            with Client(doomed.address, timeout=30, set_as_default=False) as client:
                while not (busy := [worker for worker, keys in client.processing().items() if keys]):
                    assert stage.poll() is None, "the stage ended before any worker had work"
                    time.sleep(0.05)
            os.kill(pids[busy[0]], signal.SIGKILL)  # a worker with clips in flight, as the OOM killer would
            output = stage.communicate(timeout=600)[0]
            assert stage.returncode == 0, output
    finally:
        doomed.stop()
    assert (scratch_repo / "data/features/features.npy").read_bytes() == local


def test_a_long_lived_cluster_runs_the_code_of_each_run(cluster, monkeypatch):
    import stages.features.workers

    def code_version(task):  # local, so that Dask sends it by value
        import stages.core.paths
        return stages.core.paths.VERSION

    package = stages.features.workers._package
    for version in ("first", "second"):
        def edited(folder, version=version):
            """The package as a later edit of stages/core/paths.py would leave it."""
            archive = package(folder)
            source = stages.features.workers.Path(stages.core.paths.__file__).read_text() + f"\nVERSION = {version!r}\n"
            with zipfile.ZipFile(archive) as old, zipfile.ZipFile(f"{archive}.new", "w") as new:
                for name in old.namelist():
                    new.writestr(name, source if name == "stages/core/paths.py" else old.read(name))
            return stages.features.workers.Path(f"{archive}.new").replace(archive)
        monkeypatch.setattr(stages.features.workers, "_package", edited)
        assert list(stages.features.workers.results(code_version, [0, 1], scheduler=cluster.address)) == [version] * 2


FEATURES = {"kind": "mfcc", "sample_rate": 22050, "windows": "first",
            "mfcc": {"n_mfcc": 20, "n_fft": 2048, "hop_length": 512, "n_mels": 128, "n_values": 25000}}
DRIVER = ("import json, sys\n"
          "from stages.core.errors import run\n"
          "from stages.features.files import file_results\n"
          "def main():\n"
          "    done = list(file_results(sys.argv[3:], json.loads(sys.argv[2]), scheduler=sys.argv[1]))\n"
          "    print(json.dumps([reason for _, _, reason in done]))\n"
          "run(main)\n")


def drive(scheduler, paths, timeout=240, temporary=None):
    """Run extract's file_results on the cluster from a fresh driver process, with `temporary` as its temporary
    folder if given; a hang fails the test after `timeout`."""
    from conftest import PROJECT
    env = tool_env() | ({"TMPDIR": str(temporary)} if temporary else {})
    return subprocess.run([sys.executable, "-c", DRIVER, scheduler, json.dumps(FEATURES), *map(str, paths)],
                          cwd=PROJECT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def clips(sample_dir, tmp_path_factory):
    """Eight real clips in a folder of their own (the "shared mount" a worker may lack)."""
    folder = tmp_path_factory.mktemp("mount") / "music"
    folder.mkdir()
    for genre in ("jazz", "metal"):
        for k in range(4):
            (folder / f"{genre}.{k}.wav").write_bytes((sample_dir / genre / f"{genre}.{k:05d}.wav").read_bytes())
    return sorted(folder.iterdir())


def test_a_long_lived_cluster_serves_the_next_run_after_a_worker_joins_and_one_is_restarted(clips):
    cluster = Cluster(n_workers=1, nanny=True)
    try:
        first = drive(cluster.address, clips)
        assert first.returncode == 0 and json.loads(first.stdout) == [None] * 8, first.stderr
        cluster.add_worker(nanny=True)
        cluster.wait_for_workers(2)
        second = drive(cluster.address, clips)
        assert second.returncode == 0 and json.loads(second.stdout) == [None] * 8, second.stderr
        import os
        import time
        doomed = sorted(cluster.worker_pids().values())[0]
        os.kill(doomed, signal.SIGKILL)  # its nanny starts a new worker process
        deadline = time.monotonic() + 60
        while not (len(pids := set(cluster.worker_pids().values())) == 2 and doomed not in pids):
            assert time.monotonic() < deadline, "the nanny did not restart the worker"
            time.sleep(0.5)
        third = drive(cluster.address, clips)
        assert third.returncode == 0 and json.loads(third.stdout) == [None] * 8, third.stderr
    finally:
        cluster.stop()


def without_the_mount(folder):
    """The command prefix of a process that sees an empty `folder`: a worker without the shared mount."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            f"mount -t tmpfs none '{folder}' && exec \"$0\" \"$@\""]


@pytest.fixture
def mount_namespaces():
    import os
    if os.geteuid() != 0 or subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode:
        pytest.skip("a worker without the shared mount needs root and unshare (mount namespaces)")


def test_files_a_worker_cannot_read_are_redone_by_one_that_can_never_skipped(clips, mount_namespaces):
    cluster = Cluster(n_workers=1)
    try:
        cluster.add_worker(prefix=without_the_mount(clips[0].parent))
        cluster.wait_for_workers(2)
        result = drive(cluster.address, clips * 3)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == [None] * 24
    finally:
        cluster.stop()


def test_a_file_no_worker_can_read_stops_the_run_naming_the_file_and_the_worker(clips, mount_namespaces):
    cluster = Cluster.__new__(Cluster)
    cluster.address = f"tcp://127.0.0.1:{free_port()}"
    cluster.scheduler = Cluster._start("scheduler", "--host", "127.0.0.1", "--port", cluster.address.rsplit(":", 1)[1])
    cluster.workers = []
    try:
        cluster.add_worker(prefix=without_the_mount(clips[0].parent))
        cluster.wait_for_workers(1)
        result = drive(cluster.address, clips[:2])
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("error: the Dask worker tcp://127.0.0.1:")
        assert f"cannot read {clips[0]}, which this machine can: mount the shared folder" in result.stderr
    finally:
        cluster.stop()


def test_the_scheduler_lost_mid_run_is_one_line(clips):
    cluster = Cluster(n_workers=1)
    try:
        driver = subprocess.Popen([sys.executable, "-c", DRIVER, cluster.address, json.dumps(FEATURES),
                                   *map(str, clips * 20)], cwd=PROJECT_DIR, env=tool_env(), text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        from distributed import Client
        with Client(cluster.address, timeout=30, set_as_default=False) as client:
            while not any(client.processing().values()):  # the run has work on the cluster
                assert driver.poll() is None, "the run ended before the cluster had work"
                time.sleep(0.05)
        cluster.scheduler.kill()
        _, error = driver.communicate(timeout=240)
        assert driver.returncode == 1 and "Traceback" not in error, error
        assert error.splitlines()[-1].startswith(f"error: lost the Dask scheduler at {cluster.address} mid-run")
    finally:
        cluster.stop()


def test_the_code_folders_of_killed_runs_are_removed(cluster, clips, tmp_path):
    # a temporary folder of the run's own: a shared /tmp may hold other runs' live code folders
    left = tmp_path / "genre-pipeline-code-999999999-abc"
    left.mkdir()
    (left / "stages.zip").write_bytes(b"PK")
    assert drive(cluster.address, clips[:1], temporary=tmp_path).returncode == 0
    assert not left.exists()
    assert not list(tmp_path.glob("genre-pipeline-code-*"))


# ---------------------------------------------------------------- a cluster shared by people

VERSIONED = ("import json, sys, time\n"
             "from stages.core.errors import run\n"
             "from stages.features.workers import results\n"
             "def version(task):  # defined here, so that Dask sends it by value: it reports the worker's code\n"
             "    import stages.core.paths\n"
             "    time.sleep(0.05)\n"
             "    return getattr(stages.core.paths, 'VERSION', 'unversioned')\n"
             "def main():\n"
             "    print(json.dumps(list(results(version, list(range(int(sys.argv[2]))), scheduler=sys.argv[1]))))\n"
             "run(main)\n")


def code_of(version, folder):
    """A copy of the project's `stages` package in `folder` whose core/paths.py says VERSION = `version`."""
    import shutil

    from conftest import PROJECT
    shutil.copytree(PROJECT / "stages", folder / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    paths = folder / "stages/core/paths.py"
    paths.write_text(paths.read_text() + f"\nVERSION = {version!r}\n")
    return folder


def test_two_runs_with_different_code_on_one_cluster_each_get_their_own_codes_rows(cluster, tmp_path):
    alice, bob = (code_of(name, tmp_path / name) for name in ("alice", "bob"))
    first = subprocess.Popen([sys.executable, "-c", VERSIONED, cluster.address, "200"], cwd=alice, env=tool_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    from distributed import Client
    with Client(cluster.address, timeout=30, set_as_default=False) as client:
        while not any(client.processing().values()):  # alice's run holds the cluster
            assert first.poll() is None, first.stderr.read()
            time.sleep(0.05)
    second = subprocess.run([sys.executable, "-c", VERSIONED, cluster.address, "40"], cwd=bob, env=tool_env(),
                            capture_output=True, text=True, timeout=300)
    out, error = first.communicate(timeout=300)
    assert json.loads(out) == ["alice"] * 200, error
    assert json.loads(second.stdout.splitlines()[-1]) == ["bob"] * 40, second.stderr
    assert "another run is extracting on the Dask cluster" in second.stderr


def test_nothing_a_run_registers_outlives_it(cluster, clips):
    from distributed import Client
    for _ in range(2):
        assert drive(cluster.address, clips[:1]).returncode == 0
    with Client(cluster.address, timeout=30, set_as_default=False) as client:
        scheduler = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.plugins))
        workers = client.run(lambda dask_worker: list(dask_worker.plugins))
    assert not [name for name in scheduler if "genre-pipeline" in name or "stages.zip" in name], scheduler
    assert not [name for names in workers.values() for name in names if "genre-pipeline" in name], workers


STOPS = ("import os, signal, sys\n"
         "import stages.features.workers as workers\n"
         "from stages.core.errors import run\n"
         "workers.CHUNK_SECONDS, workers.CONNECT_SECONDS = 5, 2\n"
         "def stop(task):  # the worker stops itself, as SIGSTOP or a stuck NFS read would leave it: alive, silent\n"
         "    os.kill(os.getpid(), signal.SIGSTOP)\n"
         "run(lambda: list(workers.results(stop, ['a.wav', 'b.wav'], scheduler=sys.argv[1])))\n")


def test_a_stopped_worker_ends_the_run_in_one_line_naming_it_and_the_files():
    cluster = Cluster(n_workers=1)
    try:
        result = subprocess.run([sys.executable, "-c", STOPS, cluster.address], cwd=PROJECT_DIR, env=tool_env(),
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("error: the Dask worker tcp://127.0.0.1:")
        assert "has not finished a.wav, b.wav in 5 s (stopped, or stuck reading)" in result.stderr
    finally:
        for worker in cluster.workers:
            worker.kill()  # a stopped process ignores SIGTERM until continued
        cluster.stop()
