"""Feature tables: features computed elsewhere (Kaggle's GTZAN descriptors, embeddings), read from a CSV in chunks.

A table has one row per track, or one row per window of a track:
- the track: a `track_id` column, or else a `filename` column whose audio extension is dropped.
  Kaggle's names work as they come: `blues.00000.wav` is track `blues.00000`; a name whose stem
  ends in two dot-separated numbers, `blues.00000.3.wav` (its 3 s file), is window 3 of track `blues.00000`;
- the label: a `label` column;
- optionally a `window` column, numbering a track's rows (else they are numbered in the table's order),
  and an `artist` column (a track's first row names it);
- every other column is a numeric feature, except those listed in `data.table_ignore`.
No part of the table is held in memory beyond one chunk of rows and one key (track, window) per row.
"""

import re
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from stages.core.errors import UserError
from stages.core.paths import FEATURE_MATRIX, FEATURE_TRACKS, SKIPPED
from stages.core.rows import Extracted, RowWriter
from stages.core.tracks import RowsTable, SkippedTable
from stages.features.audio import AUDIO_SUFFIXES

CHUNK_ROWS = 20_000
"""Rows read at a time: about 10 MB of a table of 60 columns."""
WINDOW_NAME = re.compile(r"^(?P<track>.+\.\d+)\.(?P<window>\d+)$")
KEYS = ("track_id", "filename", "label", "window", "artist")
"""Columns that say which track and window a row is: never features."""


def columns(path):
    """The column names of the CSV table at `path`; raises UserError if it is not one a table can be read from."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"data.table is {path}, which is not a file: set it to a CSV feature table "
                        "(a track_id or filename column, a label column, feature columns)")
    if tarfile.is_tarfile(path) or zipfile.is_zipfile(path):  # pandas would read an archive's first member
        raise UserError(f"{path} is an archive, not a CSV table: unpack it and set data.table to the CSV inside")
    try:
        header = pd.read_csv(path, nrows=0).columns.tolist()
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not a CSV table ({' '.join(str(error).split())[:120]}): set data.table to one")
    if "label" not in header:
        raise UserError(f"{path} has no 'label' column: name the column of labels 'label'")
    if "track_id" not in header and "filename" not in header:
        raise UserError(f"{path} has neither a 'track_id' nor a 'filename' column: add one naming each row's track")
    return header


def feature_columns(header, ignore=()):
    """The feature columns of a table's `header`, in the table's order."""
    return [name for name in header if name not in KEYS and name not in ignore]


class Naming:
    """How a table's `filename` column names its rows, decided once by its first row for the whole table: each
    name a track (`blues.00000.wav`) or each a window of one (`blues.00000.3.wav`). The audio extension is
    dropped, but a track is never named by two files (`blues.00000.wav` and `blues.00000.au`)."""

    def __init__(self, path):
        self.path, self.windowed, self.first, self.file_of = path, None, None, {}

    def split(self, names, line):
        """(track ids, windows or None) of a chunk's names starting at `line`; raises UserError naming a row that
        does not follow the table's naming."""
        tracks, windows = [], []
        for offset, name in enumerate(names):
            suffix = PurePosixPath(name).suffix
            stem = name[:-len(suffix)] if suffix.lower() in AUDIO_SUFFIXES else name
            match = WINDOW_NAME.match(stem)
            if self.windowed is None:
                self.windowed, self.first = bool(match), (line + offset, name)
            if bool(match) != self.windowed:
                first_line, first = self.first
                raise UserError(f"{self.path}, line {line + offset}: " + (
                    f"'{name}' is not named as a window like line {first_line}'s '{first}'" if self.windowed else
                    f"'{name}' is named as a window, unlike line {first_line}'s '{first}'") +
                    ": name every row the same way (a track each, or <track>.<window>.<ext> each)")
            track = match["track"] if match else stem
            file = (line + offset, name if not match else stem[:match.start("window") - 1] + suffix)
            if self.file_of.setdefault(track, file)[1] != file[1]:
                raise UserError(f"{self.path}, line {line + offset}: '{name}' and line {self.file_of[track][0]}'s "
                                f"'{self.file_of[track][1]}' are both track {track}: keep the rows of one file")
            tracks.append(track)
            windows.append(int(match["window"]) if match else None)
        return tracks, windows if self.windowed else None


def keyed_chunks(path, ignore=(), chunk_rows=CHUNK_ROWS):
    """Yield (rows, first line number) chunks of the table, each with `track_id`, `label` and `window` columns.

    Raises UserError, naming the line, for a row without a track or label, a duplicated (track,
    window), or a track given two labels.
    """
    header = columns(path)
    id_column = "track_id" if "track_id" in header else "filename"
    text = {id_column: str, "label": str, "artist": str} | {name: str for name in ignore if name in header}
    seen, label_of, counted, values_seen, naming = set(), {}, {}, {}, Naming(path)
    features = feature_columns(header, ignore)
    reader = pd.read_csv(path, chunksize=chunk_rows, dtype=text, keep_default_na=False, na_values=[""])
    line = 2  # the header is line 1
    for chunk in reader:
        chunk = chunk.reset_index(drop=True)
        for column in (id_column, "label"):
            empty = chunk[column].isna() | (chunk[column].astype(str).str.strip() == "")
            if empty.any():
                raise UserError(f"{path}, line {line + int(np.argmax(empty.to_numpy()))}: no {column}: "
                                "every row needs one")
        broken = chunk[id_column].str.contains(r"[\r\n\u2028\u2029\x85]", regex=True).to_numpy()
        if broken.any():
            name = chunk[id_column].iat[int(np.argmax(broken))]
            raise UserError(f"{path}, line {line + int(np.argmax(broken))}: the track id {name!r} holds a line break: "
                            "rename the track")
        tracks, windows = ((chunk[id_column].tolist(), None) if id_column == "track_id"
                           else naming.split(chunk[id_column].tolist(), line))
        if "window" in header:
            windows = pd.to_numeric(chunk["window"], errors="coerce")
            not_whole = (windows.isna() | (windows % 1 != 0)).to_numpy()
            if not_whole.any():
                raise UserError(f"{path}, line {line + int(np.argmax(not_whole))}: the window column must hold "
                                "whole numbers")
            windows = windows.astype(int).tolist()
        if windows is None:
            # rows numbered in the table's order: a row repeating an earlier row of its track would become a window
            digests = pd.util.hash_pandas_object(chunk[features], index=False).to_numpy()
            windows = []
            for offset, (track, digest) in enumerate(zip(tracks, digests)):
                earlier = values_seen.setdefault((track, digest), line + offset)
                if earlier != line + offset:
                    raise UserError(f"{path}, line {line + offset}: repeats line {earlier} (track {track}, the same "
                                    "values): remove the duplicate")
                windows.append(counted.get(track, 0))
                counted[track] = windows[-1] + 1
        for offset, (track, window, label) in enumerate(zip(tracks, windows, chunk["label"])):
            if (track, window) in seen:
                raise UserError(f"{path}, line {line + offset}: track {track} window {window} is listed twice: "
                                "keep one row per track and window")
            seen.add((track, window))
            if label_of.setdefault(track, label) != label:
                raise UserError(f"{path}, line {line + offset}: track {track} is labelled {label} here and "
                                f"{label_of[track]} above: give a track one label")
        chunk = chunk.assign(track_id=tracks, window=windows)
        yield chunk, line
        line += len(chunk)


def catalogue_rows(path, ignore=()):
    """(track ids, labels, artists) of the table's tracks, in the order they first appear; artists "" without an
    `artist` column.

    Raises UserError for a table without rows or with one label, before anything is written.
    """
    label_of, artist_of = {}, {}
    for chunk, _ in keyed_chunks(path, ignore):
        artists = chunk["artist"].fillna("") if "artist" in chunk else [""] * len(chunk)
        for track, label, artist in zip(chunk["track_id"], chunk["label"], artists):
            label_of.setdefault(track, label)
            artist_of.setdefault(track, artist.strip())
    if not label_of:
        raise UserError(f"{path} has a header and no rows: set data.table to a table of features")
    labels = sorted(set(label_of.values()))
    if len(labels) < 2:
        raise UserError(f"{path} has one label, {labels[0]}: a classifier needs two or more")
    return list(label_of), list(label_of.values()), list(artist_of.values())


def numeric_rows(chunk, line, names, path):
    """(n_rows, len(names)) float32 of a chunk's feature columns; raises UserError naming the column or the line."""
    values = chunk[names]
    for name in names:
        if not pd.api.types.is_numeric_dtype(values[name]):
            bad = pd.to_numeric(values[name], errors="coerce").isna() & values[name].notna()
            raise UserError(f"{path}: column '{name}' is not numeric (line {line + int(np.argmax(bad.to_numpy()))}): "
                            "list it in data.table_ignore, or fix the value")
    missing = values.isna().to_numpy()
    if missing.any():
        row, column = np.argwhere(missing)[0]
        raise UserError(f"{path}, line {line + int(row)}: no value in column '{names[column]}': "
                        "fill it in, or list the column in data.table_ignore")
    wide = values.to_numpy(np.float64)
    with np.errstate(over="ignore"):
        rows = wide.astype(np.float32)
    bad = ~np.isfinite(rows)
    if bad.any():  # training on them would run to a NaN loss and a confident wrong number
        row, column = np.argwhere(bad)[0]
        value = wide[row, column]
        what = f"{value:g}, beyond float32" if np.isfinite(value) else f"{value:g}"
        raise UserError(f"{path}, line {line + int(row)}: column '{names[column]}' holds {what}: every feature "
                        "must be a finite number (fix the value, or list the column in data.table_ignore)")
    return rows


def extract_table(tracks, ignore, folder, block=4096):
    """Write the rows of the table of `tracks` (the catalogue, in its order) into the new folder `folder`.

    The rows are grouped by track in the catalogue's order, a track's windows in order, as extract
    orders audio rows: the table is read once in chunks into an unordered matrix, then copied in
    that order `block` rows at a time; tracks.csv and skipped.csv (empty) beside it, as extract
    writes them. Returns (dataset.Extracted, the recipe: {"kind": "table", "columns": feature column names}).
    """
    path = tracks["path"].iat[0]
    header = columns(path)
    if missing := [name for name in ignore if name not in header]:
        raise UserError(f"data.table_ignore names {missing[0]}, which {path} does not have: list only its columns "
                        f"that are not features, e.g. -S 'data.table_ignore=[]' for none")
    names = feature_columns(header, ignore)
    if not names:
        raise UserError(f"{path} has no feature columns besides {', '.join(KEYS)} and data.table_ignore")
    folder.mkdir()
    unordered = folder / ".unordered.npy"
    writer, keys = RowWriter(unordered, len(names)), []
    try:
        for chunk, line in keyed_chunks(path, ignore):
            writer.write(numeric_rows(chunk, line, names, path))
            keys.append(chunk[["track_id", "label", "window"]])
    finally:
        writer.close()
    keys = pd.concat(keys, ignore_index=True)
    rank = pd.Series(np.arange(len(tracks)), index=tracks["track_id"])
    order = np.lexsort((keys["window"].to_numpy(), rank.loc[keys["track_id"]].to_numpy()))
    matrix, writer = np.load(unordered, mmap_mode="r"), RowWriter(folder / FEATURE_MATRIX.name, len(names))
    try:
        for start in range(0, len(order), block):
            writer.write(matrix[order[start:start + block]])
    finally:
        writer.close()
        del matrix
        unordered.unlink()
    table = RowsTable(folder / FEATURE_TRACKS.name)
    for track, rows in keys.iloc[order].groupby("track_id", sort=False):
        table.write(track, rows["label"].iat[0], rows["window"].tolist(), "table")
    table.close()
    SkippedTable(folder / SKIPPED.name).close()
    return Extracted(table.n_rows, table.n_tracks, table.labels, 0, []), {"kind": "table", "columns": names}
