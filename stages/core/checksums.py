"""A file's checksum: declared as a pip-style fragment of its URL (`#sha256=<hex>`), parsed and checked here only.

Used by the downloader (stages/sources/archive.py) and by the params schema, which refuses a
malformed fragment before anything is downloaded.
"""

import hashlib
import re

from stages.core.errors import UserError
from stages.core.files import CHUNK

ALGORITHMS = {"md5": 32, "sha1": 40, "sha256": 64}
"""Checksum algorithm -> its length in hex digits."""
KNOWN = "#sha256=<64 hex digits> (or #sha1=<40>, #md5=<32>)"


def split_checksum(url):
    """(location, (algorithm, lowercase hex digest) or None) of a URL or path that may end in `#sha256=<hex>`.

    Hex digits are taken in either case (PowerShell's Get-FileHash prints them uppercase). Raises
    UserError for anything after '#' that is not a known algorithm with a digest of its length.
    """
    if "#" not in url:
        return url, None
    location, fragment = url.rsplit("#", 1)
    algorithm, _, digest = fragment.partition("=")
    length = ALGORITHMS.get(algorithm.lower())
    if length is None or not re.fullmatch(rf"[0-9a-fA-F]{{{length}}}", digest):
        raise UserError(f"'#{fragment[:80]}' after {location} is not a checksum: write {KNOWN}, or nothing")
    return location, (algorithm.lower(), digest.lower())


def file_digest(path, algorithm="md5"):
    """The lowercase hex digest of a file's bytes by a hashlib algorithm, read a chunk at a time."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_digest(path, checksum, location):
    """Raise UserError unless the file `path` has `checksum` (algorithm, lowercase hex), declared for `location`."""
    algorithm, expected = checksum
    actual = file_digest(path, algorithm)
    if actual != expected:
        raise UserError(f"checksum mismatch: expected {algorithm} {expected}, got {actual}; "
                        f"fix the #{algorithm}= part of {location} (leave it out to check the contents only)")
