"""The tracks table of data/raw: one row per audio file, with its label, checksum and status."""

import pandas as pd

from stages.core.console import log, progress
from stages.core.files import atomic_output
from stages.core.paths import RAW, RAW_TRACKS
from stages.features.audio import Unreadable, audio_md5

COLUMNS = ["track_id", "label", "path", "md5", "status", "source", "artist"]
"""path: where the audio is, relative to the repository (or absolute); status: "ok" or why it is suspect;
artist: as the source knows it, empty where it does not (such a track counts as its own artist)."""

SHOWN = 5
"""Suspect files printed by name; the rest are counted (all are in tracks.csv)."""


def clip_catalogue(staging, final, source, official=None, artists=None):
    """One row per clip `staging/genres/<label>/<clip>`, recorded at its path under `final`.

    md5 is the audio's (audio.audio_md5). With `official` ({track_id: md5}), `status` says
    why a clip is suspect; else it is "ok", or "unreadable: ..." for a clip that does not decode.
    `artists` ({track_id: artist}) fills the artist column, empty for a clip it does not name.
    """
    rows = []
    clips = sorted((staging / "genres").glob("*/*"))
    for clip in progress(clips, len(clips), "checksums"):
        track_id = clip.name.rsplit(".", 1)[0]
        try:
            md5, status = audio_md5(clip), "ok"
        except Unreadable as error:
            md5, status = "", f"unreadable: {error}"
        if official is not None and md5:
            if track_id not in official:
                status = "not in the official list"
            elif official[track_id] != md5:
                status = f"md5 differs from the official {official[track_id]}"
        path = final / clip.relative_to(staging)
        rows.append((track_id, clip.parent.name, path.as_posix(), md5, status, source, (artists or {}).get(track_id, "")))
    return pd.DataFrame(rows, columns=COLUMNS)


def summarize(tracks, shown=SHOWN):
    """A short report: counts, then the first `shown` suspect files and how many more."""
    suspect = tracks[tracks["status"] != "ok"]
    labels = tracks.loc[tracks["label"] != "", "label"].nunique()  # an excluded FMA track may have none
    lines = [f"download: {len(tracks)} files from {tracks['source'].iat[0]}, "
             f"{labels} labels, {len(tracks) - len(suspect)} ok, {len(suspect)} suspect"]
    lines += [f"  suspect {row.track_id}: {row.status}" for row in suspect.head(shown).itertuples()]
    if len(suspect) > shown:
        lines.append(f"  ... and {len(suspect) - shown} more: see the status column of data/raw/tracks.csv")
    return "\n".join(lines)


def write_catalogue(tracks, raw=RAW):
    """Make `raw` hold only `tracks` as its tracks.csv, for a source whose audio is read in place; log the summary."""
    with atomic_output(raw) as staging:
        staging.mkdir()
        tracks.to_csv(staging / RAW_TRACKS.name, index=False)
    log(summarize(tracks))
    return tracks
