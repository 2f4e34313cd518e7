"""Source `folder` (run by stage `download`): your own labelled music, read in place.

`data.folder` holds one folder per label, its audio files inside (at any depth):
`<label>/<file>`. Labels are the folder names, whatever their characters. The audio is not
copied: `data/raw/tracks.csv` (catalogue.COLUMNS) records where each file is, so a large
collection is stored once; DVC hashes the folder as a dependency of this stage.
"""

import os
from pathlib import Path

import mutagen
import pandas as pd
import soundfile as sf

from stages.core.checksums import file_digest
from stages.core.console import progress
from stages.core.errors import UserError
from stages.core.params import load_params
from stages.features.audio import AUDIO_SUFFIXES
from stages.sources.catalogue import COLUMNS, write_catalogue


def _visible(path, root):
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def _check_name(path, folder):
    """Raise UserError for a file or folder whose name the pipeline cannot carry as it is."""
    name = path.relative_to(folder).as_posix()
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"the name of {os.fsencode(path)!r} is not UTF-8 text: rename it")
    if "\n" in name:
        raise UserError(f"the name of {name!r} in {folder} holds a line break: rename it")
    if path.is_symlink():
        raise UserError(f"{name!r} in {folder} is a symbolic link, which DVC does not follow when it checks "
                        "data.folder for changes: move or copy what it points to into the folder")


def scan(folder):
    """{label: [audio files]} of `folder`, labels sorted; raises UserError for a layout that cannot train.

    Symbolic links inside the folder are refused: the scan would follow them, but DVC's hash of the
    folder does not, so a change behind one would never re-run the pipeline.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"data.folder is {folder}, which is not a folder: set it to a folder of "
                        "<label>/<audio files> in params.yaml")
    labels = {}
    for label in sorted(p for p in folder.iterdir() if _visible(p, folder) and (p.is_dir() or p.is_symlink())):
        _check_name(label, folder)
        entries = [p for p in label.rglob("*") if _visible(p, folder)]
        for entry in entries:
            _check_name(entry, folder)
        files = sorted(p for p in entries if p.is_file())
        audio = [p for p in files if p.suffix.lower() in AUDIO_SUFFIXES]
        if not audio:
            raise UserError(f"the label folder '{label.name}' in {folder} holds no audio files "
                            f"({', '.join(sorted(AUDIO_SUFFIXES))}): add some, or remove the folder")
        labels[label.name] = audio
    if len(labels) < 2:
        raise UserError(f"{folder} holds {len(labels)} label folder(s) ({', '.join(labels) or 'none'}); "
                        "a classifier needs at least 2: <label>/<audio files>")
    return labels


def artist_tag(path):
    """The artist a file's tags name (ID3, Vorbis comment, MP4, or a WAV's RIFF INFO), or "" if none."""
    try:
        tags = getattr(mutagen.File(path, easy=True), "tags", None)
    except (mutagen.MutagenError, OSError):
        tags = None
    if tags is not None and tags.get("artist"):
        return str(tags["artist"][0]).strip()
    try:
        with sf.SoundFile(path) as audio:  # a WAV's INFO chunk, which mutagen does not read
            return (audio.copy_metadata().get("artist") or "").strip()
    except (sf.SoundFileError, RuntimeError, OSError):
        return ""


def folder_catalogue(folder):
    """The tracks table of `folder`: track_id is the file's path below `folder`, md5 the file's, artist its tag.

    A file with the same bytes as an earlier one (under any label) is marked "duplicate of <track_id>";
    extract skips it, so no recording is on both sides of a split.
    """
    folder = Path(folder)
    files = [(label, path) for label, paths in scan(folder).items() for path in paths]
    first_of, rows = {}, []
    for label, path in progress(files, len(files), "checksums", unit="files"):
        track_id = path.relative_to(folder).as_posix()
        md5 = file_digest(path)
        status = f"duplicate of {first_of[md5]}" if md5 in first_of else "ok"
        first_of.setdefault(md5, track_id)
        rows.append((track_id, label, path.as_posix(), md5, status, "folder", artist_tag(path)))
    return pd.DataFrame(rows, columns=COLUMNS)


def queued_copy(cwd=None):
    """Whether this runs in the temporary copy of the repository that `dvc exp run --queue` makes."""
    return "/.dvc/tmp/exps/" in (cwd or Path.cwd()).as_posix() + "/"


def main():
    folder = load_params()["data"]["folder"]
    try:
        write_catalogue(folder_catalogue(folder))
    except UserError:
        if queued_copy() and not Path(folder).is_absolute():
            raise UserError(f"a queued experiment runs in a temporary copy of the repository, where the files "
                            f"in data.folder={folder} that git does not track are absent: set data.folder to an "
                            "absolute path, or track the music with git or `dvc add`")
        raise
