"""The download stage: archives over loopback HTTP, local copies, safety, integrity."""

import hashlib
import tarfile

import pandas as pd
import pytest

from conftest import PROJECT, clip_members, make_tar_gz, make_zip
from stages.common import GENRES, UserError
from stages.download import audio_md5, download

CHECKSUMS = PROJECT / "data/gtzan/checksums.tsv"


def md5_of(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def data_params(url, md5=None, mirrors=()):
    return {"source": "gtzan", "url": url, "mirrors": list(mirrors), "md5": md5,
            "demo_seed": 0, "demo_clips_per_genre": 10}


@pytest.fixture
def run_download(tmp_path):
    """download() into tmp_path/raw, keeping partial downloads in tmp_path/downloads."""
    def run(data):
        return download(data, raw=tmp_path / "raw", downloads=tmp_path / "downloads", checksums=CHECKSUMS)
    return run


@pytest.fixture
def tiny_archive(tiny_corpus, tmp_path):
    return make_tar_gz(clip_members(tiny_corpus), tmp_path / "genres.tar.gz")


def test_downloads_and_unpacks_a_gtzan_archive(server, tiny_archive, run_download, tmp_path):
    server.files["/genres.tar.gz"] = tiny_archive.read_bytes()
    tracks = run_download(data_params(server.url("/genres.tar.gz"), md5_of(tiny_archive)))
    assert len(tracks) == 20
    assert list(tracks.columns) == ["track_id", "genre", "path", "md5", "status", "source"]
    assert (tmp_path / "raw/genres/blues/blues.00000.wav").is_file()
    assert pd.read_csv(tmp_path / "raw/tracks.csv")["track_id"].tolist() == tracks["track_id"].tolist()
    assert not list((tmp_path / "downloads").iterdir()), "the archive is deleted after unpacking"


def test_falls_back_to_a_mirror_when_the_first_url_is_dead(server, tiny_archive, run_download):
    server.files["/mirror/genres.tar.gz"] = tiny_archive.read_bytes()
    tracks = run_download(data_params(server.url("/gone/genres.tar.gz"), md5_of(tiny_archive),
                                      mirrors=[server.url("/mirror/genres.tar.gz")]))
    assert len(tracks) == 20
    assert [path for path, _ in server.requests] == ["/gone/genres.tar.gz", "/mirror/genres.tar.gz"]


def test_resumes_a_dropped_download_with_a_range_request(server, tiny_archive, run_download):
    data = tiny_archive.read_bytes()
    server.files["/genres.tar.gz"] = data
    server.drop_once.add("/genres.tar.gz")
    tracks = run_download(data_params(server.url("/genres.tar.gz"), md5_of(tiny_archive)))
    assert len(tracks) == 20
    assert server.requests == [("/genres.tar.gz", None), ("/genres.tar.gz", f"bytes={len(data) // 2}-")]


def test_a_partial_download_left_by_an_earlier_run_is_resumed(server, tiny_archive, run_download, tmp_path):
    data = tiny_archive.read_bytes()
    server.files["/genres.tar.gz"] = data
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads/genres.tar.gz.part").write_bytes(data[:1000])
    run_download(data_params(server.url("/genres.tar.gz"), md5_of(tiny_archive)))
    assert server.requests == [("/genres.tar.gz", "bytes=1000-")]


def test_a_wrong_md5_names_expected_and_actual(server, tiny_archive, run_download, tmp_path):
    server.files["/genres.tar.gz"] = tiny_archive.read_bytes()
    with pytest.raises(UserError, match=f"expected md5 {'0' * 32}, got {md5_of(tiny_archive)}"):
        run_download(data_params(server.url("/genres.tar.gz"), "0" * 32))
    assert not (tmp_path / "raw").exists()


def test_no_network_names_the_urls_and_the_local_alternative(server, run_download, tmp_path):
    urls = [server.url("/a/genres.tar.gz"), "http://127.0.0.1:9/genres.tar.gz"]
    with pytest.raises(UserError) as error:
        run_download(data_params(urls[0], mirrors=urls[1:]))
    message = str(error.value)
    assert all(url in message for url in urls) and "data.url" in message
    assert "\n" not in message
    assert not (tmp_path / "raw").exists()


def test_reads_the_kaggle_zip_layout_and_ignores_its_csvs(tiny_corpus, run_download, tmp_path):
    members = clip_members(tiny_corpus, prefix="Data/genres_original")
    members["Data/features_30_sec.csv"] = b"filename,label\n"
    archive = make_zip(members, tmp_path / "archive.zip")
    tracks = run_download(data_params(str(archive)))
    assert len(tracks) == 20 and set(tracks["genre"]) == set(GENRES)


def test_a_local_archive_is_used_in_place_and_kept(tiny_archive, run_download):
    run_download(data_params(tiny_archive.as_uri(), md5_of(tiny_archive)))
    assert tiny_archive.is_file()


def test_reads_au_clips(tiny_corpus, run_download, tmp_path):
    archive = make_tar_gz(clip_members(tiny_corpus, suffix=".au"), tmp_path / "genres.tar.gz")
    tracks = run_download(data_params(str(archive)))
    assert tracks["path"].str.endswith(".au").all() and len(tracks) == 20


@pytest.mark.parametrize("kind", ["traversal", "absolute", "symlink"])
def test_refuses_an_unsafe_tar_archive(kind, tiny_corpus, run_download, tmp_path):
    evil = tarfile.TarInfo({"traversal": "genres/../../escaped.wav", "absolute": "/tmp/escaped.wav",
                            "symlink": "genres/blues/blues.00099.wav"}[kind])
    if kind == "symlink":
        evil.type, evil.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive = make_tar_gz(clip_members(tiny_corpus), tmp_path / "evil.tar.gz", extra=[evil])
    with pytest.raises(UserError, match="unsafe member"):
        run_download(data_params(str(archive)))
    assert not (tmp_path / "escaped.wav").exists() and not (tmp_path / "raw").exists()


def test_refuses_a_zip_with_a_path_traversal(tiny_corpus, run_download, tmp_path):
    members = clip_members(tiny_corpus) | {"../escaped.wav": b"RIFF"}
    with pytest.raises(UserError, match="unsafe member '../escaped.wav'"):
        run_download(data_params(str(make_zip(members, tmp_path / "evil.zip"))))


def test_an_archive_without_gtzan_layout_is_refused(run_download, tmp_path):
    archive = make_tar_gz({"photos/cat.jpg": b"\xff\xd8", "music/song.wav": b"RIFF"}, tmp_path / "x.tar.gz")
    with pytest.raises(UserError, match="does not have GTZAN's layout"):
        run_download(data_params(str(archive)))


def test_a_file_that_is_not_an_archive_is_refused(run_download, tmp_path):
    (tmp_path / "notes.txt").write_text("not an archive")
    with pytest.raises(UserError, match="not a readable .tar.gz or .zip"):
        run_download(data_params(str(tmp_path / "notes.txt")))


def test_audio_md5_of_an_official_wav_is_its_file_md5(sample_dir):
    clip = sample_dir / "blues/blues.00000.wav"
    assert audio_md5(clip) == md5_of(clip)


@pytest.mark.parametrize("suffix", [".wav", ".au"])
def test_real_clips_match_the_official_checksums(suffix, sample_dir, server, run_download, tmp_path):
    archive = make_tar_gz(clip_members(sample_dir, suffix=suffix), tmp_path / "genres.tar.gz")
    server.files["/genres.tar.gz"] = archive.read_bytes()
    tracks = run_download(data_params(server.url("/genres.tar.gz"), md5_of(archive)))
    assert len(tracks) == 50
    assert (tracks["status"] == "ok").all(), tracks[tracks["status"] != "ok"]


def test_a_damaged_or_unreadable_clip_is_flagged_and_kept(sample_dir, run_download, tmp_path):
    members = clip_members(sample_dir)
    damaged = bytearray(members["genres/jazz/jazz.00001.wav"])
    damaged[50_000:50_010] = bytes(10)
    members["genres/jazz/jazz.00001.wav"] = bytes(damaged)
    members["genres/jazz/jazz.00002.wav"] = b"\x00" * 1000
    tracks = run_download(data_params(str(make_tar_gz(members, tmp_path / "genres.tar.gz")))).set_index("track_id")
    assert tracks.at["jazz.00001", "status"].startswith("md5 differs from the official")
    assert tracks.at["jazz.00002", "status"].startswith("unreadable")
    assert (tracks.drop(["jazz.00001", "jazz.00002"])["status"] == "ok").all()
    assert (tmp_path / "raw/genres/jazz/jazz.00002.wav").is_file()


def test_demo_source_is_the_same_for_the_same_seed(tmp_path):
    def demo(name, seed):
        data = data_params("unused") | {"source": "demo", "demo_seed": seed}
        return download(data, raw=tmp_path / name, downloads=tmp_path / "downloads", checksums=CHECKSUMS)
    first, again, other = demo("a", 0), demo("b", 0), demo("c", 1)
    assert len(first) == 100 and (first["source"] == "demo").all()
    assert first["md5"].tolist() == again["md5"].tolist()
    assert first["md5"].tolist() != other["md5"].tolist()
