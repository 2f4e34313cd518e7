"""The folder source: your own labels, formats and song lengths, end to end on real audio."""

import json
import os
import shutil
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import PARAMS_YAML, changed_stages, clone_project, copy_of, params_set, run_in, write_params

from stages.core.errors import UserError
from stages.core.tracks import in_catalogue_order
from stages.sources.folder import folder_catalogue, scan
from stages.split import random_split

LABELS = {"calme étude": ["classical", "jazz"], "hip hop": ["hiphop", "disco", "reggae"],
          "Métal & rock": ["metal", "rock"], "pop country": ["pop", "country", "blues"]}
FORMATS = ["mp3", "flac", "ogg", "wav"]


def write_collection(sample_dir, root):
    """Real GTZAN clips under labels that are not GTZAN's: clips 0-2 of each genre in four formats, and
    one 2-minute song per label (clips 3 and 4 of two of its genres, one after the other)."""
    for n, (label, genres) in enumerate(LABELS.items()):
        for genre in genres:
            for k in range(3):
                audio, sr = sf.read(sample_dir / genre / f"{genre}.{k:05d}.wav", dtype="float32")
                fmt = FORMATS[(n + k) % len(FORMATS)]
                (root / label / genre).mkdir(parents=True, exist_ok=True)
                sf.write(root / label / genre / f"{genre} clip {k}.{fmt}", audio, sr, format=fmt.upper())
        song = np.concatenate([sf.read(sample_dir / genre / f"{genre}.{k:05d}.wav", dtype="float32")[0]
                               for genre in genres[:2] for k in (3, 4)])
        sf.write(root / label / "a whole song.flac", song, 22050)
    return root


@pytest.fixture(scope="module")
def own_music(sample_dir, tmp_path_factory):
    """A clone trained on the collection (every window) with `dvc repro`; the collection sits outside the clone."""
    folder = tmp_path_factory.mktemp("own")
    collection = write_collection(sample_dir, folder / "my music")
    repo = clone_project(folder / "repo", {"data.source": "folder", "data.folder": str(collection),
                                           "features.windows": "all", "epochs": 10})
    repo.output = run_in(repo, "dvc", "repro").stderr
    repo.collection = collection
    return repo


def test_the_classes_are_the_folders_labels(own_music):
    assert json.loads((own_music / "data/labels/classes.json").read_text()) == sorted(LABELS)


def test_every_window_of_a_song_is_a_row_of_its_track(own_music):
    rows = pd.read_csv(own_music / "data/features/tracks.csv")
    windows = rows.groupby("track_id").agg(n=("window", "size"), duration=("duration", "first"))
    assert len(windows) == 34 and (windows["n"] == 1).sum() == 30
    songs = windows[windows.index.str.endswith("a whole song.flac")]
    assert len(songs) == 4 and (songs["n"] >= 3).all() and (songs["duration"] == 30.0).all()


def test_no_track_is_on_two_sides_of_the_split(own_music):
    sets = {name: set((own_music / f"data/split/{name}.txt").read_text().splitlines())
            for name in ("train", "valid", "test")}
    assert not sets["train"] & sets["test"] and not sets["train"] & sets["valid"] and not sets["valid"] & sets["test"]
    assert len(sets["train"] | sets["valid"] | sets["test"]) == 34


def test_evaluate_names_the_labels_and_reports_tracks_next_to_windows(own_music):
    evaluation = json.loads((own_music / "metrics/eval.json").read_text())
    assert set(evaluation["per_label"]) <= set(LABELS)
    test_tracks = (own_music / "data/split/test.txt").read_text().splitlines()
    rows = pd.read_csv(own_music / "data/features/tracks.csv")
    assert evaluation["test_tracks"] == len(test_tracks)
    assert evaluation["test_rows"] == rows["track_id"].isin(test_tracks).sum()
    confusion = pd.read_csv(own_music / "metrics/confusion.csv")
    assert set(confusion["actual"]) | set(confusion["predicted"]) <= set(LABELS)
    assert sorted(p.stem for p in (own_music / "metrics/mfcc").iterdir()) == sorted(LABELS)


def test_predict_answers_with_the_folders_labels(own_music):
    song = own_music.collection / "Métal & rock" / "a whole song.flac"
    answer = json.loads(run_in(own_music, sys.executable, "-m", "stages.predict", "--json", str(song)).stdout)
    assert answer["windows"] == 4 and {guess["label"] for guess in answer["top"]} <= set(LABELS)


def test_a_change_inside_the_folder_makes_the_stage_changed(own_music):
    extra = own_music.collection / "hip hop" / "new.wav"
    sf.write(extra, np.zeros(22050, np.float32), 22050)
    try:
        status = json.loads(run_in(own_music, "dvc", "status", "--json").stdout)
    finally:
        extra.unlink()
    assert "download" in status


# ---------------------------------------------------------------- bad input, one clear line each

def test_a_folder_that_does_not_exist_is_one_line(tmp_path):
    with pytest.raises(UserError, match="data.folder is .*missing, which is not a folder"):
        scan(tmp_path / "missing")


def test_a_single_label_is_refused(tmp_path):
    (tmp_path / "only").mkdir()
    (tmp_path / "only/a.wav").write_bytes(b"RIFF")
    with pytest.raises(UserError, match=r"holds 1 label folder\(s\) \(only\); a classifier needs at least 2"):
        scan(tmp_path)


def test_an_empty_label_folder_is_refused_naming_it(tmp_path):
    (tmp_path / "calm").mkdir()
    (tmp_path / "calm/a.flac").write_bytes(b"fLaC")
    (tmp_path / "loud").mkdir()
    (tmp_path / "loud/cover.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(UserError, match="the label folder 'loud' .* holds no audio files"):
        scan(tmp_path)


def test_duplicates_are_reported_under_any_label(tmp_path):
    for path in ["calm/a.wav", "calm/b.wav", "loud/c.wav", "loud/d.wav"]:
        (tmp_path / path).parent.mkdir(exist_ok=True)
        (tmp_path / path).write_bytes(b"same bytes" if path != "loud/d.wav" else b"other")
    tracks = folder_catalogue(tmp_path).set_index("track_id")
    assert tracks.at["calm/b.wav", "status"] == "duplicate of calm/a.wav"
    assert tracks.at["loud/c.wav", "status"] == "duplicate of calm/a.wav"
    assert tracks.at["loud/d.wav", "status"] == "ok"


def test_a_zero_byte_file_and_a_text_file_named_mp3_are_skipped_with_their_reason(tmp_path, sample_dir):
    import stages.extract
    for label, genre in [("calm", "classical"), ("loud", "metal")]:
        (tmp_path / "music" / label).mkdir(parents=True)
        sf.write(tmp_path / "music" / label / "real.ogg", sf.read(sample_dir / genre / f"{genre}.00000.wav")[0], 22050)
    (tmp_path / "music/calm/empty.wav").write_bytes(b"")
    (tmp_path / "music/loud/notes.mp3").write_text("not audio")
    features = {"kind": "mfcc", "sample_rate": 22050, "windows": "first",
                "mfcc": {"n_mfcc": 20, "n_fft": 2048, "hop_length": 512, "n_mels": 128, "n_values": 25000}}
    stages.extract.extract(folder_catalogue(tmp_path / "music"), features, tmp_path / "out", 1)
    rows, skipped = pd.read_csv(tmp_path / "out/tracks.csv"), pd.read_csv(tmp_path / "out/skipped.csv")
    assert sorted(rows["track_id"]) == ["calm/real.ogg", "loud/real.ogg"]
    reasons = dict(zip(skipped["track_id"], skipped["reason"]))
    assert set(reasons) == {"calm/empty.wav", "loud/notes.mp3"}
    assert all(reason.startswith("cannot decode") for reason in reasons.values())


def two_labels(root):
    for label in ("calm", "loud"):
        (root / label).mkdir(parents=True)
        (root / label / "a.wav").write_bytes(label.encode())
    return root


def test_a_label_folder_that_is_a_symbolic_link_is_refused_in_one_line(tmp_path):
    music = two_labels(tmp_path / "music")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/b.wav").write_bytes(b"b")
    (music / "linked").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UserError, match="'linked' in .* is a symbolic link, which DVC does not follow") as error:
        scan(music)
    assert "\n" not in str(error.value)


def test_a_file_that_is_a_symbolic_link_is_refused_in_one_line(tmp_path):
    music = two_labels(tmp_path / "music")
    (tmp_path / "b.wav").write_bytes(b"b")
    (music / "calm/b.wav").symlink_to(tmp_path / "b.wav")
    with pytest.raises(UserError, match="'calm/b.wav' in .* is a symbolic link"):
        scan(music)


def test_a_file_name_with_a_line_break_is_refused_naming_it(tmp_path):
    music = two_labels(tmp_path / "music")
    (music / "calm/two\nlines.wav").write_bytes(b"b")
    with pytest.raises(UserError, match="the name of 'calm/two\\\\nlines.wav' in .* holds a line break: rename it"):
        scan(music)


def test_a_file_name_that_is_not_utf8_is_refused_naming_it(tmp_path):
    music = two_labels(tmp_path / "music")
    (music / "calm").joinpath(os.fsdecode(b"caf\xe9.wav")).write_bytes(b"b")
    with pytest.raises(UserError, match=r"the name of b'.*calm/caf\\xe9.wav' is not UTF-8 text: rename it"):
        scan(music)


def queue_runs(repo, *settings):
    """Queue the experiments of `settings` (-S options; a value listing several makes a grid), then run them all."""
    run_in(repo, "dvc", "exp", "run", "--queue", *settings)
    return run_in(repo, "dvc", "exp", "run", "--run-all", check=False)


def test_a_queued_grid_over_the_head_runs_on_an_absolute_folder_and_its_experiments_compare(own_music, tmp_path):
    # the grid as docs/trust.md shows it, on the trained collection committed as a baseline; queued runs work in a
    # temporary copy, which an absolute folder survives (the data stages come from DVC's run cache)
    repo = copy_of(own_music, tmp_path)
    run_in(repo, "git", "add", "-A")
    run_in(repo, "git", "commit", "-q", "-m", "baseline")
    queue_runs(repo, "-S", "train.head=network,logistic", "-S", "train.standardize=true")
    shown = json.loads(run_in(repo, "dvc", "exp", "show", "--json").stdout)
    runs = {run["name"]: run["revs"][0]["data"] for row in shown for run in (row.get("experiments") or [])}
    heads = {data["params"]["params.yaml"]["data"]["train"]["head"]: name for name, data in runs.items()}
    assert sorted(heads) == ["logistic", "network"]
    assert all(data["metrics"]["metrics/eval.json"]["data"]["test_tracks"] > 0 for data in runs.values())
    compared = run_in(repo, sys.executable, "-m", "stages.compare", heads["network"], heads["logistic"])
    assert compared.stdout.startswith(f"A = {heads['network']}, B = {heads['logistic']}: ")


def test_a_queued_run_on_an_untracked_folder_in_the_repository_says_what_to_do(tmp_path, monkeypatch):
    # `dvc exp run --queue` runs in a copy made from git under .dvc/tmp/exps/: music git does not track is absent there
    from stages.sources import folder
    copy = tmp_path / "repo/.dvc/tmp/exps/tmp1a2b3c"
    copy.mkdir(parents=True)
    (copy / "params.yaml").write_text(PARAMS_YAML)
    write_params(copy, {"data.source": "folder", "data.folder": "music"})
    monkeypatch.chdir(copy)
    with pytest.raises(UserError, match=r"^a queued experiment runs in a temporary copy of the repository, where the "
                                        r"files in data.folder=music that git does not track are absent"):
        folder.main()


def test_every_feature_recipe_is_scored_on_the_same_test_tracks(small_collection, tmp_path):
    music = tmp_path / "music"
    shutil.copytree(small_collection, music)
    sf.write(music / "calm" / "short.wav", np.zeros(22050 * 5, np.float32), 22050)  # too short for 25,000 values
    order = in_catalogue_order(folder_catalogue(music))["track_id"]
    seed = next(seed for seed in range(100) if "calm/short.wav" in random_split(order, seed=seed)["test"])
    repo = clone_project(tmp_path / "repo", {"data.source": "folder", "data.folder": str(music), "seed": seed,
                                             "epochs": 2})
    output = run_in(repo, "dvc", "repro", "evaluate").stderr
    assert "evaluate: 1 test tracks have no feature rows" in output and output.count("calm/short.wav") >= 1
    evaluation = json.loads((repo / "metrics/eval.json").read_text())
    assert evaluation["test_tracks_without_rows"] == 1
    assert evaluation["test_tracks"] == len((repo / "data/split/test.txt").read_text().splitlines()) - 1
    with params_set(repo, {"features.kind": "musicnn"}):
        assert "split" not in changed_stages(repo) and "extract" in changed_stages(repo)
    test_list = (repo / "data/split/test.txt").read_bytes()
    with params_set(repo, {"features.mfcc.n_values": 2000}):
        run_in(repo, "dvc", "repro", "evaluate")
        assert (repo / "data/split/test.txt").read_bytes() == test_list
        assert json.loads((repo / "metrics/eval.json").read_text())["test_tracks_without_rows"] == 0


def test_the_artist_is_read_from_each_files_tags(tmp_path, sample_dir):
    audio = sf.read(sample_dir / "blues/blues.00000.wav")[0][:22050]
    for label, name, fmt in [("blues", "a.wav", "WAV"), ("blues", "b.flac", "FLAC"), ("rock", "c.ogg", "OGG"),
                             ("rock", "d.wav", "WAV")]:
        (tmp_path / "music" / label).mkdir(parents=True, exist_ok=True)
        with sf.SoundFile(tmp_path / "music" / label / name, "w", 22050, 1, format=fmt) as file:
            if name != "d.wav":
                file.artist = f"Artist of {name}"
            file.write(audio)
    artists = dict(zip(*folder_catalogue(tmp_path / "music")[["track_id", "artist"]].T.values))
    assert artists == {"blues/a.wav": "Artist of a.wav", "blues/b.flac": "Artist of b.flac",
                       "rock/c.ogg": "Artist of c.ogg", "rock/d.wav": ""}
