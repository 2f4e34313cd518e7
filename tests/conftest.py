"""Shared fixtures: real GTZAN sample clips, a loopback HTTP server, GTZAN-shaped archives, project copies."""

import hashlib
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest
import soundfile as sf

from stages.core.params import render
from stages.sources.demo import write_demo_corpus

PROJECT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = Path(os.environ.get("GTZAN_SAMPLE_DIR", PROJECT.parent / "shared" / "gtzan-sample"))
PARAMS_YAML = render()
"""params.yaml as shipped: every declared default, as committed (test_core checks), whatever experiment the
workspace's params.yaml holds (`dvc exp run -S ...` writes its values there)."""


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: a test process per core, and one more: much of the suite's time is spent waiting for the servers
    and `dvc` commands its tests start, which an extra process fills (measured: docs/figures.md)."""
    return len(os.sched_getaffinity(0)) + 1


@pytest.fixture(scope="session")
def sample_dir():
    """The 50 real GTZAN clips (`<genre>/<genre>.0000N.wav`); skips where this clone has none."""
    if not (SAMPLE_DIR / "MD5SUMS.tsv").is_file():
        pytest.skip(f"no real GTZAN sample at {SAMPLE_DIR} (set GTZAN_SAMPLE_DIR to a folder of "
                    "<genre>/<genre>.NNNNN.wav clips with MD5SUMS.tsv)")
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def small_collection(sample_dir, tmp_path_factory):
    """Two labels of four real clips each (calm: classical, loud: metal), outside any repository; read only."""
    root = tmp_path_factory.mktemp("small") / "music"
    for label, genre in [("calm", "classical"), ("loud", "metal")]:
        (root / label).mkdir(parents=True)
        for k in range(4):
            (root / label / f"{genre} {k}.wav").write_bytes((sample_dir / genre / f"{genre}.{k:05d}.wav").read_bytes())
    return root


def make_tar_gz(members, path, extra=()):
    """Write {archive name: bytes}, then the TarInfo entries `extra` (links, say), as a .tar.gz at `path`."""
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)
    return path


def make_zip(members, path):
    with zipfile.ZipFile(path, "w") as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
    return path


def with_appledouble_files(members):
    """`members` with a macOS `._<clip>` AppleDouble file (211 bytes) beside every clip, as Hugging Face's copy has."""
    doubled = {}
    for name, data in members.items():
        folder, clip = name.rsplit("/", 1)
        doubled[f"{folder}/._{clip}"] = b"\x00\x05\x16\x07" + bytes(207)
        doubled[name] = data
    return doubled


def clip_members(root, prefix="genres", suffix=".wav"):
    """{f'{prefix}/<genre>/<clip>': bytes} for the clips under `root/<genre>/`, converted to `suffix` if needed."""
    members = {}
    for clip in sorted(Path(root).glob("*/*.wav")):
        if suffix == ".wav":
            data = clip.read_bytes()
        else:
            audio, sr = sf.read(clip, dtype="int16")
            buffer = io.BytesIO()
            sf.write(buffer, audio, sr, format="AU", subtype="PCM_16")
            data = buffer.getvalue()
        members[f"{prefix}/{clip.parent.name}/{clip.stem}{suffix}"] = data
    return members


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """Two 1 s synthetic clips per genre in GTZAN's layout: `<root>/<genre>/<genre>.0000N.wav`."""
    root = tmp_path_factory.mktemp("tiny")
    write_demo_corpus(root, clips_per_genre=2, seed=0, duration=1.0)
    return root


class ArchiveServer(http.server.ThreadingHTTPServer):
    """Serves `files` ({url path: bytes}) on 127.0.0.1 with HTTP Range support.

    A path in `drop_once` has its first response cut after half its bytes; one in `cut_unsized`
    is always sent without Content-Length and cut after half its bytes; one in `trickle` is sent a
    byte every 0.2 s, as a stalled server would. `requests` records (path, Range header) of every request.
    """

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files, self.drop_once, self.cut_unsized, self.trickle, self.requests = {}, set(), set(), set(), []

    def url(self, path):
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        if self.path in server.cut_unsized:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(data[:len(data) // 2])
            self.close_connection = True
            return
        if self.path in server.trickle:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                for byte in data:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass  # the client gave up, as it should
            return
        start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if self.path in server.drop_once:
            server.drop_once.discard(self.path)
            self.wfile.write(data[start:start + (len(data) - start) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)  # the connection drops mid-body
            return
        self.wfile.write(data[start:])

    def log_message(self, *args):
        pass


@contextmanager
def serving(files=None):
    """An ArchiveServer serving `files` ({url path: bytes}) on 127.0.0.1 from a thread, stopped on exit."""
    server = ArchiveServer()
    server.files.update(files or {})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def server():
    with serving() as server:
        yield server


USERS_WORK = ("dvc.lock", "dvc_plots/", "metrics/", "music/")
"""What a user's work puts in the checkout: a run's products, which git tracks once a run is committed (as the README
does with its baseline), and their own music. The project's copies start without them, as a fresh clone does."""
SHIPPED_PLACEHOLDERS = ("metrics/.gitkeep", "music/README.md")


def project_files():
    """The project's files as git sees them (tracked and new, not ignored), without a user's work."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=PROJECT,
                            capture_output=True, text=True, check=True).stdout.split()
    return [name for name in listed if (PROJECT / name).is_file()
            and (name in SHIPPED_PLACEHOLDERS or not name.startswith(USERS_WORK))]


def tool_env():
    """The environment for subprocesses: this interpreter's `python` and `dvc` first on PATH."""
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                DVC_NO_ANALYTICS="1", PYTHONDONTWRITEBYTECODE="1")


def run_in(folder, *command, check=True):
    """Run a command in `folder` with this interpreter's environment; returns the CompletedProcess."""
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=tool_env())
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def set_dotted(params, dotted, value):
    """Set params['a']['b'] for dotted 'a.b'; value KeyError deletes the key instead."""
    *groups, key = dotted.split(".")
    for group in groups:
        params = params[group]
    if value is KeyError:
        del params[key]
    else:
        params[key] = value


def write_params(folder, overrides):
    """Set {dotted param: value} in `folder`/params.yaml."""
    import yaml
    params = yaml.safe_load((folder / "params.yaml").read_text())
    for dotted, value in overrides.items():
        set_dotted(params, dotted, value)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))


class Clone(type(Path())):
    """A clone's folder; a fixture may keep what it saw on it (`clone.output`, say)."""


def clone_project(clone, overrides=None):
    """Make `clone` a fresh git repository of the project, params.yaml as shipped with {dotted param: value} set
    (byte for byte the shipped file when there are none: DVC must read it as written)."""
    clone = Clone(clone)
    for relative in project_files():
        (clone / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT / relative, clone / relative)
    (clone / "params.yaml").write_text(PARAMS_YAML)
    if overrides:
        write_params(clone, overrides)
    run_in(clone, "git", "init", "-q", "-b", "main")
    run_in(clone, "git", "config", "user.name", "test")
    run_in(clone, "git", "config", "user.email", "test@example.com")
    run_in(clone, "git", "add", "-A")
    run_in(clone, "git", "commit", "-q", "-m", "clone of the project")
    return clone


def dvc(repo, *args, check=True):
    return run_in(repo, "dvc", *args, check=check)


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


@contextmanager
def params_set(repo, overrides):
    """params.yaml with {dotted: value} set, restored afterwards."""
    write_params(repo, overrides)
    try:
        yield
    finally:
        run_in(repo, "git", "checkout", "params.yaml")


def changed_stages(repo):
    """The stages `dvc status` lists as changed, but check_params, which is changed always, by design."""
    return set(json.loads(dvc(repo, "status", "--json").stdout)) - {"check_params"}


def stages_run(output):
    """The stages a `dvc repro` or `dvc exp run` printed as running, but check_params, which runs always."""
    return set(re.findall(r"Running stage '(\w+)'", output)) - {"check_params"}


# ---------------------------------------------------------------- shared repositories, one full run each

@pytest.fixture(scope="session")
def run_folder(tmp_path_factory, worker_id):
    """A folder of this pytest run that every test process shares (each -n worker has a basetemp of its own)."""
    basetemp = tmp_path_factory.getbasetemp()
    return basetemp if worker_id == "master" else basetemp.parent


def built_once(run_folder, name, build):
    """`run_folder`/name, made by `build(folder)` in the first test process that asks for it; the others wait for it."""
    from filelock import FileLock
    built = run_folder / name
    with FileLock(f"{built}.lock"):
        if not (built / "built").is_file():
            shutil.rmtree(built, ignore_errors=True)
            built.mkdir()
            build(built)
            (built / "built").touch()
    return built


def run_commands(repo, commands, results):
    """Run each of `commands` with bash in `repo`, in order; each must succeed. Adds {command: {"stdout", "stderr",
    "params_diff"}} to `results`: params_diff is `git diff -U0 params.yaml` right after the command."""
    for command in commands:
        result = run_in(repo, "bash", "-c", command, check=False)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        results[command] = {"stdout": result.stdout, "stderr": result.stderr,
                            "params_diff": run_in(repo, "git", "diff", "-U0", "params.yaml").stdout}
    return results


README = (PROJECT / "README.md").read_text()


def readme_section(title):
    """The text of the README's `## title` section."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def readme_commands(title):
    """The lines of the ```bash blocks of a README section, as written."""
    return [line for block in re.findall(r"```bash\n(.*?)```", readme_section(title), re.S)
            for line in block.strip().splitlines()]


def demo_and_baseline():
    """The README's first commands on a fresh clone: the offline demo, then the baseline's commit."""
    return [*readme_commands("Quick start")[2:], readme_commands("The four commands")[0]]


@pytest.fixture(scope="session")
def demo_built(run_folder):
    """The folder holding `repo`, the project on the demo corpus after the README's first commands (a fresh clone,
    the offline demo, the baseline committed), and `results.json`, what they printed (see run_commands)."""
    def build(folder):
        results = run_commands(clone_project(folder / "repo"), demo_and_baseline(), {})
        (folder / "results.json").write_text(json.dumps(results))
    return built_once(run_folder, "demo-pipeline", build)


@pytest.fixture(scope="session")
def repo(demo_built, tmp_path_factory):
    """The project on the demo corpus after the README's offline demo (`dvc exp run -S data.source=demo`), its
    results committed; repo.output is what the demo printed. Each test process reads its own copy."""
    repo = copy_of(demo_built / "repo", tmp_path_factory.mktemp("pipeline"))
    demo = json.loads((demo_built / "results.json").read_text())[demo_and_baseline()[0]]
    repo.output = demo["stdout"] + demo["stderr"]
    return repo


@pytest.fixture(scope="session")
def readme_built(run_folder, demo_built):
    """The folder holding `repo`, the demo repository after the rest of the README's commands in order (the four
    commands, comparing experiments), and `results.json`, what every README command printed (see run_commands)."""
    def build(folder):
        repo = copy_of(demo_built / "repo", folder)
        results = json.loads((demo_built / "results.json").read_text())
        run_commands(repo, [*readme_commands("The four commands")[1:], *readme_commands("Comparing experiments")],
                     results)
        (folder / "results.json").write_text(json.dumps(results))
    return built_once(run_folder, "readme", build)


def copy_of(repo, folder):
    """A copy of the repository `repo` at `folder`/repo (its DVC cache too, hard links kept), for a test that changes
    it: the session's repositories are read by many tests and never changed."""
    copy = Clone(folder / "repo")
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(repo), str(copy)], check=True)
    return copy


@pytest.fixture
def scratch_repo(repo, tmp_path):
    """A copy of the demo repository after `dvc repro`, this test's own."""
    return copy_of(repo, tmp_path)


@pytest.fixture(scope="session")
def gtzan_built(sample_dir, run_folder):
    """The folder holding `repo`, the project on the real sample clips after `dvc repro encode`, from an archive
    built like Hugging Face's (a `._` file beside every clip) served on 127.0.0.1 under its own sha256, and
    `built.json`: what the run printed and the paths the server was asked for. The server is stopped once it is
    built: a stage that fetched again would fail. Not split: the seed's random split of 50 clips leaves country
    without a training track."""
    def build(folder):
        archive = make_tar_gz(with_appledouble_files(clip_members(sample_dir)), folder / "genres.tar.gz")
        sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
        with serving({"/genres.tar.gz": archive.read_bytes()}) as server:
            repo = clone_project(folder / "repo", {"data.gtzan.url": f"{server.url('/genres.tar.gz')}#sha256={sha256}",
                                                   "data.gtzan.mirrors": []})
            output = dvc(repo, "repro", "encode").stderr
        run_in(repo, "git", "add", "-A")
        run_in(repo, "git", "commit", "-q", "-m", "gtzan sample")
        (folder / "built.json").write_text(json.dumps({"output": output,
                                                       "requested": [path for path, _ in server.requests]}))
    return built_once(run_folder, "gtzan-sample", build)


@pytest.fixture(scope="session")
def gtzan_repo(gtzan_built, tmp_path_factory):
    """This test process's copy of gtzan_built's repository; repo.output is what `dvc repro encode` printed,
    repo.requested the paths its server was asked for."""
    repo = copy_of(gtzan_built / "repo", tmp_path_factory.mktemp("gtzan"))
    built = json.loads((gtzan_built / "built.json").read_text())
    repo.output, repo.requested = built["output"], built["requested"]
    return repo
