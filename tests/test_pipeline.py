"""End to end in a temporary git repository of the project, on the demo corpus: the README's dvc commands."""

import json
import re
import sys
import time

import pytest
import yaml

from conftest import clip_members, clone_project, make_tar_gz, run_in, set_dotted
from test_download import md5_of

DEMO = {"data.source": "demo", "data.demo_clips_per_genre": 10}


def dvc(repo, *args, check=True):
    return run_in(repo, "dvc", *args, check=check)


def set_param(repo, dotted, value):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    set_dotted(params, dotted, value)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """The project on the demo corpus after `dvc repro`, its results committed."""
    repo = clone_project(tmp_path_factory.mktemp("pipeline") / "repo", DEMO)
    dvc(repo, "repro")
    run_in(repo, "git", "add", "-A")
    run_in(repo, "git", "commit", "-q", "-m", "demo baseline")
    return repo


def read_json(path):
    return json.loads(path.read_text())


def test_repro_builds_every_output_and_records_the_source(repo):
    for output in ["data/raw/tracks.csv", "data/features/features.npy", "data/labels/onehot.npy",
                   "data/split/train.txt", "data/model/model.keras", "metrics/train_log.csv",
                   "metrics/confusion.csv", "metrics/confusion.png", "metrics/misclassified.csv",
                   "metrics/mfcc/metal.png"]:
        assert (repo / output).is_file(), output
    evaluation = read_json(repo / "metrics/eval.json")
    assert evaluation["source"] == "demo" and read_json(repo / "metrics/train.json")["source"] == "demo"
    assert evaluation["test_clips"] == 20
    assert set(evaluation["per_genre"]) >= {"blues", "rock"}


def test_the_demo_corpus_is_learnt_well_above_chance(repo):
    assert read_json(repo / "metrics/eval.json")["accuracy"] >= 0.5


def test_the_same_params_give_byte_identical_metrics(repo):
    files = ["metrics/train.json", "metrics/train_log.csv", "metrics/eval.json", "metrics/confusion.csv"]
    before = {name: (repo / name).read_bytes() for name in files}
    dvc(repo, "repro", "--force", "--single-item", "train")
    dvc(repo, "repro", "--force", "--single-item", "evaluate")
    assert {name: (repo / name).read_bytes() for name in files} == before


def test_predict_tells_the_genre_of_held_back_demo_clips(repo):
    held_back = (repo / "data/split/test.txt").read_text().split()
    songs = [f"data/raw/genres/{track.split('.')[0]}/{track}.wav" for track in held_back]
    result = run_in(repo, sys.executable, "-m", "stages.predict", "--json", *songs)
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == len(held_back)
    right = {answer["top"][0]["genre"] for answer in answers if answer["song"].split("/")[-2] == answer["top"][0]["genre"]}
    assert len(right) >= 3, answers


def test_changing_epochs_leaves_the_data_stages_unchanged(repo):
    set_param(repo, "epochs", 3)
    try:
        changed = set(json.loads(dvc(repo, "status", "--json").stdout))
    finally:
        run_in(repo, "git", "checkout", "params.yaml")
    assert changed == {"train"}, "evaluate follows once train's outputs change"


def test_a_bad_param_stops_the_stage_with_one_clear_line(repo):
    set_param(repo, "epochs", -1)
    try:
        result = dvc(repo, "repro", "train", check=False)
    finally:
        run_in(repo, "git", "checkout", "params.yaml")
    assert result.returncode != 0
    assert "error: params.yaml: 'epochs' must be an integer >= 1, got -1" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_exp_run_with_epochs_then_show_and_diff(repo):
    ran = dvc(repo, "exp", "run", "-S", "epochs=4", "-n", "four").stdout
    assert set(re.findall(r"Running stage '(\w+)'", ran)) == {"train", "evaluate"}
    assert read_json(repo / "metrics/train.json")["epochs"] == 4

    shown = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    experiments = [exp for row in shown for exp in (row.get("experiments") or [])]
    four = next(run["revs"][0] for run in experiments if run.get("name") == "four")
    assert four["data"]["params"]["params.yaml"]["data"]["epochs"] == 4
    assert "accuracy" in four["data"]["metrics"]["metrics/eval.json"]["data"]

    against_commit = json.loads(dvc(repo, "metrics", "diff", "HEAD", "--json").stdout)
    assert against_commit["metrics/train.json"]["epochs"] == {"old": 10, "new": 4, "diff": -6}

    dvc(repo, "exp", "run", "-S", "epochs=2", "-n", "two")
    between = json.loads(dvc(repo, "metrics", "diff", "four", "two", "--json").stdout)
    assert between["metrics/train.json"]["epochs"] == {"old": 4, "new": 2, "diff": -2}


def test_plots_show_writes_a_page_with_every_plot(repo):
    dvc(repo, "plots", "show", "-o", "plots_page")
    page = (repo / "plots_page/index.html").read_text()
    for title in ["Loss per epoch", "Accuracy per epoch", "Confusion matrix (test clips)"]:
        assert title in page, title
    images = [p.name for p in (repo / "plots_page/static").iterdir()]
    assert any("confusion.png" in name for name in images)
    assert sum("mfcc" in name for name in images) == 10


def test_a_queued_sweep_runs_with_queue_start(repo):
    dvc(repo, "exp", "run", "--queue", "-S", "epochs=5,6")
    dvc(repo, "queue", "start")
    deadline = time.time() + 900
    while time.time() < deadline:
        status = dvc(repo, "queue", "status").stdout
        if not re.search(r"\b(Queued|Running)\b", status):
            break
        time.sleep(5)
    assert status.count("Success") == 2, status
    shown = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    epochs = {run["revs"][0]["data"]["params"]["params.yaml"]["data"]["epochs"]
              for row in shown for run in (row.get("experiments") or [])}
    assert {5, 6} <= epochs


def test_repro_download_on_a_real_gtzan_archive_over_http(sample_dir, server, tmp_path):
    archive = make_tar_gz(clip_members(sample_dir), tmp_path / "genres.tar.gz")
    server.files["/genres.tar.gz"] = archive.read_bytes()
    repo = clone_project(tmp_path / "repo", {"data.url": server.url("/genres.tar.gz"), "data.mirrors": [],
                                             "data.md5": md5_of(archive)})
    result = dvc(repo, "repro", "download")
    assert "download: 50 clips from gtzan, 50 ok, 0 suspect" in result.stderr
    assert (repo / "data/raw/genres/reggae/reggae.00004.wav").is_file()
    assert not list((repo / "data/downloads").iterdir())


def test_musicnn_embeddings_run_through_the_whole_pipeline(tmp_path):
    repo = clone_project(tmp_path / "repo", DEMO | {"features.kind": "musicnn", "epochs": 50})
    result = dvc(repo, "repro", "evaluate", check=False)
    if result.returncode != 0 and "pip could not download musicnn" in result.stderr:
        pytest.skip("PyPI cannot be reached here, and no wheel is given")
    assert result.returncode == 0, result.stderr
    assert (repo / "data/pretrained/MSD_musicnn/.index").is_file()
    assert read_json(repo / "metrics/train.json")["source"] == "demo"
    assert read_json(repo / "metrics/eval.json")["test_clips"] == 20
    import numpy as np
    assert np.load(repo / "data/features/features.npy").shape == (100, 200)
    predicted = run_in(repo, sys.executable, "-m", "stages.predict", "--json", "data/raw/genres/metal")
    assert [json.loads(line)["windows"] for line in predicted.stdout.splitlines()] == [1] * 10
