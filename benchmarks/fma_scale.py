"""Benchmark: the FMA source at scale, on a synthetic FMA-layout archive, locally and on a local Dask cluster.

    python benchmarks/fma_scale.py [--sizes 1000 10000 100000] [--audio 10000] [--seconds 5]

For each N, a fma_metadata.zip whose tracks.csv has N rows in FMA's format (two header rows and an
index row, 8 genres, FMA's split column), and a fma_small.zip holding MP3s for the first
min(N, --audio) tracks (clips of --seconds s encoded from the real sample clips, 50 distinct
encodings reused; the rest are catalogued as having no MP3 and never decoded). In a fresh clone:
`python -m stages.sources.fma` (download: reading the metadata and listing the zip), then
`python -m stages.extract` with 2 local worker processes and again on `dask scheduler` + 2
`dask worker --nthreads 1` processes on 127.0.0.1. Prints wall time per track, and the peak
resident memory of the driver (the stage's own process), sampled every 50 ms.
"""

import argparse
import io
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT), str(PROJECT / "tests"), str(PROJECT / "benchmarks")]
from conftest import SAMPLE_DIR, clone_project, run_in  # noqa: E402
from extract_scale import local_and_dask, measure  # noqa: E402
from test_cluster import Cluster  # noqa: E402

GENRES = {"blues": "Blues", "classical": "Classical", "country": "Country", "disco": "Electronic",
          "hiphop": "Hip-Hop", "jazz": "Jazz", "metal": "Rock", "pop": "Pop"}


def encoded_clips(seconds):
    """[(FMA genre, MP3 bytes)]: 50 clips of `seconds` s cut from the real sample clips of 8 genres."""
    clips = []
    for genre, fma_genre in GENRES.items():
        for k in range(5):
            audio, sr = sf.read(SAMPLE_DIR / genre / f"{genre}.{k:05d}.wav", dtype="float32")
            buffer = io.BytesIO()
            sf.write(buffer, audio[:round(seconds * sr)], sr, format="MP3")
            clips.append((fma_genre, buffer.getvalue()))
    return clips


def write_archives(folder, n_tracks, n_audio, clips):
    """(fma_metadata.zip, fma_small.zip) of `n_tracks` metadata rows, MP3s for the first `n_audio`."""
    ids = np.arange(2, 2 + n_tracks)
    genres = [clips[i % len(clips)][0] for i in range(n_tracks)]
    split = np.where(np.arange(n_tracks) % 10 < 8, "training", np.where(np.arange(n_tracks) % 10 == 8,
                                                                         "validation", "test"))
    columns = pd.MultiIndex.from_tuples([("track", "genre_top"), ("track", "title"), ("set", "split"),
                                         ("set", "subset"), ("artist", "id"), ("album", "title")])
    tracks = pd.DataFrame({columns[0]: genres, columns[1]: [f"track {i}" for i in ids], columns[2]: split,
                           columns[3]: "small", columns[4]: ids // 7, columns[5]: "an album"},
                          index=pd.Index(ids, name="track_id"))
    metadata, audio = folder / "fma_metadata.zip", folder / "fma_small.zip"
    with zipfile.ZipFile(metadata, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("fma_metadata/tracks.csv", tracks.to_csv())
    with zipfile.ZipFile(audio, "w", zipfile.ZIP_STORED) as zipped:
        for i, track in enumerate(ids[:n_audio]):
            name = f"{track:06d}"
            zipped.writestr(f"fma_small/{name[:3]}/{name}.mp3", clips[i % len(clips)][1])
    return metadata, audio


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--audio", type=int, default=10000, help="tracks that get an MP3 (the rest: metadata only)")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    if not (SAMPLE_DIR / "MD5SUMS.tsv").is_file():
        raise SystemExit(f"needs the real sample clips in {SAMPLE_DIR} (set GTZAN_SAMPLE_DIR)")
    n_values = 20 * (1 + round(args.seconds * 22050) // 512) // 1000 * 1000
    clips = encoded_clips(args.seconds)
    print(f"MP3 clips of {args.seconds:g} s, n_values {n_values}, {os.cpu_count()} cores; ms per track with audio, "
          "driver peak memory in MB")
    print(f"{'metadata rows':>13} {'with audio':>10}  {'download s':>10} {'driver':>6}   {'local ms':>8} {'driver':>6}"
          f"   {'dask ms':>7} {'driver':>6}  rows equal")
    cluster = Cluster(n_workers=2)
    try:
        for n_tracks in args.sizes:
            with tempfile.TemporaryDirectory() as temporary:
                folder = Path(temporary)
                n_audio = min(n_tracks, args.audio)
                metadata, audio = write_archives(folder, n_tracks, n_audio, clips)
                repo = clone_project(folder / "repo", {"data.source": "fma", "data.fma.metadata": [str(metadata)],
                                                       "data.fma.audio.small": [str(audio)], "features.n_jobs": 2,
                                                       "features.mfcc.n_values": n_values})
                download = measure([sys.executable, "-m", "stages.download"], repo)
                run_in(repo, sys.executable, "-m", "stages.pretrained")
                local, dask, equal = local_and_dask(repo, cluster)
                print(f"{n_tracks:13,d} {n_audio:10,d}  {download[0]:10.1f} {download[1]:6.0f}   "
                      f"{1000 * local[0] / n_audio:8.2f} {local[1]:6.0f}   {1000 * dask[0] / n_audio:7.2f} "
                      f"{dask[1]:6.0f}  {equal}", flush=True)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
