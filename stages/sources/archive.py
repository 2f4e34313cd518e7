"""Getting a verified archive: a list of URLs tried in order, each with the checksum of its own bytes.

A URL carries its checksum as a pip-style fragment, `https://host/genres.tar.gz#sha256=<hex>`
(`md5`, `sha1` and `sha256` are known); a URL without one is accepted if it opens as an archive.
A local path or `file://` URL is used in place. A remote archive is downloaded into
data/downloads/, outside every DVC output, under a name that holds a hash of its URL: a resume
never splices two mirrors' bytes, and a verified download is never fetched again.
Used by every source that downloads (GTZAN, FMA).
"""

import gzip
import hashlib
import http.client
import re
import stat
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from stages.core.checksums import check_digest, split_checksum
from stages.core.console import log, progress
from stages.core.errors import UserError, no_space_left
from stages.core.files import CHUNK
from stages.core.paths import DOWNLOADS

TAR_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, zipfile.BadZipFile)


def local_path(location):
    """The path `location` names on this machine, or None for a remote URL."""
    parsed = urllib.parse.urlparse(location)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme in ("http", "https"):
        return None
    return Path(location).expanduser()


def download_path(location, downloads=DOWNLOADS):
    """Where a download of `location` is kept: `<12 hex digits of its URL's sha1>-<its file name, or "archive">`."""
    name = PurePosixPath(urllib.parse.urlparse(location).path).name or "archive"
    return Path(downloads) / f"{hashlib.sha1(location.encode()).hexdigest()[:12]}-{name}"


def received(response, stall_seconds=60, stall_bytes=64 << 10):
    """Yield the chunks of an HTTP response as they arrive; raise TimeoutError when fewer than `stall_bytes`
    arrive in `stall_seconds` (a server trickling a byte at a time never trips a read's own timeout)."""
    window_start, window_bytes = time.monotonic(), 0
    while chunk := response.read1(CHUNK):
        yield chunk
        window_bytes += len(chunk)
        if (elapsed := time.monotonic() - window_start) >= stall_seconds:
            if window_bytes < stall_bytes:
                raise TimeoutError(f"stalled: {window_bytes:,} bytes in {elapsed:.0f} s")
            window_start, window_bytes = time.monotonic(), 0


def fetch(url, part, attempts=5, timeout=30, stall_seconds=60, stall_bytes=64 << 10):
    """Download `url` into the file `part`, resuming what it already holds with HTTP Range requests.

    Retries up to `attempts` times after a dropped connection, a reply shorter than its
    Content-Length, or a stall (received). A download's stalls therefore cost at most
    attempts x stall_seconds (5 minutes). Returns whether any bytes were resumed rather than fetched in
    one go. Raises OSError or http.client.HTTPException when the server cannot be reached or keeps failing.
    """
    resumed = False
    for attempt in range(attempts):
        offset = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if offset and response.status != 206:
                    offset = 0  # the server ignores Range: start again
                remaining = int(response.headers.get("Content-Length", 0)) or None
                if offset:
                    resumed = True
                    log(f"download: resuming {url} at byte {offset:,}")
                chunks = received(response, stall_seconds, stall_bytes)
                got = 0
                with open(part, "ab" if offset else "wb") as file:
                    for chunk in progress(chunks, remaining, "download", unit="B", size=len):
                        file.write(chunk)
                        got += len(chunk)
                if remaining and got < remaining:
                    raise ConnectionError(f"got {got:,} of {remaining:,} bytes")
            return resumed
        except urllib.error.HTTPError as error:
            if error.code == 416:  # Range beyond the end: the part file is complete
                return True
            raise
        except (http.client.IncompleteRead, ConnectionError, TimeoutError) as error:
            if attempt == attempts - 1:
                raise
            log(f"download: connection dropped ({error.__class__.__name__}: {error}), retrying")


def verify(path, checksum, location):
    """Raise UserError unless the file has `checksum` ((algorithm, hex) or None) and opens as an archive."""
    if checksum is not None:
        log(f"download: verifying {path}")
        check_digest(path, checksum, location)
    check_opens(path)


def check_opens(path):
    """Raise UserError if `path` is not a tar or zip archive (an HTML error page, say)."""
    if zipfile.is_zipfile(path):
        return
    try:
        with tarfile.open(path, mode="r:*") as tar:
            tar.next()
    except (*TAR_ERRORS, OSError) as error:
        if no_space_left(error):
            raise
        raise UserError(f"{path} is not a .tar.gz or .zip archive")


def _download(location, checksum, downloads):
    """The verified download of `location` in `downloads`; raises UserError or OSError if it cannot be had."""
    archive = download_path(location, downloads)
    part = archive.with_name(archive.name + ".part")
    if archive.exists():
        try:
            verify(archive, checksum, location)
            return archive
        except UserError:
            archive.unlink()
    downloads.mkdir(parents=True, exist_ok=True)
    for from_zero in (False, True):
        resumed = fetch(location, part)
        try:
            verify(part, checksum, location)
            break
        except UserError:
            part.unlink()
            if from_zero or not resumed:
                raise
            # The kept bytes may come from a server that has since changed the file: once more from zero.
            log(f"download: {location} failed verification after a resume; fetching it again from the start")
    part.replace(archive)
    return archive


def _why(error):
    """Why a URL failed, in a few words: urllib's own reason where it gives one ("Not Found")."""
    return getattr(error, "reason", None) or error


def obtain_archive(urls, what, offline_help="", downloads=DOWNLOADS):
    """The first of `urls` that gives a verified archive, as (local path, whether it was downloaded).

    A downloaded archive is ours to remove if it turns out damaged; a local one never is.
    Raises UserError naming every URL and why it failed, with `what` (the data set's name) and `offline_help`.
    """
    failures = []
    declared = [split_checksum(url) for url in urls]  # a malformed checksum stops before any download
    for location, checksum in declared:
        if failures:
            location_failed, error = failures[-1]
            log(f"download: {location_failed} failed ({_why(error)}); trying the next URL")
        local = local_path(location)
        try:
            if local is not None:
                if not local.is_file():
                    raise UserError("not a file")
                verify(local, checksum, location)
                return local, False
            return _download(location, checksum, Path(downloads)), True
        except (OSError, http.client.HTTPException) as error:
            if no_space_left(error):
                raise  # another mirror would fill the same disk
            failures.append((location, error))
        except UserError as error:
            failures.append((location, error))
    tried = "; ".join(f"{location} ({_why(error)})" for location, error in failures)
    if all(isinstance(error, (OSError, http.client.HTTPException)) for _, error in failures):
        raise UserError(f"cannot get {what} (no network?): {offline_help}\n  tried: {tried}")
    raise UserError(f"cannot get {what} from {tried}")


# ---------------------------------------------------------------- reading members

def _unsafe(name):
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", name)


def _hidden(name):
    """A macOS `._<name>` AppleDouble file, `.DS_Store`, or anything in a hidden folder."""
    return any(part.startswith(".") for part in PurePosixPath(name).parts)


def members(archive):
    """Yield (name, size in bytes, open_binary) for every visible regular file of a tar or zip archive.

    Hidden members (`._<clip>.wav` beside every clip of some copies, `.DS_Store`) are skipped.
    Raises UserError for members with absolute paths, `..`, links or devices; reading an archive
    cut short raises one of TAR_ERRORS, here or from a member's stream.
    """
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                if _unsafe(info.filename) or stat.S_ISLNK(info.external_attr >> 16):
                    raise UserError(f"refusing {archive}: unsafe member '{info.filename}'")
                if not info.is_dir() and not _hidden(info.filename):
                    yield info.filename, info.file_size, lambda info=info: zipped.open(info)
        return
    with tarfile.open(archive, mode="r:*") as tar:
        for member in tar:
            if _unsafe(member.name) or not (member.isfile() or member.isdir()):
                raise UserError(f"refusing {archive}: unsafe member '{member.name}' "
                                "(absolute path, '..', link or device)")
            if member.isfile() and not _hidden(member.name):
                yield member.name, member.size, lambda member=member: tar.extractfile(member)
