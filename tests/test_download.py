"""The GTZAN and demo sources: archives over loopback HTTP, local copies, safety, integrity."""

import errno
import hashlib
import os
import subprocess
import tarfile

import pandas as pd
import pytest
import yaml
from conftest import PARAMS_YAML, PROJECT, clip_members, make_tar_gz, make_zip, with_appledouble_files

from stages.core.errors import UserError, run
from stages.core.gtzan import GENRES
from stages.sources.archive import download_path
from stages.sources.demo import make_demo
from stages.sources.gtzan import download

CHECKSUMS = PROJECT / "data/gtzan/checksums.tsv"


def md5_of(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def with_checksum(url, md5=None):
    return f"{url}#md5={md5}" if md5 else url


def gtzan_params(url, md5=None, mirrors=()):
    """The data.gtzan group: `url` declared with `md5` (None: no checksum), then `mirrors` as they are."""
    return {"url": with_checksum(url, md5), "mirrors": list(mirrors)}


@pytest.fixture
def run_download(tmp_path):
    """download() into tmp_path/raw, keeping downloads in tmp_path/downloads."""
    def run(gtzan):
        return download(gtzan, raw=tmp_path / "raw", downloads=tmp_path / "downloads", checksums=CHECKSUMS)
    return run


@pytest.fixture
def tiny_archive(tiny_corpus, tmp_path):
    return make_tar_gz(clip_members(tiny_corpus), tmp_path / "genres.tar.gz")


def test_downloads_and_unpacks_a_gtzan_archive(server, tiny_archive, run_download, tmp_path):
    server.files["/genres.tar.gz"] = tiny_archive.read_bytes()
    tracks = run_download(gtzan_params(server.url("/genres.tar.gz"), md5_of(tiny_archive)))
    assert len(tracks) == 20
    assert list(tracks.columns) == ["track_id", "label", "path", "md5", "status", "source", "artist"]
    assert (tmp_path / "raw/genres/blues/blues.00000.wav").is_file()
    assert tracks["path"].iat[0] == f"{tmp_path.as_posix()}/raw/genres/blues/blues.00000.wav"
    assert pd.read_csv(tmp_path / "raw/tracks.csv")["track_id"].tolist() == tracks["track_id"].tolist()


def test_a_verified_download_is_never_fetched_again(server, tiny_archive, run_download):
    server.files["/genres.tar.gz"] = tiny_archive.read_bytes()
    params = gtzan_params(server.url("/genres.tar.gz"), md5_of(tiny_archive))
    run_download(params)
    run_download(params | {"mirrors": ["http://127.0.0.1:9/elsewhere.tar.gz"]})
    assert len(server.requests) == 1


def test_the_default_url_is_hugging_faces_pinned_revision_under_its_own_sha256():
    gtzan = yaml.safe_load(PARAMS_YAML)["data"]["gtzan"]
    assert gtzan["url"] == ("https://huggingface.co/datasets/marsyas/gtzan/resolve/"
                            "d2146561ecc7df707d9e6b8318885fe6a39668a2/data/genres.tar.gz"
                            "#sha256=b28cc067ff6199bd826f5d1a6931458586d64acae7f44b2e882b7a97af057531")


def test_the_default_mirrors_are_the_original_archive_under_its_md5():
    gtzan = yaml.safe_load(PARAMS_YAML)["data"]["gtzan"]
    assert gtzan["mirrors"] == [
        "https://web.archive.org/web/20220328223413/http://opihi.cs.uvic.ca/sound/genres.tar.gz"
        "#md5=5b3d6dddb579ab49814ab86dba69e7c7",
        "http://opihi.cs.uvic.ca/sound/genres.tar.gz#md5=5b3d6dddb579ab49814ab86dba69e7c7"]


def test_an_archive_like_hugging_faces_is_fetched_once_under_its_sha256_without_its_appledouble_files(
        server, sample_dir, run_download, tmp_path):
    archive = make_tar_gz(with_appledouble_files(clip_members(sample_dir)), tmp_path / "hf.tar.gz")
    server.files["/hf/genres.tar.gz"] = archive.read_bytes()
    sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
    tracks = run_download({"url": f"{server.url('/hf/genres.tar.gz')}#sha256={sha256}",
                           "mirrors": [with_checksum(server.url("/original.tar.gz"), "0" * 32)]})
    assert server.requests == [("/hf/genres.tar.gz", None)]
    assert len(tracks) == 50 and (tracks["status"] == "ok").all()
    assert not tracks["track_id"].str.startswith(".").any()
    assert not list((tmp_path / "raw").rglob("._*"))


def test_each_url_is_checked_against_its_own_checksum(server, tiny_archive, run_download):
    server.files["/a/genres.tar.gz"] = server.files["/b/genres.tar.gz"] = tiny_archive.read_bytes()
    sha256 = hashlib.sha256(tiny_archive.read_bytes()).hexdigest()
    tracks = run_download({"url": f"{server.url('/a/genres.tar.gz')}#sha256={'0' * 64}",
                           "mirrors": [f"{server.url('/b/genres.tar.gz')}#sha256={sha256}"]})
    assert len(tracks) == 20
    assert [path for path, _ in server.requests] == ["/a/genres.tar.gz", "/b/genres.tar.gz"]


def test_a_partial_download_of_one_url_is_never_resumed_from_another(server, tiny_archive, run_download, tmp_path):
    server.files["/b/genres.tar.gz"] = tiny_archive.read_bytes()
    part_of_a = download_path(server.url("/a/genres.tar.gz"), tmp_path / "downloads")
    part_of_a.parent.mkdir()
    part_of_a.with_name(part_of_a.name + ".part").write_bytes(b"the first half of another mirror's copy")
    run_download(gtzan_params(server.url("/b/genres.tar.gz"), md5_of(tiny_archive)))
    assert server.requests == [("/b/genres.tar.gz", None)]


def test_a_resumed_download_that_fails_verification_is_fetched_once_more_from_zero(
        server, tiny_archive, run_download, tmp_path):
    data = tiny_archive.read_bytes()
    url = server.url("/genres.tar.gz")
    server.files["/genres.tar.gz"] = data
    part = download_path(url, tmp_path / "downloads")
    part = part.with_name(part.name + ".part")
    part.parent.mkdir()
    part.write_bytes(b"bytes of an older copy" * 100)  # the server has changed the file since
    tracks = run_download(gtzan_params(url, md5_of(tiny_archive)))
    assert len(tracks) == 20
    assert server.requests == [("/genres.tar.gz", "bytes=2200-"), ("/genres.tar.gz", None)]


def test_without_a_checksum_a_changed_url_fetches_the_new_url(server, tiny_corpus, tiny_archive, run_download):
    server.files["/old/genres.tar.gz"] = tiny_archive.read_bytes()
    members = clip_members(tiny_corpus)
    del members["genres/rock/rock.00001.wav"]
    server.files["/new/genres.tar.gz"] = make_tar_gz(members, tiny_archive.with_name("new.tar.gz")).read_bytes()
    assert len(run_download(gtzan_params(server.url("/old/genres.tar.gz")))) == 20
    assert len(run_download(gtzan_params(server.url("/new/genres.tar.gz")))) == 19
    assert [path for path, _ in server.requests] == ["/old/genres.tar.gz", "/new/genres.tar.gz"]


def test_falls_back_to_a_mirror_when_the_first_url_is_dead(server, tiny_archive, run_download):
    server.files["/mirror/genres.tar.gz"] = tiny_archive.read_bytes()
    tracks = run_download(gtzan_params(server.url("/gone/genres.tar.gz"), md5_of(tiny_archive),
                                       mirrors=[server.url("/mirror/genres.tar.gz")]))
    assert len(tracks) == 20
    assert [path for path, _ in server.requests] == ["/gone/genres.tar.gz", "/mirror/genres.tar.gz"]


def test_a_first_url_serving_other_bytes_moves_on_to_the_next_mirror(server, tiny_archive, run_download):
    server.files["/other/genres.tar.gz"] = b"<html>a copy, but not the original bytes</html>"
    server.files["/mirror/genres.tar.gz"] = tiny_archive.read_bytes()
    tracks = run_download(gtzan_params(server.url("/other/genres.tar.gz"), md5_of(tiny_archive),
                                       mirrors=[server.url("/mirror/genres.tar.gz")]))
    assert len(tracks) == 20


def test_resumes_a_dropped_download_with_a_range_request(server, tiny_archive, run_download):
    data = tiny_archive.read_bytes()
    server.files["/genres.tar.gz"] = data
    server.drop_once.add("/genres.tar.gz")
    tracks = run_download(gtzan_params(server.url("/genres.tar.gz"), md5_of(tiny_archive)))
    assert len(tracks) == 20
    assert server.requests == [("/genres.tar.gz", None), ("/genres.tar.gz", f"bytes={len(data) // 2}-")]


def test_a_partial_download_left_by_an_earlier_run_is_resumed(server, tiny_archive, run_download, tmp_path):
    data = tiny_archive.read_bytes()
    server.files["/genres.tar.gz"] = data
    url = server.url("/genres.tar.gz")
    part = download_path(url, tmp_path / "downloads")
    part.parent.mkdir()
    part.with_name(part.name + ".part").write_bytes(data[:1000])
    run_download(gtzan_params(url, md5_of(tiny_archive)))
    assert server.requests == [("/genres.tar.gz", "bytes=1000-")]


def test_a_wrong_md5_names_expected_and_actual(server, tiny_archive, run_download, tmp_path):
    server.files["/genres.tar.gz"] = tiny_archive.read_bytes()
    with pytest.raises(UserError, match=f"expected md5 {'0' * 32}, got {md5_of(tiny_archive)}; fix the #md5= part"):
        run_download(gtzan_params(server.url("/genres.tar.gz"), "0" * 32))
    assert not (tmp_path / "raw").exists()


def test_no_network_names_the_urls_and_both_ways_forward(server, run_download, tmp_path):
    urls = [server.url("/a/genres.tar.gz"), "http://127.0.0.1:9/genres.tar.gz"]
    with pytest.raises(UserError) as error:
        run_download(gtzan_params(urls[0], mirrors=urls[1:]))
    advice, tried = str(error.value).split("\n")  # what to do first, in a readable line; then what was tried
    assert advice.startswith("cannot get GTZAN (no network?): try the offline demo: dvc exp run -S data.source=demo")
    assert "data.gtzan.url" in advice and len(advice) <= 160
    assert tried.startswith("  tried: ") and all(url in tried for url in urls)
    assert not (tmp_path / "raw").exists()


def test_an_html_error_page_is_not_kept_as_the_archive(server, tiny_archive, run_download, tmp_path):
    server.files["/login/genres.tar.gz"] = b"<!DOCTYPE html><html>Please sign in</html>"
    server.files["/mirror/genres.tar.gz"] = tiny_archive.read_bytes()
    tracks = run_download(gtzan_params(server.url("/login/genres.tar.gz"),
                                       mirrors=[server.url("/mirror/genres.tar.gz")]))
    assert len(tracks) == 20
    kept = download_path(server.url("/mirror/genres.tar.gz"), tmp_path / "downloads")
    assert list((tmp_path / "downloads").iterdir()) == [kept]
    assert md5_of(kept) == md5_of(tiny_archive)


def test_a_reply_cut_short_without_length_is_removed_so_the_next_run_fetches_again(
        server, tiny_archive, run_download, tmp_path):
    server.files["/genres.tar.gz"] = tiny_archive.read_bytes()
    server.cut_unsized.add("/genres.tar.gz")
    with pytest.raises(UserError, match="cut short or damaged.*removed it: run again") as error:
        run_download(gtzan_params(server.url("/genres.tar.gz")))
    assert "\n" not in str(error.value)
    assert not list((tmp_path / "downloads").iterdir()) and not (tmp_path / "raw").exists()
    server.cut_unsized.clear()
    assert len(run_download(gtzan_params(server.url("/genres.tar.gz")))) == 20


def test_a_full_disk_during_a_download_is_a_full_disk_and_no_mirror_is_tried(server, tiny_archive, run_download,
                                                                             monkeypatch):
    import stages.sources.archive
    server.files["/genres.tar.gz"] = tiny_archive.read_bytes()

    def full(url, part):
        raise OSError(errno.ENOSPC, "No space left on device", str(part))
    monkeypatch.setattr(stages.sources.archive, "fetch", full)
    with pytest.raises(OSError) as error:
        run_download(gtzan_params(server.url("/genres.tar.gz"), mirrors=[server.url("/mirror.tar.gz")]))
    assert error.value.errno == errno.ENOSPC


def test_a_url_without_a_file_name_is_downloaded_too(server, tiny_archive, run_download, tmp_path):
    server.files["/"] = tiny_archive.read_bytes()
    assert len(run_download(gtzan_params(server.url("/"), md5_of(tiny_archive)))) == 20
    assert download_path(server.url("/"), tmp_path / "downloads").is_file()


def test_a_local_path_among_the_mirrors_is_used_in_place(tiny_archive, run_download):
    tracks = run_download(gtzan_params("http://127.0.0.1:9/genres.tar.gz", md5_of(tiny_archive),
                                       mirrors=[str(tiny_archive)]))
    assert len(tracks) == 20 and tiny_archive.is_file()


def test_reads_the_kaggle_zip_layout_and_ignores_its_csvs(tiny_corpus, run_download, tmp_path):
    members = clip_members(tiny_corpus, prefix="Data/genres_original")
    members["Data/features_30_sec.csv"] = b"filename,label\n"
    archive = make_zip(members, tmp_path / "archive.zip")
    tracks = run_download(gtzan_params(str(archive)))
    assert len(tracks) == 20 and set(tracks["label"]) == set(GENRES)


def test_a_local_archive_is_used_in_place_and_kept(tiny_archive, run_download):
    run_download(gtzan_params(tiny_archive.as_uri(), md5_of(tiny_archive)))
    assert tiny_archive.is_file()


def test_reads_au_clips(tiny_corpus, run_download, tmp_path):
    archive = make_tar_gz(clip_members(tiny_corpus, suffix=".au"), tmp_path / "genres.tar.gz")
    tracks = run_download(gtzan_params(str(archive)))
    assert tracks["path"].str.endswith(".au").all() and len(tracks) == 20


@pytest.mark.parametrize("kind", ["traversal", "absolute", "symlink"])
def test_refuses_an_unsafe_tar_archive(kind, tiny_corpus, run_download, tmp_path):
    evil = tarfile.TarInfo({"traversal": "genres/../../escaped.wav", "absolute": "/tmp/escaped.wav",
                            "symlink": "genres/blues/blues.00099.wav"}[kind])
    if kind == "symlink":
        evil.type, evil.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive = make_tar_gz(clip_members(tiny_corpus), tmp_path / "evil.tar.gz", extra=[evil])
    with pytest.raises(UserError, match="unsafe member"):
        run_download(gtzan_params(str(archive)))
    assert not (tmp_path / "escaped.wav").exists() and not (tmp_path / "raw").exists()


def test_refuses_a_zip_with_a_path_traversal(tiny_corpus, run_download, tmp_path):
    members = clip_members(tiny_corpus) | {"../escaped.wav": b"RIFF"}
    with pytest.raises(UserError, match="unsafe member '../escaped.wav'"):
        run_download(gtzan_params(str(make_zip(members, tmp_path / "evil.zip"))))


def test_an_archive_without_gtzan_layout_is_refused(run_download, tmp_path):
    archive = make_tar_gz({"photos/cat.jpg": b"\xff\xd8", "music/song.wav": b"RIFF"}, tmp_path / "x.tar.gz")
    with pytest.raises(UserError, match="does not have GTZAN's layout"):
        run_download(gtzan_params(str(archive)))


def test_a_file_that_is_not_an_archive_is_refused_in_one_line(run_download, tmp_path):
    (tmp_path / "notes.txt").write_text("not an archive")
    with pytest.raises(UserError, match="not a .tar.gz or .zip archive") as error:
        run_download(gtzan_params(str(tmp_path / "notes.txt")))
    assert "\n" not in str(error.value)


def test_a_truncated_local_tar_gz_is_refused_in_one_line(tiny_archive, run_download, tmp_path):
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(tiny_archive.read_bytes()[:len(tiny_archive.read_bytes()) * 2 // 3])
    with pytest.raises(UserError, match="cut short or damaged") as error:
        run_download(gtzan_params(str(cut)))
    assert "\n" not in str(error.value) and cut.is_file(), "the user's own file is never deleted"


def test_real_clips_match_the_official_checksums(sample_dir, server, run_download, tmp_path):
    for suffix in (".wav", ".au"):
        archive = make_tar_gz(clip_members(sample_dir, suffix=suffix), tmp_path / f"genres{suffix}.tar.gz")
        tracks = run_download(gtzan_params(str(archive)))
        assert len(tracks) == 50
        assert (tracks["status"] == "ok").all(), tracks[tracks["status"] != "ok"]


def test_a_damaged_or_unreadable_clip_is_flagged_and_kept(sample_dir, run_download, tmp_path):
    members = clip_members(sample_dir)
    damaged = bytearray(members["genres/jazz/jazz.00001.wav"])
    damaged[50_000:50_010] = bytes(10)
    members["genres/jazz/jazz.00001.wav"] = bytes(damaged)
    members["genres/jazz/jazz.00002.wav"] = b"\x00" * 1000
    tracks = run_download(gtzan_params(str(make_tar_gz(members, tmp_path / "genres.tar.gz")))).set_index("track_id")
    assert tracks.at["jazz.00001", "status"].startswith("md5 differs from the official")
    assert tracks.at["jazz.00002", "status"] == "unreadable: cannot decode: Format not recognised."
    assert (tracks.drop(["jazz.00001", "jazz.00002"])["status"] == "ok").all()
    assert (tmp_path / "raw/genres/jazz/jazz.00002.wav").is_file()


def test_many_suspect_clips_are_summarised_in_a_few_lines(tiny_corpus, run_download, tmp_path, capsys):
    members = {name: b"\x00" * 100 for name in clip_members(tiny_corpus)}
    run_download(gtzan_params(str(make_tar_gz(members, tmp_path / "genres.tar.gz"))))
    report = capsys.readouterr().err.splitlines()
    assert sum(line.startswith("  suspect") for line in report) == 5
    assert "  ... and 15 more: see the status column of data/raw/tracks.csv" in report


def test_demo_source_is_the_same_for_the_same_seed(tmp_path):
    def demo(name, seed):
        return make_demo({"seed": seed, "clips_per_genre": 1}, raw=tmp_path / name)
    first, again, other = demo("a", 0), demo("b", 0), demo("c", 1)
    assert len(first) == 10 and (first["source"] == "demo").all()
    assert first["md5"].tolist() == again["md5"].tolist()
    assert first["md5"].tolist() != other["md5"].tolist()


@pytest.fixture
def full_disk(tmp_path):
    """A 2 MB tmpfs: a disk that fills up after one and a half demo clips."""
    folder = tmp_path / "small"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", folder],
                                           capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs as a full disk needs root")
    yield folder
    subprocess.run(["umount", folder], check=True)


def test_the_demo_corpus_on_a_full_disk_says_no_space_left_and_leaves_nothing(full_disk, capsys):
    with pytest.raises(SystemExit) as stopped:
        run(lambda: make_demo({"seed": 0, "clips_per_genre": 10}, raw=full_disk / "raw"))
    assert stopped.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith("error: no space left on device writing ") and error.count("\n") == 1
    assert list(full_disk.iterdir()) == []


# ---------------------------------------------------------------- declared checksums are never skipped

def test_an_uppercase_digest_is_checked_as_its_lowercase(server, tiny_archive, run_download):
    server.files["/genres.tar.gz"] = tiny_archive.read_bytes()
    digest = hashlib.sha256(tiny_archive.read_bytes()).hexdigest()
    assert len(run_download({"url": f"{server.url('/genres.tar.gz')}#sha256={digest.upper()}", "mirrors": []})) == 20
    wrong = ("0" * 63 + "A")
    with pytest.raises(UserError, match="checksum mismatch: expected sha256 0{63}a"):
        run_download({"url": f"{server.url('/genres.tar.gz')}#sha256={wrong}", "mirrors": []})


def test_an_uppercase_digest_of_a_local_archive_is_checked(tiny_archive, run_download):
    digest = hashlib.md5(tiny_archive.read_bytes()).hexdigest().upper()
    assert len(run_download({"url": f"{tiny_archive}#md5={digest}", "mirrors": []})) == 20
    with pytest.raises(UserError, match="checksum mismatch"):
        run_download({"url": f"{tiny_archive}#md5={'F' * 32}", "mirrors": []})


@pytest.mark.parametrize("fragment", ["crc32=deadbeef", f"sha256={'z' * 64}", "sha256=abc", "md5"])
def test_a_fragment_that_is_not_a_known_checksum_is_refused_before_any_download(
        fragment, server, tiny_archive, run_download):
    server.files["/genres.tar.gz"] = tiny_archive.read_bytes()
    with pytest.raises(UserError, match=r"#sha256=<64 hex digits>") as error:
        run_download({"url": f"{server.url('/genres.tar.gz')}#{fragment}", "mirrors": []})
    assert "\n" not in str(error.value) and server.requests == []


def test_a_fragment_that_is_not_a_known_checksum_is_a_params_error():
    from stages.core.params import validate
    params = yaml.safe_load(PARAMS_YAML)
    params["data"]["gtzan"]["url"] = "https://example.org/genres.tar.gz#crc32=deadbeef"
    with pytest.raises(UserError, match="params.yaml: 'data.gtzan.url' .*#sha256=<64 hex digits>"):
        validate(params)


def test_the_url_that_failed_its_checksum_is_named_before_the_next_is_tried(
        server, tiny_archive, run_download, capsys):
    server.files["/a/genres.tar.gz"] = server.files["/b/genres.tar.gz"] = tiny_archive.read_bytes()
    run_download({"url": f"{server.url('/a/genres.tar.gz')}#md5={'0' * 32}",
                  "mirrors": [with_checksum(server.url("/b/genres.tar.gz"), md5_of(tiny_archive))]})
    assert f"download: {server.url('/a/genres.tar.gz')} failed (checksum mismatch" in capsys.readouterr().err



# ---------------------------------------------------------------- hostile archives and servers

def test_a_server_that_trickles_is_given_up_after_a_bounded_stall(server, tmp_path):
    from stages.sources.archive import fetch
    server.files["/slow.tar.gz"] = b"x" * 100_000
    server.trickle.add("/slow.tar.gz")
    with pytest.raises(TimeoutError, match="stalled"):
        fetch(server.url("/slow.tar.gz"), tmp_path / "slow.part", attempts=2, stall_seconds=1, stall_bytes=1024)
    assert len(server.requests) == 2


def test_a_member_larger_than_any_clip_is_refused_before_it_is_written(tiny_corpus, tmp_path, run_download):
    members = clip_members(tiny_corpus)
    members["genres/blues/blues.00000.wav"] = b"\0" * (3 << 20)
    archive = make_tar_gz(members, tmp_path / "genres.tar.gz")
    import stages.sources.gtzan
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stages.sources.gtzan, "MAX_CLIP_BYTES", 2 << 20)
        with pytest.raises(UserError, match=r"blues.00000.wav is 3.1 MB, more than any GTZAN clip \(at most 2.1 MB"):
            run_download({"url": str(archive), "mirrors": []})
    assert not (tmp_path / "raw").exists()
