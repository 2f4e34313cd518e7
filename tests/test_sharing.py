"""Working as a team: DVC remotes (a folder, and SSH to a real sshd on 127.0.0.1), shared
experiments through a bare git origin, and plots pages that draw with no network."""

import getpass
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import changed_stages, copy_of, dvc, md5, run_in, stages_run, tool_env


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """Debian's sshd on a free port of 127.0.0.1, with a throw-away host key and user key; stopped at the end."""
    binary = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(binary).is_file():
        pytest.skip("no sshd on this machine: install Debian's openssh-server (.ci/run does)")
    folder = tmp_path_factory.mktemp("sshd")
    for key in ("host_key", "user_key", "stranger_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", folder / key], check=True)
    shutil.copy(folder / "user_key.pub", folder / "authorized_keys")
    port = free_port()
    (folder / "sshd_config").write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {folder}/host_key
PidFile {folder}/sshd.pid
AuthorizedKeysFile {folder}/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
""")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
    server = subprocess.Popen([binary, "-D", "-e", "-f", folder / "sshd_config"], stdout=subprocess.DEVNULL,
                              stderr=(folder / "sshd.log").open("w"))
    deadline = time.time() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                pytest.fail(f"sshd did not start: {(folder / 'sshd.log').read_text()}")
            time.sleep(0.2)
    yield SimpleNamespace(url=f"ssh://{getpass.getuser()}@127.0.0.1:{port}", key=folder / "user_key",
                          stranger=folder / "stranger_key", port=port)
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(scope="module")
def team(repo, sshd, tmp_path_factory):
    """Clone A (the demo repository after `dvc repro`) with a bare git origin and two DVC remotes,
    a folder and SSH, both holding A's data (`dvc push`); and an experiment of A's, `shared`."""
    folder = tmp_path_factory.mktemp("team")
    repo = copy_of(repo, folder)
    run_in(folder, "git", "init", "-q", "--bare", "-b", "main", "origin.git")
    run_in(repo, "git", "remote", "add", "origin", str(folder / "origin.git"))
    dvc(repo, "remote", "add", "-d", "folder", str(folder / "folder-remote"))
    dvc(repo, "remote", "add", "ssh", f"{sshd.url}{folder}/ssh-remote")
    run_in(repo, "git", "commit", "-q", "-am", "DVC remotes: a folder, and SSH")
    run_in(repo, "git", "push", "-q", "origin", "main")
    dvc(repo, "remote", "modify", "--local", "ssh", "keyfile", str(sshd.key))
    for remote in ("folder", "ssh"):
        dvc(repo, "push", "--all-commits", "-r", remote)
    dvc(repo, "exp", "run", "-S", "epochs=3", "-n", "shared")
    return SimpleNamespace(a=repo, folder=folder, sshd=sshd, model_md5=md5(repo / "data/model/model.keras"))


def teammate(team, remote, name):
    """Clone B: a fresh `git clone` of the origin, set up for `remote` as a teammate would be."""
    clone = team.folder / name
    run_in(team.folder, "git", "clone", "-q", str(team.folder / "origin.git"), name)
    if remote == "ssh":
        dvc(clone, "remote", "modify", "--local", "ssh", "keyfile", str(team.sshd.key))
    return clone


@pytest.mark.parametrize("remote", ["folder", "ssh"])
def test_a_teammate_pulls_the_data_and_recomputes_nothing(team, remote):
    clone = teammate(team, remote, f"b-{remote}")
    dvc(clone, "pull", "-r", remote)
    for output in ["data/raw/tracks.csv", "data/features/features.npy", "data/model/model.keras"]:
        assert (clone / output).is_file(), output
    result = dvc(clone, "repro")
    assert stages_run(result.stdout + result.stderr) == set()
    assert changed_stages(clone) == set()


@pytest.mark.parametrize("remote", ["folder", "ssh"])
def test_an_experiment_pushed_by_one_is_pulled_shown_and_applied_by_the_other(team, remote):
    dvc(team.a, "exp", "push", "-r", remote, "origin", "shared")
    clone = teammate(team, remote, f"exp-{remote}")
    dvc(clone, "exp", "pull", "-r", remote, "origin", "shared")
    shown = json.loads(dvc(clone, "exp", "show", "--json", "-A").stdout)
    runs = [exp["revs"][0] for row in shown for exp in (row.get("experiments") or []) if exp.get("name") == "shared"]
    assert runs, shown
    assert runs[0]["data"]["params"]["params.yaml"]["data"]["epochs"] == 3
    assert "accuracy" in runs[0]["data"]["metrics"]["metrics/eval.json"]["data"]
    dvc(clone, "exp", "apply", "shared")
    dvc(clone, "pull", "-r", remote, "data/model/model.keras")
    assert md5(clone / "data/model/model.keras") == team.model_md5


def test_an_unreachable_remote_fails_with_dvcs_message_and_loses_nothing(team):
    before = {path: md5(path) for path in (team.a / "data").rglob("*") if path.is_file()}
    dvc(team.a, "remote", "add", "dead", f"ssh://{getpass.getuser()}@127.0.0.1:{free_port()}/nowhere")
    result = dvc(team.a, "push", "-r", "dead", check=False)
    assert result.returncode != 0 and "ERROR" in result.stderr and "Traceback" not in result.stderr
    assert {path: md5(path) for path in (team.a / "data").rglob("*") if path.is_file()} == before


def test_a_refused_key_fails_with_dvcs_message_and_loses_nothing(team, tmp_path):
    clone = teammate(team, "ssh", "refused")
    dvc(clone, "remote", "modify", "--local", "ssh", "keyfile", str(team.sshd.stranger))
    result = dvc(clone, "pull", "-r", "ssh", check=False)
    assert result.returncode != 0 and "ERROR" in result.stderr and "Traceback" not in result.stderr
    assert not (clone / "data/raw").exists() and not list(clone.glob("data/.*tmp*"))


def test_a_teammates_gtzan_archive_comes_from_the_remote_not_the_internet(gtzan_repo, tmp_path):
    # its archive's server is stopped: had the teammate's download fetched, it would have failed
    gtzan_repo = copy_of(gtzan_repo, tmp_path)
    dvc(gtzan_repo, "remote", "add", "-d", "team", str(tmp_path / "remote"))
    run_in(gtzan_repo, "git", "commit", "-q", "-am", "a DVC remote")
    dvc(gtzan_repo, "push", "download")
    run_in(tmp_path, "git", "clone", "-q", str(gtzan_repo), "b")
    dvc(tmp_path / "b", "pull", "download")
    assert (tmp_path / "b/data/raw/genres/jazz/jazz.00003.wav").is_file()
    result = dvc(tmp_path / "b", "repro", "download")
    assert stages_run(result.stdout + result.stderr) == set()


# ---------------------------------------------------------------- plots with no network

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--proxy-server=127.0.0.1:9",  # every http(s) request goes to a closed port: no network
                  "--window-size=1400,1200", "--virtual-time-budget=15000"]


def chromium(page, profile, *args):
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("no chromium on this machine: install Debian's chromium (.ci/run does)")
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=120, env=tool_env())


def test_plots_show_draws_all_three_charts_offline_from_a_copied_folder(repo, tmp_path, capsys):
    dvc(repo, "plots", "show", "-o", str(tmp_path / "made"))
    shutil.copytree(tmp_path / "made", tmp_path / "copied")  # somewhere else, as a colleague would receive it
    page = tmp_path / "copied/index.html"
    assert "cdn.jsdelivr.net" not in page.read_text()
    dom = chromium(page, tmp_path / "profile", "--dump-dom").stdout
    assert dom.count('class="vega-embed') == 3 and dom.count("<canvas") == 3, dom[-3000:]
    screenshot = Path(os.environ.get("PLOTS_SCREENSHOT", tmp_path / "offline-plots.png"))
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    chromium(page, tmp_path / "profile", f"--screenshot={screenshot}")
    with capsys.disabled():  # shown whatever pytest captures: the artifact's path
        print(f"\nscreenshot of the offline plots page: {screenshot}")
    import matplotlib.image
    pixels = matplotlib.image.imread(screenshot)[:, :, :3]
    charts = pixels[:830]  # the loss, accuracy and confusion charts come first, the images after
    drawn = (charts.max(axis=2) - charts.min(axis=2) > 0.15).mean()  # coloured, not white or grey
    assert drawn > 0.02, f"only {drawn:.2%} of the chart area is coloured: the charts were not drawn"


def test_plots_diff_pages_are_offline_too(repo, tmp_path):
    dvc(repo, "plots", "diff", "HEAD", "-o", str(tmp_path / "diff"))
    text = (tmp_path / "diff/index.html").read_text()
    assert "cdn.jsdelivr.net" not in text and "vega-embed" in text
