"""End to end in a temporary git repository of the project, on the demo corpus: the README's dvc commands."""

import json
import re
import sys

import pandas as pd
import pytest
from conftest import changed_stages, copy_of, dvc, params_set, run_in, tool_env

from stages.split import split

CHATTER = re.compile(r"absl|oneDNN|TF_ENABLE_ONEDNN_OPTS|cuda|CUDA|cuDNN|TensorRT|cpu_feature_guard|I0000 ")


def read_json(path):
    return json.loads(path.read_text())


def test_repro_builds_every_output_and_its_metrics_hold_only_numbers(repo):
    for output in ["data/raw/tracks.csv", "data/features/features.npy", "data/labels/onehot.npy",
                   "data/split/train.txt", "data/model/model.keras", "metrics/train_log.csv",
                   "metrics/confusion.csv", "metrics/confusion.png", "metrics/misclassified.csv",
                   "metrics/mfcc/metal.png"]:
        assert (repo / output).is_file(), output
    evaluation = read_json(repo / "metrics/eval.json")
    assert evaluation["test_rows"] == evaluation["test_tracks"] == 20
    assert set(evaluation["per_label"]) >= {"blues", "rock"}

    def leaves(value):
        return [leaf for item in value.values() for leaf in leaves(item)] if isinstance(value, dict) else [value]
    for metrics in (evaluation, read_json(repo / "metrics/train.json")):
        values = [number for leaf in leaves(metrics) for number in (leaf if isinstance(leaf, list) else [leaf])]
        assert all(isinstance(number, (int, float)) and not isinstance(number, bool) for number in values), metrics


def test_the_audio_is_stored_once_workspace_and_cache_linked(repo):
    assert (repo / "data/raw/genres/blues/blues.00000.wav").stat().st_nlink == 2


def test_repro_prints_no_tensorflow_start_up_chatter(repo):
    assert "Running stage 'evaluate'" in repo.output and "Epoch 10/10" in repo.output
    assert [line for line in repo.output.splitlines() if CHATTER.search(line)] == []


def test_a_tensorflow_error_that_stops_a_stage_is_still_shown(scratch_repo):
    with params_set(scratch_repo, {"train.hidden_units": 10**9}):  # a 100 TB kernel: TensorFlow cannot allocate it
        result = dvc(scratch_repo, "repro", "--single-item", "train", check=False)
    assert result.returncode != 0
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert error.startswith("error: ResourceExhaustedError:") and "OOM when allocating tensor" in error


def test_every_split_method_trains_and_validates_on_every_class(repo):
    tracks = pd.read_csv(repo / "data/features/tracks.csv")
    label_of = dict(zip(tracks["track_id"], tracks["label"]))
    for method in ("random", "stratified"):
        sets, _, _ = split(tracks[["track_id", "label"]], method, 0.8, 0.2, seed=42)
        trained = pd.Series([label_of[t] for t in sets["train"]]).value_counts()
        validated = pd.Series([label_of[t] for t in sets["valid"]]).value_counts()
        assert len(trained) == 10 and trained.min() >= 4, (method, trained.to_dict())
        assert len(validated) >= 8, (method, validated.to_dict())
        if method == "stratified":
            assert trained.to_dict() == {label: 6 for label in trained.index}
            assert validated.to_dict() == {label: 2 for label in validated.index}


def test_the_committed_split_is_what_train_reads(repo):
    sizes = {name: len((repo / f"data/split/{name}.txt").read_text().splitlines())
             for name in ("train", "valid", "test")}
    assert sizes == {"train": 64, "valid": 16, "test": 20}
    assert read_json(repo / "metrics/train.json")["train_clips"] == 64


def test_the_demo_corpus_is_learnt_well_above_chance(repo):
    assert read_json(repo / "metrics/eval.json")["accuracy"] >= 0.5


def test_the_same_params_give_the_same_bytes_and_the_same_lock(scratch_repo):
    files = ["metrics/train.json", "metrics/train_log.csv", "metrics/eval.json", "metrics/confusion.csv",
             "data/model/model.keras", "data/raw/tracks.csv", "data/features/tracks.csv", "dvc.lock"]
    before = {name: (scratch_repo / name).read_bytes() for name in files}
    dvc(scratch_repo, "repro", "--force", "--single-item", "download")
    dvc(scratch_repo, "repro", "--force", "--single-item", "train")
    assert {name: (scratch_repo / name).read_bytes() for name in files} == before
    assert changed_stages(scratch_repo) == set(), "evaluate does not re-run for an identical model"


def test_another_sources_params_are_not_dependencies(repo):
    with params_set(repo, {"data.gtzan.url": "elsewhere/genres.tar.gz", "data.gtzan.mirrors": []}):
        assert changed_stages(repo) == set()
    with params_set(repo, {"data.demo.seed": 5}):
        assert "download" in changed_stages(repo)


def test_another_feature_kinds_params_are_not_dependencies(repo):
    with params_set(repo, {"features.musicnn.pooling": "max", "features.n_jobs": 1}):
        assert changed_stages(repo) == set()
    with params_set(repo, {"features.mfcc.n_values": 20000}):
        assert changed_stages(repo) == {"extract"}, "visualize never reads n_values"


def test_predict_tells_the_genre_of_held_back_demo_clips(repo):
    held_back = (repo / "data/split/test.txt").read_text().split()
    songs = [f"data/raw/genres/{track.split('.')[0]}/{track}.wav" for track in held_back]
    result = run_in(repo, sys.executable, "-m", "stages.predict", "--json", *songs)
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == len(held_back)
    right = {answer["top"][0]["label"] for answer in answers
             if answer["song"].split("/")[-2] == answer["top"][0]["label"]}
    assert len(right) >= 3, answers


def test_changing_epochs_leaves_the_data_stages_unchanged(repo):
    with params_set(repo, {"epochs": 3}):
        assert changed_stages(repo) == {"train"}, "evaluate follows once train's outputs change"


def test_a_bad_param_stops_the_stage_with_one_clear_line(scratch_repo):
    with params_set(scratch_repo, {"epochs": -1}):
        result = dvc(scratch_repo, "repro", "train", check=False)
    assert result.returncode != 0
    assert "error: params.yaml: 'epochs' must be an integer >= 1, got -1" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_exp_show_and_metrics_diff_read_named_experiments(readme_built, tmp_path):
    repo = copy_of(readme_built / "repo", tmp_path)  # the README's experiments epochs-5 and epochs-20 among them
    shown = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    experiments = [exp for row in shown for exp in (row.get("experiments") or [])]
    five = next(run["revs"][0] for run in experiments if run.get("name") == "epochs-5")
    assert five["data"]["params"]["params.yaml"]["data"]["epochs"] == 5
    assert "accuracy" in five["data"]["metrics"]["metrics/eval.json"]["data"]

    against_commit = json.loads(dvc(repo, "metrics", "diff", "HEAD", "--json").stdout)
    assert against_commit["metrics/train.json"]["epochs"] == {"old": 10, "new": 20, "diff": 10}
    between = json.loads(dvc(repo, "metrics", "diff", "epochs-5", "epochs-20", "--json").stdout)
    assert between["metrics/train.json"]["epochs"] == {"old": 5, "new": 20, "diff": 15}


def test_plots_show_writes_a_page_with_every_plot(repo):
    dvc(repo, "plots", "show", "-o", "plots_page")
    page = (repo / "plots_page/index.html").read_text()
    for title in ["Loss per epoch", "Accuracy per epoch", "Confusion matrix (test tracks)"]:
        assert title in page, title
    images = [p.name for p in (repo / "plots_page/static").iterdir()]
    assert any("confusion.png" in name for name in images)
    assert sum("mfcc" in name for name in images) == 10


def test_ctrl_c_during_extract_says_interrupted_and_leaves_the_features_as_they_were(scratch_repo):
    import os
    import signal
    import subprocess

    # SIGINT's default action in the stage, whatever this process inherited (a background job ignores it)
    stage = subprocess.Popen([sys.executable, "-m", "stages.extract"], cwd=scratch_repo, env=tool_env(), text=True,
                             stderr=subprocess.PIPE, start_new_session=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in stage.stderr:
        if "clips (" in line:  # workers are busy: Ctrl-C goes to the whole process group, as a terminal sends it
            os.killpg(stage.pid, signal.SIGINT)
            break
    rest = stage.stderr.read()
    assert stage.wait(timeout=60) == 130
    assert rest.strip().splitlines()[-1] == "interrupted: nothing half-written was kept; run again to resume"
    assert "Traceback" not in rest and "Process " not in rest, rest
    assert not list((scratch_repo / "data").glob(".features.tmp-*"))
    assert changed_stages(scratch_repo) == set()


def test_the_heads_run_end_to_end_record_what_was_chosen_and_predict(scratch_repo):
    # two strengths of the default list, the quick ones to fit (L-BFGS needs the fewest steps at the weakest
    # regularisation here): test_train_evaluate checks the choice itself
    dvc(scratch_repo, "exp", "run", "-S", "train.head=logistic", "-S", "train.standardize=true",
        "-S", "train.C=[1,10]")
    chosen = json.loads((scratch_repo / "metrics/train.json").read_text())
    assert chosen["C"] in (1, 10) and set(chosen["candidates"]) == {"C=1", "C=10"}
    assert max(chosen["candidates"].values()) == chosen["candidates"][f"C={chosen['C']:g}"]
    assert json.loads((scratch_repo / "metrics/eval.json").read_text())["accuracy"] > 0.3
    songs = sorted((scratch_repo / "data/raw/genres/metal").glob("*.wav"))[:2]
    answer = run_in(scratch_repo, sys.executable, "-m", "stages.predict", "--json", *map(str, songs)).stdout
    assert len(answer.splitlines()) == 2
    dvc(scratch_repo, "exp", "run", "-S", "train.head=network", "-S", "train.early_stopping=2", "-S", "epochs=12",
        "-S", "train.ensemble=2")
    chosen = json.loads((scratch_repo / "metrics/train.json").read_text())
    log = pd.read_csv(scratch_repo / "metrics/train_log.csv")
    assert chosen["epoch_kept"] == log.loc[log["val_accuracy"].idxmax(), "epoch"] and 0 < chosen["ensemble_val_accuracy"]
    answer = run_in(scratch_repo, sys.executable, "-m", "stages.predict", "--json", *map(str, songs)).stdout
    assert len(answer.splitlines()) == 2


@pytest.mark.parametrize("setting, message", [
    ("features.n_jobs=-3", "error: params.yaml: 'features.n_jobs' must be an integer >= 0, got -3"),
    ("features.scheduler=foo", "error: params.yaml: 'features.scheduler' must be a Dask scheduler's address"),
    ("data.source=nope", "error: params.yaml: 'data.source' must be one of gtzan, demo, folder, table, fma, got "
                         "'nope'"),
    ("data.source=folder,data.folder=/no/such/music", "error: data.folder is /no/such/music, which is not a folder "
                                                      "here: set it to a folder of <label>/<audio files>"),
    ("data.source=table,data.table=music", "error: data.table is music, which is not a file here"),
])
def test_a_bad_param_no_stage_depends_on_stops_the_run_and_records_no_experiment(setting, message, scratch_repo):
    result = dvc(scratch_repo, "exp", "run", *(arg for one in setting.split(",") for arg in ("-S", one)), check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "stages/sources/nope.py" not in result.stderr
    shown = json.loads(dvc(scratch_repo, "exp", "show", "--json").stdout)
    assert not [exp for row in shown for exp in (row.get("experiments") or [])]


def test_the_plots_say_what_they_plot_count_epochs_from_1_and_put_actual_labels_down_the_side(repo):
    plots = json.loads(dvc(repo, "plots", "show", "--json").stdout)["data"]
    for name, y_title in (("Loss per epoch", "categorical cross-entropy"), ("Accuracy per epoch", "accuracy")):
        spec = plots[name][0]["content"]
        assert spec["encoding"]["x"]["title"] == "epoch (from 1)"
        titles = [layer["encoding"]["y"]["title"] for layer in spec["layer"] if "y" in layer.get("encoding", {})]
        assert titles and all(title.startswith(y_title) for title in titles)
        assert min(int(row["epoch"]) for row in spec["data"]["values"]) == 1
    confusion = plots["Confusion matrix (test tracks)"][0]["content"]
    encoding = confusion["spec"]["encoding"]
    assert (encoding["y"]["field"], encoding["y"]["title"]) == ("actual", "actual label")
    assert (encoding["x"]["field"], encoding["x"]["title"]) == ("predicted", "predicted label")
    cells = confusion["data"]["values"]
    labels = json.loads((repo / "data/labels/classes.json").read_text())
    assert sorted({cell["actual"] for cell in cells}) == sorted({cell["predicted"] for cell in cells}) == sorted(labels)
    tracks = pd.read_csv(repo / "metrics/confusion.csv")
    assert sum(int(cell["tracks"]) for cell in cells) == len(tracks)
