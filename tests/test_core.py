"""Params validation, atomic writes and progress: what every stage relies on."""

import copy
import errno
import importlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import PARAMS_YAML, PROJECT, run_in, set_dotted, tool_env

from stages.core.console import progress
from stages.core.errors import UserError, run
from stages.core.files import atomic_output
from stages.core.params import Params, load_params, render, validate

PARAMS = yaml.safe_load(PARAMS_YAML)


def edited(dotted, value):
    params = copy.deepcopy(PARAMS)
    set_dotted(params, dotted, value)
    return params


def test_the_shipped_params_are_valid():
    validate(PARAMS)


def changed_after_the_declarations(path):
    """Whether `path` was edited, or committed later than stages/core/params.py last was, with the declarations
    themselves unedited: a user's experiment applied by `dvc exp run -S ...`, or committed as a baseline, as the
    README does."""
    def git(*args):
        return run_in(PROJECT, "git", *args, check=False)
    declarations = "stages/core/params.py"
    if git("diff", "--quiet", "HEAD", "--", declarations).returncode == 1:
        return False
    if git("diff", "--quiet", "HEAD", "--", path).returncode == 1:
        return True
    last = {name: git("rev-list", "-1", "HEAD", "--", name).stdout.strip() for name in (path, declarations)}
    return (last[path] != last[declarations]
            and git("merge-base", "--is-ancestor", last[declarations], last[path]).returncode == 0)


def test_params_yaml_is_the_rendering_of_the_declared_defaults_and_meanings():
    # after changing a declaration in stages/core/params.py: python -m stages.core.params
    text = (PROJECT / "params.yaml").read_text()
    if yaml.safe_load(text) != yaml.safe_load(render()) and changed_after_the_declarations("params.yaml"):
        pytest.skip("params.yaml holds an experiment's values (dvc exp run -S ..., or a commit of them): it is checked "
                    "where it holds the shipped ones (after git checkout params.yaml, or in a clean clone)")
    assert text == render()


def test_a_rendering_reads_back_as_the_values_it_was_given():
    from dataclasses import replace
    values = replace(Params(), epochs=3, train=replace(Params().train, C=(0.5,), head="logistic"))
    params = yaml.safe_load(render(values))
    validate(params)
    assert (params["epochs"], params["train"]["C"], params["train"]["head"]) == (3, [0.5], "logistic")
    assert params["features"]["scheduler"] is None and params["data"]["table_ignore"] == ["length"]


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:8786", "tls://scheduler.lab:8786", "tcp://[::1]:8786"])
def test_a_scheduler_address_is_accepted(address):
    validate(edited("features.scheduler", address))


@pytest.mark.parametrize("dotted, value, message", [
    ("epochs", -3, "params.yaml: 'epochs' must be an integer >= 1, got -3"),
    ("split.method", "kfold", "params.yaml: 'split.method' must be one of random, stratified, artist, fault_filtered"),
    ("train.learning_rate", "fast", "'train.learning_rate' must be a number"),
    ("data.gtzan.url", "genres.tar.gz#md5=abc", "'data.gtzan.url' '#md5=abc' after genres.tar.gz is not a checksum: "
     "write #sha256=<64 hex digits> (or #sha1=<40>, #md5=<32>), or nothing"),
    ("train.C", [0.1, -1], "'train.C' must be a positive number or a non-empty list of them"),
    ("train.head", "svm", "'train.head' must be one of network, logistic"),
    ("data.source", "spotify", "'data.source' must be one of gtzan, demo, folder"),
    ("features.windows", "some", "'features.windows' must be one of first, all"),
    ("features.mfcc.n_values", 0, "'features.mfcc.n_values' must be an integer >= 1"),
    ("seed", KeyError, "missing key 'seed'"),
    ("features.scheduler", "tcp://127.0.0.1:notaport", "'features.scheduler' must be a Dask scheduler's address"),
    ("features.scheduler", "127.0.0.1:8786", "'features.scheduler' must be a Dask scheduler's address"),
])
def test_a_bad_value_is_named_in_one_line(dotted, value, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        validate(edited(dotted, value))
    assert "\n" not in str(error.value)


def test_a_typo_in_a_key_is_named_with_a_suggestion():
    params = edited("train.batch_size", KeyError)
    params["train"]["batch_sise"] = 32
    with pytest.raises(UserError, match=r"unknown key 'train.batch_sise' \(did you mean 'train.batch_size'\?\)"):
        validate(params)


def test_malformed_yaml_names_the_line(tmp_path):
    (tmp_path / "params.yaml").write_text("seed: 1\nepochs: [10\n")
    with pytest.raises(UserError, match="not valid YAML at line"):
        load_params(tmp_path / "params.yaml")


def test_numbers_are_read_as_dvc_reads_them_yaml_1_2(tmp_path):
    text = PARAMS_YAML.replace("learning_rate: 0.001", "learning_rate: 1e-4")
    (tmp_path / "params.yaml").write_text(text)
    assert load_params(tmp_path / "params.yaml")["train"]["learning_rate"] == 0.0001


def test_atomic_output_replaces_the_target_only_on_success(tmp_path):
    target = tmp_path / "out"
    with atomic_output(target) as staging:
        staging.mkdir()
        (staging / "a.txt").write_text("complete")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as staging:
            staging.mkdir()
            (staging / "a.txt").write_text("half")
            raise RuntimeError("disk full, say")
    assert (target / "a.txt").read_text() == "complete"
    assert [p.name for p in tmp_path.iterdir()] == ["out"], "no temporary left behind"


def test_temporaries_of_killed_runs_are_removed_by_the_next_run(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".raw.tmp-{dead.pid}"
    stale.mkdir()
    (stale / "clip.wav").write_bytes(b"x" * 100)
    live = tmp_path / f".raw.tmp-{os.getppid()}"  # a running process's: not ours to delete
    live.mkdir()
    with atomic_output(tmp_path / "raw") as staging:
        staging.mkdir()
    assert not stale.exists() and live.exists() and (tmp_path / "raw").is_dir()


def test_any_stage_removes_what_killed_runs_left_beside_any_stages_output(tmp_path, monkeypatch):
    dead = subprocess.Popen(["true"])
    dead.wait()
    monkeypatch.chdir(tmp_path)
    stale = tmp_path / f"data/.features.tmp-{dead.pid}"
    stale.mkdir(parents=True)
    run(lambda: None)  # as a later stage would, after DVC restored extract from its run cache
    assert not stale.exists()


def test_atomic_output_keeps_the_suffix_for_picky_writers(tmp_path):
    with atomic_output(tmp_path / "model.keras") as temporary:
        assert Path(temporary).suffix == ".keras"
        Path(temporary).write_text("x")


def test_progress_logs_about_ten_plain_lines_off_a_terminal(capsys):
    assert list(progress(range(100), 100, "extract")) == list(range(100))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10 and lines[-1] == "extract: 100/100 clips (100%)"


def stopped_run(main, capsys):
    """Run a stage's `main` through run(), which must stop it: (exit status, what it printed on stderr)."""
    with pytest.raises(SystemExit) as stopped:
        run(main)
    return stopped.value.code, capsys.readouterr().err


def raising(error):
    """A stage's main() that fails with `error`."""
    def main():
        raise error
    return main


def test_a_full_disk_ends_in_one_line_and_exit_status_1(capsys):
    full = OSError(errno.ENOSPC, "No space left on device", "data/raw/genres/blues/blues.00001.au")
    assert stopped_run(raising(full), capsys) == (
        1, "error: no space left on device writing data/raw/genres/blues/blues.00001.au: "
           "free some disk space (a full GTZAN run needs about 4 GB) and run again\n")


def test_an_unexpected_error_ends_in_one_line_naming_it(capsys):
    status, error = stopped_run(raising(KeyError("checkpoint")), capsys)
    assert status == 1
    assert error.startswith("error: KeyError: 'checkpoint' (unexpected: run again with STAGES_TRACEBACK=1")
    assert error.count("\n") == 1


def test_a_user_error_ends_in_one_line_without_traceback(capsys):
    assert stopped_run(raising(UserError("params.yaml: missing key 'seed'")), capsys) == (
        1, "error: params.yaml: missing key 'seed'\n")


@pytest.mark.parametrize("stage", ["extract", "encode", "split", "train", "evaluate", "visualize"])
def test_a_stage_run_before_its_inputs_exist_says_to_run_dvc_repro(stage, tmp_path, monkeypatch, capsys):
    (tmp_path / "params.yaml").write_text(PARAMS_YAML)
    monkeypatch.chdir(tmp_path)
    status, error = stopped_run(importlib.import_module(f"stages.{stage}").main, capsys)
    assert status == 1
    assert re.fullmatch(r"error: data/\S+ is missing: an earlier stage makes it; run `dvc repro` "
                        r"\(or `dvc pull` for outputs pushed to the remote\)\n", error)


def test_dvc_reads_the_shipped_params_yaml_as_written(tmp_path):
    """DVC parses params.yaml itself (in YAML 1.1, where a URL inside [flow brackets] is not a plain scalar)."""
    (tmp_path / "params.yaml").write_text(PARAMS_YAML)
    shutil.copy(PROJECT / "dvc.yaml", tmp_path / "dvc.yaml")
    result = subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=tmp_path, capture_output=True, text=True,
                            env=tool_env())
    assert result.returncode == 0, result.stderr
    result = subprocess.run(["dvc", "status"], cwd=tmp_path, capture_output=True, text=True, env=tool_env())
    assert "YAML file structure is corrupted" not in result.stderr and result.returncode == 0, result.stderr
