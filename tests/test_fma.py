"""The FMA source: FMA's layout served on 127.0.0.1, read in place, FMA's own split and genre names end to end."""

import hashlib
import io
import json
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import clone_project, copy_of, dvc, run_in, serving

from stages.core.errors import UserError
from stages.sources.fma import download

GENRES = {"hiphop": "Hip-Hop", "rock": "Rock", "country": "Old-Time / Historic", "classical": "Classical"}
SPLITS = ["training", "training", "training", "validation", "test"]


def mp3(wav):
    audio, sr = sf.read(wav, dtype="float32")
    buffer = io.BytesIO()
    sf.write(buffer, audio, sr, format="MP3")
    return buffer.getvalue()


def fma_archives(sample_dir, folder):
    """(fma_metadata.zip, fma_small.zip) in FMA's layout: the real sample clips as MP3s under FMA's ids, an
    empty MP3, a track without a top genre, and tracks.csv with FMA's header rows and columns this source ignores."""
    rows, members = [], {}
    track = 2
    for genre, fma_genre in GENRES.items():
        for k in range(5):
            track_id = f"{track:06d}"
            members[f"fma_small/{track_id[:3]}/{track_id}.mp3"] = mp3(sample_dir / genre / f"{genre}.{k:05d}.wav")
            rows.append((track, fma_genre, f"{genre} {k}", SPLITS[k], "small", 100 + track % 7))
            track += 3
    members["fma_small/098/098565.mp3"] = b""  # FMA's known empty files
    rows.append((98565, "Rock", "empty", "training", "small", 9))
    members["fma_small/099/099134.mp3"] = members["fma_small/000/000002.mp3"]
    rows.append((99134, np.nan, "no top genre", "training", "small", 9))
    rows.append((140000, "Rock", "a medium track", "training", "medium", 9))
    columns = pd.MultiIndex.from_tuples([("track", "genre_top"), ("track", "title"), ("set", "split"),
                                         ("set", "subset"), ("artist", "id")])
    tracks = pd.DataFrame([row[1:] for row in rows], index=pd.Index([row[0] for row in rows], name="track_id"),
                          columns=columns)
    metadata = folder / "fma_metadata.zip"
    with zipfile.ZipFile(metadata, "w") as zipped:
        zipped.writestr("fma_metadata/tracks.csv", tracks.to_csv())
        zipped.writestr("fma_metadata/genres.csv", "genre_id,title\n")
    audio = folder / "fma_small.zip"
    with zipfile.ZipFile(audio, "w", zipfile.ZIP_STORED) as zipped:  # as FMA's: MP3s stored, not compressed
        for name, data in members.items():
            zipped.writestr(name, data)
        zipped.writestr("fma_small/README.txt", "This is fma_small.")
    return metadata, audio


def sha1(path):
    return hashlib.sha1(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def archives(sample_dir, tmp_path_factory):
    return fma_archives(sample_dir, tmp_path_factory.mktemp("fma"))


@pytest.fixture(scope="module")
def fma_repo(archives, tmp_path_factory):
    """A clone after `dvc exp run -S data.source=fma -S split.method=official`, the zips served on 127.0.0.1."""
    metadata, audio = archives
    with serving({"/fma/fma_metadata.zip": metadata.read_bytes(), "/fma/fma_small.zip": audio.read_bytes()}) as server:
        repo = clone_project(tmp_path_factory.mktemp("fma-repo") / "repo", {
            "data.fma.metadata": [f"{server.url('/fma/fma_metadata.zip')}#sha1={sha1(metadata)}"],
            "data.fma.audio.small": [f"{server.url('/fma/fma_small.zip')}#sha1={sha1(audio)}"], "epochs": 20})
        result = dvc(repo, "exp", "run", "-S", "data.source=fma", "-S", "split.method=official")
        repo.output = result.stdout + result.stderr
        yield repo


def test_dvc_exp_run_on_fma_catalogues_the_subset_and_skips_its_faults(fma_repo):
    catalogue = pd.read_csv(fma_repo / "data/raw/tracks.csv", dtype={"track_id": str})
    assert len(catalogue) == 22 and "140000" not in set(catalogue["track_id"])
    status = dict(zip(catalogue["track_id"], catalogue["status"]))
    assert status["099134"] == "excluded: no top genre"
    assert {"split", "artist"} <= set(catalogue.columns) and catalogue["artist"].notna().all()
    assert catalogue["path"].iat[0].endswith("fma_small.zip::fma_small/000/000002.mp3")
    skipped = pd.read_csv(fma_repo / "data/features/skipped.csv", dtype={"track_id": str})
    assert set(skipped["track_id"]) == {"098565", "099134"}
    assert not list((fma_repo / "data/downloads").glob("*/fma_small/*")), "the zip is read in place, not unpacked"


def test_official_split_is_fmas_own(fma_repo):
    sets = {name: (fma_repo / f"data/split/{name}.txt").read_text().split() for name in ("train", "valid", "test")}
    assert (len(sets["train"]), len(sets["valid"]), len(sets["test"])) == (13, 4, 4)
    assert "000011" in sets["valid"] and "000014" in sets["test"]  # hip-hop clips 3 and 4


def test_fmas_genre_names_go_through_every_stage(fma_repo):
    classes = json.loads((fma_repo / "data/labels/classes.json").read_text())
    assert classes == sorted(GENRES.values())
    pictures = sorted(p.name for p in (fma_repo / "metrics/mfcc").iterdir())
    assert pictures == ["Classical.png", "Hip-Hop.png", "Old-Time %2F Historic.png", "Rock.png"]
    evaluation = json.loads((fma_repo / "metrics/eval.json").read_text())
    assert evaluation["test_tracks"] == 4
    confusion = pd.read_csv(fma_repo / "metrics/confusion.csv")
    assert set(confusion["actual"]) == set(GENRES.values())
    assert (fma_repo / "metrics/confusion.png").is_file()


def test_predict_answers_with_fmas_genre_names(fma_repo, sample_dir, tmp_path):
    song = tmp_path / "song.mp3"
    song.write_bytes(mp3(sample_dir / "country" / "country.00004.wav"))
    answer = json.loads(run_in(fma_repo, sys.executable, "-m", "stages.predict", "--json", str(song)).stdout)
    assert {guess["label"] for guess in answer["top"]} <= set(GENRES.values())


def test_a_wrong_sha1_falls_back_to_the_next_url(archives, server, tmp_path):
    metadata, audio = archives
    server.files = {"/a/fma_small.zip": audio.read_bytes(), "/b/fma_small.zip": audio.read_bytes()}
    tracks = download({"subset": "small", "metadata": [str(metadata)],
                       "audio": {"small": [f"{server.url('/a/fma_small.zip')}#sha1={'0' * 40}",
                                           f"{server.url('/b/fma_small.zip')}#sha1={sha1(audio)}"]}},
                      raw=tmp_path / "raw", downloads=tmp_path / "downloads")
    assert [path for path, _ in server.requests] == ["/a/fma_small.zip", "/b/fma_small.zip"]
    assert (tracks["status"] == "ok").sum() == 21


def test_local_zips_are_read_in_place(archives, tmp_path):
    metadata, audio = archives
    tracks = download({"subset": "small", "metadata": [str(metadata)], "audio": {"small": [str(audio)]}},
                      raw=tmp_path / "raw", downloads=tmp_path / "downloads")
    assert tracks["path"].iat[0] == f"{audio}::fma_small/000/000002.mp3"
    assert not (tmp_path / "downloads").exists()


def test_a_zip_without_fmas_layout_is_one_line(archives, tmp_path):
    metadata, _ = archives
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zipped:
        zipped.writestr("music/song.mp3", b"ID3")
    for params, message in [
        ({"metadata": [str(other)], "audio": {"small": [str(other)]}},
         "has no fma_metadata/tracks.csv: it is not FMA's"),
        ({"metadata": [str(metadata)], "audio": {"small": [str(other)]}},
         "has no fma_small/NNN/NNNNNN.mp3 members: it is not FMA's fma_small.zip"),
    ]:
        with pytest.raises(UserError, match=message) as error:
            download({"subset": "small"} | params, raw=tmp_path / "raw", downloads=tmp_path / "downloads")
        assert "\n" not in str(error.value) and not (tmp_path / "raw").exists()


def test_official_split_refuses_other_sources(repo):
    from stages.split import split
    tracks = pd.read_csv(repo / "data/raw/tracks.csv")
    with pytest.raises(UserError,
                       match="split.method=official is FMA's own split, and these tracks come from the demo"):
        split(tracks, "official", source="demo")


def test_the_fma_repository_moved_elsewhere_still_extracts(fma_repo, tmp_path):
    import shutil

    moved = copy_of(copy_of(fma_repo, tmp_path / "a"), tmp_path / "b")
    shutil.rmtree(tmp_path / "a")  # the original is gone: nothing may point into it
    assert not pd.read_csv(moved / "data/raw/tracks.csv")["path"].dropna().str.startswith("/").any()
    result = dvc(moved, "repro", "--force", "--single-item", "extract")
    assert "extract: " in result.stderr and "from 20 files, 2 skipped" in result.stderr


def test_a_catalogue_whose_audio_is_missing_says_which_file_and_what_to_run(fma_repo, tmp_path):
    import shutil

    clone = copy_of(fma_repo, tmp_path)
    shutil.rmtree(clone / "data/downloads")  # as in a teammate's clone after `dvc pull`
    result = dvc(clone, "repro", "--force", "--single-item", "extract", check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert ("error: the audio the catalogue lists is missing here: data/downloads/" in result.stderr
            and "fma_small.zip (a fresh clone or a moved copy?): run `dvc repro --force download`" in result.stderr)
