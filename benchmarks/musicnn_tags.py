"""The top-5 tags a Keras port of the musicnn wheel (MSD_musicnn by default) gives a real sample clip of each genre.

    python benchmarks/musicnn_tags.py [--clip 0] [--model MSD_musicnn]

Prints a Markdown table (the one in the README). Needs GTZAN_SAMPLE_DIR and pip access to PyPI.
"""

import argparse
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT), str(PROJECT / "tests")]

import numpy as np  # noqa: E402
from conftest import SAMPLE_DIR  # noqa: E402

from stages.core.gtzan import GENRES  # noqa: E402
from stages.core.params import MUSICNN_LAYERS  # noqa: E402
from stages.features.audio import load_audio  # noqa: E402
from stages.features.musicnn import TAGS, patch_outputs, pretrained_model  # noqa: E402
from stages.pretrained import download_wheel, unpack_checkpoint  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=int, default=0)
    parser.add_argument("--model", default="MSD_musicnn", choices=list(MUSICNN_LAYERS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        unpack_checkpoint(download_wheel(folder), Path(folder) / "pretrained", args.model)
        model = pretrained_model(args.model, Path(folder) / "pretrained" / args.model)
    tags = TAGS[args.model]
    print("| clip | top-5 tags (mean probability over the 3 s patches) |\n| --- | --- |")
    for genre in GENRES:
        track = f"{genre}.{args.clip:05d}"
        y = load_audio(SAMPLE_DIR / genre / f"{track}.wav", 22050)
        mean = patch_outputs(y, 22050, model)["taggram"].mean(axis=0)
        print(f"| {track} | " + ", ".join(f"{tags[i]} {mean[i]:.2f}" for i in np.argsort(-mean)[:5]) + " |")


if __name__ == "__main__":
    main()
