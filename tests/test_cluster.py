"""extract (and predict) on a real Dask cluster on 127.0.0.1: the same rows as a local run, and failures in one line."""

import json
import signal
import socket
import subprocess
import sys
import zipfile

import pytest

from conftest import dvc, params_set, run_in, tool_env
from stages.common import UserError


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """`dask scheduler` and `dask worker` processes on 127.0.0.1, stopped by stop()."""

    def __init__(self, n_workers):
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.scheduler = self._start("scheduler", "--host", "127.0.0.1", "--port", self.address.rsplit(":", 1)[1])
        self.workers = [self._start("worker", self.address, "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1")
                        for _ in range(n_workers)]
        self.wait_for_workers(n_workers)

    @staticmethod
    def _start(*command):
        return subprocess.Popen(["dask", *command, "--no-dashboard"], env=tool_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_for_workers(self, n):
        from distributed import Client
        with Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(n, timeout=60)

    def stop(self):
        for process in [*self.workers, self.scheduler]:
            process.terminate()
        for process in [*self.workers, self.scheduler]:
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


def test_the_cluster_gives_the_rows_of_a_local_run_on_the_demo_corpus(repo, cluster):
    local = (repo / "data/features/features.npy").read_bytes()
    assert features_on(repo, cluster.address) == local


def test_the_cluster_gives_the_rows_of_a_local_run_on_real_clips(gtzan_repo, cluster):
    local = (gtzan_repo / "data/features/features.npy").read_bytes()
    assert features_on(gtzan_repo, cluster.address) == local


def test_a_file_the_workers_cannot_see_is_that_files_reason(cluster, tmp_path):
    from stages.extract import file_results
    features = {"kind": "mfcc", "sample_rate": 22050, "windows": "first",
                "mfcc": {"n_mfcc": 20, "n_fft": 2048, "hop_length": 512, "n_mels": 128, "n_values": 25000}}
    [(rows, _, reason)] = file_results([tmp_path / "only on the client.wav"], features, scheduler=cluster.address)
    assert rows is None and reason == "cannot read: No such file or directory"


def test_predict_runs_on_the_cluster(repo, cluster):
    with params_set(repo, {"features.scheduler": cluster.address}):
        result = run_in(repo, sys.executable, "-m", "stages.predict", "--json", "data/raw/genres/metal")
    assert len(result.stdout.splitlines()) == 10


def test_an_unreachable_scheduler_ends_the_stage_in_one_line_naming_the_address(repo, monkeypatch, capsys):
    import stages.extract
    import stages.workers
    from stages.common import run
    monkeypatch.setattr(stages.workers, "CONNECT_SECONDS", 2)
    monkeypatch.chdir(repo)
    with params_set(repo, {"features.scheduler": "tcp://127.0.0.1:9"}), pytest.raises(SystemExit) as stopped:
        run(stages.extract.main)
    assert stopped.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:9 (") and error.count("\n") == 1
    assert json.loads(dvc(repo, "status", "--json").stdout) == {}, "the features were left as they were"


def test_a_cluster_without_workers_is_one_line(monkeypatch):
    import stages.workers
    lonely = Cluster.__new__(Cluster)
    lonely.address = f"tcp://127.0.0.1:{free_port()}"
    lonely.scheduler = Cluster._start("scheduler", "--host", "127.0.0.1", "--port", lonely.address.rsplit(":", 1)[1])
    lonely.workers = []
    monkeypatch.setattr(stages.workers, "WORKERS_SECONDS", 3)
    try:
        with pytest.raises(UserError, match=f"the Dask scheduler at {lonely.address} has no workers"):
            list(stages.workers.results(abs, [1], scheduler=lonely.address))
    finally:
        lonely.stop()


def test_a_worker_killed_mid_run_has_its_clips_redone_by_the_other(repo):
    local = (repo / "data/features/features.npy").read_bytes()
    doomed = Cluster(n_workers=2)
    try:
        with params_set(repo, {"features.scheduler": doomed.address}):
            stage = subprocess.Popen(["dvc", "repro", "--force", "--single-item", "extract"], cwd=repo, env=tool_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for line in stage.stdout:
                if "extract: " in line and "clips (" in line:  # the first progress line: clips are in flight
                    doomed.workers[0].send_signal(signal.SIGKILL)
                    break
            output = line + stage.stdout.read()
            assert stage.wait(timeout=600) == 0, output
        assert doomed.workers[0].poll() is not None, "the worker was killed before the stage ended"
    finally:
        doomed.stop()
    assert (repo / "data/features/features.npy").read_bytes() == local


def test_a_long_lived_cluster_runs_the_code_of_each_run(cluster, monkeypatch):
    import stages.workers

    def code_version(task):  # local, so that Dask sends it by value
        import stages.paths
        return stages.paths.VERSION

    package = stages.workers._package
    for version in ("first", "second"):
        def edited(folder, version=version):
            """The package as a later edit of stages/paths.py would leave it."""
            archive = package(folder)
            source = stages.workers.Path(stages.paths.__file__).read_text() + f"\nVERSION = {version!r}\n"
            with zipfile.ZipFile(archive) as old, zipfile.ZipFile(f"{archive}.new", "w") as new:
                for name in old.namelist():
                    new.writestr(name, source if name == "stages/paths.py" else old.read(name))
            return stages.workers.Path(f"{archive}.new").replace(archive)
        monkeypatch.setattr(stages.workers, "_package", edited)
        assert list(stages.workers.results(code_version, [0, 1], scheduler=cluster.address)) == [version] * 2
