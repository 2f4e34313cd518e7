"""The table source: features computed elsewhere, end to end with dvc, and every bad table in one line."""

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import PROJECT, clone_project, copy_of, dvc, make_tar_gz, params_set, run_in

from stages.core.errors import UserError
from stages.core.gtzan import GENRES
from stages.features.table import catalogue_rows, extract_table
from stages.split import listed_split

REAL = Path(os.environ.get("GTZAN_REAL_DIR", PROJECT.parent / "shared" / "gtzan-real"))
DESCRIPTORS = ["tempo", "rms_mean", "centroid_mean", "centroid_var"]


def fault_filtered_clips(per_list=2):
    """`per_list` clips of each genre from each of the fault-filtered lists: {list name: [clip ids]}."""
    sets, _ = listed_split([f"{g}.{i:05d}" for g in GENRES for i in range(100)])
    return {name: [clip for genre in GENRES for clip in [c for c in ids if c.startswith(genre)][:per_list]]
            for name, ids in sets.items()}


def descriptors(clip, rng, windows=1):
    """Rows of learnable descriptors: each genre shifts them, on very different scales (as Kaggle's do)."""
    shift = GENRES.index(clip.split(".")[0])
    return [{"tempo": 60 + 10 * shift + rng.normal(0, 3), "rms_mean": 0.01 * shift + rng.normal(0, 0.002),
             "centroid_mean": 1000 + 200 * shift + rng.normal(0, 50),
             "centroid_var": 1e5 * (1 + shift) + rng.normal(0, 1e4)} for _ in range(windows)]


def kaggle_table(path, windows=1):
    """A table named as Kaggle's: `filename` blues.00000.wav (one row per clip) or blues.00000.3.wav (windows)."""
    rng, rows = np.random.default_rng(0), []
    for clip in sum(fault_filtered_clips().values(), []):
        for window, row in enumerate(descriptors(clip, rng, windows)):
            name = f"{clip}.wav" if windows == 1 else f"{clip}.{window}.wav"
            rows.append({"filename": name, "length": 661794} | row | {"label": clip.split(".")[0]})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def table_repo(tmp_path_factory):
    """A clone on a Kaggle-style table of 3 windows per clip, outside the repository, after `dvc repro`."""
    folder = tmp_path_factory.mktemp("table")
    table = kaggle_table(folder / "features 3 sec.csv", windows=3)
    repo = clone_project(folder / "repo", {"data.source": "table", "data.table": str(table), "epochs": 60,
                                           "train.learning_rate": 0.01,
                                           "train.standardize": True, "split.method": "stratified"})
    result = dvc(repo, "repro")
    repo.output = result.stdout + result.stderr
    run_in(repo, "git", "add", "-A")
    run_in(repo, "git", "commit", "-q", "-m", "table baseline")
    repo.table = table
    return repo


def read_json(path):
    return json.loads(Path(path).read_text())


def test_a_table_of_windows_runs_end_to_end_and_learns(table_repo):
    catalogue = pd.read_csv(table_repo / "data/raw/tracks.csv")
    assert len(catalogue) == 60 and (catalogue["source"] == "table").all()
    rows = pd.read_csv(table_repo / "data/features/tracks.csv")
    assert np.load(table_repo / "data/features/features.npy").shape == (180, 4)
    assert rows.groupby("track_id")["window"].apply(list).map(lambda w: w == [0, 1, 2]).all()
    evaluation = read_json(table_repo / "metrics/eval.json")
    assert evaluation["track_accuracy"] > 0.5 and evaluation["test_tracks"] == 10
    assert "evaluate: test accuracy " in table_repo.output and "(95% CI " in table_repo.output
    assert sorted(p.name for p in (table_repo / "metrics/mfcc").iterdir()) == [f"{g}.png" for g in GENRES]
    assert "WARNING" not in table_repo.output


def test_the_model_records_the_tables_columns(table_repo):
    import zipfile
    with zipfile.ZipFile(table_repo / "data/model/model.keras") as model:
        record = json.loads(model.read("pipeline.json"))
    assert record["features"] == {"kind": "table", "columns": DESCRIPTORS} and record["standardized"]


@pytest.mark.parametrize("method", ["random", "fault_filtered"])
def test_every_split_method_splits_a_table(method, table_repo):
    # the table's pipeline after split is table_repo's own (stratified): what differs is the split
    try:
        with params_set(table_repo, {"split.method": method}):
            result = dvc(table_repo, "repro", "split")
            test_list = (table_repo / "data/split/test.txt").read_text().split()
    finally:
        run_in(table_repo, "dvc", "checkout", "-f")  # table_repo's own split back, even if this run failed
    assert len(test_list) == (20 if method == "fault_filtered" else 12)
    if method == "fault_filtered":
        assert "clips of the train list are not in the catalogue" in result.stderr
        assert sorted(test_list) == sorted(fault_filtered_clips()["test"])


def test_a_model_of_other_columns_is_refused_by_evaluate_naming_the_column(table_repo, tmp_path):
    other = pd.read_csv(table_repo.table).rename(columns={"rms_mean": "zcr_mean"})
    other.to_csv(tmp_path / "other.csv", index=False)
    with params_set(table_repo, {"data.table": str(tmp_path / "other.csv")}):
        dvc(table_repo, "repro", "encode", "split")
        run_in(table_repo, "dvc", "repro", "-s", "extract")
        result = run_in(table_repo, "python", "-m", "stages.evaluate", check=False)
    run_in(table_repo, "dvc", "checkout", "-f")
    assert result.returncode == 1
    assert "whose column 2 is 'rms_mean', but this table's is 'zcr_mean'" in result.stderr


def test_predict_on_audio_with_a_table_model_says_it_cannot_read_audio(table_repo, tmp_path):
    song = tmp_path / "song.wav"
    song.write_bytes(b"RIFF")
    result = run_in(table_repo, "python", "-m", "stages.predict", str(song), check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: data/model/model.keras was trained on a feature table and cannot "
                                    "read audio") and result.stderr.count("\n") == 1


def test_kaggles_names_give_the_track_and_the_window(tmp_path):
    track_ids, labels, _ = catalogue_rows(kaggle_table(tmp_path / "30 s.csv"))
    assert track_ids[:2] == ["blues.00000", "blues.00002"] or track_ids[0].startswith("blues.")
    assert all(track.count(".") == 1 for track in track_ids) and labels[0] == "blues"
    three = kaggle_table(tmp_path / "3 s.csv", windows=3)
    assert catalogue_rows(three)[0] == track_ids


def test_a_table_of_training_clips_only_stops_evaluate_in_one_line(tmp_path):
    rng, rows = np.random.default_rng(1), []
    for clip in fault_filtered_clips()["train"]:
        rows += [{"track_id": clip, "window": w, "label": clip.split(".")[0]} | row
                 for w, row in enumerate(descriptors(clip, rng, 2))]
    pd.DataFrame(rows).to_csv(tmp_path / "taggram.csv", index=False)
    repo = clone_project(tmp_path / "repo", {"data.source": "table", "data.table": str(tmp_path / "taggram.csv"),
                                             "data.table_ignore": [], "split.method": "fault_filtered", "epochs": 2})
    result = dvc(repo, "repro", check=False)
    assert "validation tracks drawn from the training list instead" in result.stderr
    assert ("error: the split's test list is empty (a feature table of training clips only?): there is nothing to "
            "evaluate") in result.stderr


# ---------------------------------------------------------------- bad tables, one line each

def rows_of(tmp_path, text, ignore=()):
    path = tmp_path / "table.csv"
    path.write_text(text)
    tracks = pd.DataFrame({"track_id": catalogue_rows(path)[0], "path": str(path)})
    return extract_table(tracks, list(ignore), tmp_path / "out")


@pytest.mark.parametrize("text, message", [
    ("track_id,tempo,key,label\na,1,C,x\nb,2,D,y\n", "column 'key' is not numeric (line 2): list it in "
                                                     "data.table_ignore, or fix the value"),
    ("track_id,tempo,label\na,1,x\nb,,y\n", "table.csv, line 3: no value in column 'tempo'"),
    ("track_id,window,tempo,label\na,0,1,x\na,1,2,x\na,0,3,x\n", "table.csv, line 4: track a window 0 is listed twice"),
    ("track_id,tempo,genre\na,1,x\n", "has no 'label' column: name the column of labels 'label'"),
    ("name,tempo,label\na,1,x\n", "has neither a 'track_id' nor a 'filename' column"),
    ("track_id,tempo,label\na,1,x\na,2,y\n", "table.csv, line 3: track a is labelled y here and x above"),
    ("track_id,tempo,label\na,1,\n", "table.csv, line 2: no label: every row needs one"),
])
def test_a_bad_table_is_named_in_one_line(text, message, tmp_path):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        rows_of(tmp_path, text)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("text, message", [
    ("filename,tempo,label\nb.00001.0.wav,1,x\nb.00001.1.wav,2,x\nb.00002.wav,3,x\n",
     "table.csv, line 4: 'b.00002.wav' is not named as a window like line 2's 'b.00001.0.wav'"),
    ("filename,tempo,label\nb.00002.wav,3,x\nb.00001.0.wav,1,x\n",
     "table.csv, line 3: 'b.00001.0.wav' is named as a window, unlike line 2's 'b.00002.wav'"),
    ("track_id,tempo,label\na,1,x\nb,2,y\na,1,x\n", "table.csv, line 4: repeats line 2 (track a, the same values)"),
    ("filename,tempo,label\nb.00000.wav,1,x\nb.00000.au,2,x\n",
     "table.csv, line 3: 'b.00000.au' and line 2's 'b.00000.wav' are both track b.00000"),
    ('track_id,tempo,label\n"a\nb",1,x\nc,2,y\n', "table.csv, line 2: the track id 'a\\nb' holds a line break"),
    ("track_id,tempo,label\na,inf,x\nb,2,y\n", "table.csv, line 2: column 'tempo' holds inf"),
    ("track_id,tempo,label\na,1,x\nb,-Infinity,y\n", "table.csv, line 3: column 'tempo' holds -inf"),
    ("track_id,tempo,label\na,1e400,x\nb,2,y\n", "table.csv, line 2: column 'tempo' holds inf"),
    ("track_id,tempo,label\na,1e39,x\nb,2,y\n", "table.csv, line 2: column 'tempo' holds 1e+39, beyond float32"),
    ("track_id,tempo,label\na,1,x\nb,2,x\n", "has one label, x: a classifier needs two or more"),
    ("track_id,tempo,label\n", "has a header and no rows"),
])
def test_a_table_that_would_leak_merge_or_poison_is_refused_in_one_line(text, message, tmp_path):
    with pytest.raises(UserError, match=re.escape(message)) as error:
        rows_of(tmp_path, text)
    assert "\n" not in str(error.value)


def test_an_ignored_column_the_table_does_not_have_is_refused_in_one_line(tmp_path):
    with pytest.raises(UserError) as error:
        rows_of(tmp_path, "track_id,tempo,label\na,1,x\nb,2,y\n", ignore=["length"])
    assert str(error.value) == (f"data.table_ignore names length, which {tmp_path / 'table.csv'} does not have: list "
                                "only its columns that are not features, e.g. -S 'data.table_ignore=[]' for none")
    assert not (tmp_path / "out").exists()


def test_an_archive_given_as_the_table_is_refused_in_one_line(tmp_path):
    archive = make_tar_gz({"features.csv": b"track_id,tempo,label\na,1,x\nb,2,y\n"}, tmp_path / "features.tar.gz")
    with pytest.raises(UserError, match="features.tar.gz is an archive, not a CSV table: unpack it"):
        catalogue_rows(archive)


# ---------------------------------------------------------------- the real full-GTZAN tables

@pytest.fixture(scope="module")
def real_tables():
    if not (REAL / "README.md").is_file():
        pytest.skip(f"no real full-GTZAN tables at {REAL} (set GTZAN_REAL_DIR to ../shared/gtzan-real)")
    return REAL


def trained_on(table, folder, ignore=("length",), overrides=None):
    """(repo, `dvc repro train`'s result, [train, valid, test] list sizes) of a clone on the real `table` under
    split.method=fault_filtered with train.standardize, its columns `ignore` not features, and {dotted param: value}
    `overrides`."""
    repo = clone_project(folder / "repo", {"data.source": "table", "split.method": "fault_filtered",
                                           "data.table": str(table), "train.standardize": True,
                                           "data.table_ignore": list(ignore), **(overrides or {})})
    result = dvc(repo, "repro", "train", check=False)
    assert result.returncode == 0, result.stderr
    sizes = [len((repo / f"data/split/{name}.txt").read_text().split()) for name in ("train", "valid", "test")]
    return repo, result, sizes


def test_the_kaggle_table_trains_under_fault_filtered_validating_on_its_own_197_clips(real_tables, tmp_path):
    repo, _, sizes = trained_on(real_tables / "kaggle-features-30-sec.ff-train-valid.csv", tmp_path)
    assert sizes == [443, 197, 0]
    assert read_json(repo / "metrics/train.json")["val_accuracy"] > 0.25  # chance is 0.1


def test_the_taggram_table_trains_with_validation_drawn_from_training(real_tables, tmp_path):
    # one epoch: the split and the rows are what this checks, not what 12,415 windows teach
    repo, result, sizes = trained_on(real_tables / "musicnn-msd-taggram-3s.ff-train.csv", tmp_path, ignore=(),
                                     overrides={"epochs": 1})
    assert "validation tracks drawn from the training list instead" in result.stderr
    assert sum(sizes) == 443 and sizes[2] == 0 and 80 <= sizes[1] <= 100
    assert np.load(repo / "data/features/features.npy").shape == (12415, 50)


def test_visualize_of_a_table_reads_only_declared_files(table_repo, tmp_path):
    from dvc.repo import Repo
    from test_dag import run_traced
    copy = copy_of(table_repo, tmp_path)
    with Repo(copy) as repo:
        [stage] = [stage for stage in repo.index.stages if stage.name == "visualize"]
        declared = [dep.def_path for dep in stage.deps if not hasattr(dep, "params")]
    _, read = run_traced(copy, "stages.visualize")
    assert {"data/features/features.npy", "data/features/params.json"} <= read
    assert read <= set(declared) | {path for path in read if path.startswith("data/raw/")}
