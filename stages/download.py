"""Stage `download`: the catalogue `data/raw/tracks.csv` of the tracks `data.source` names.

    python -m stages.download

Each source is one module of stages/sources/, run here: `gtzan` and `fma` download and verify
their archives, `demo` writes a synthetic corpus offline, `folder` and `table` only catalogue
what is already on this machine (the DVC stage keeps the name `download` for all of them).
"""

import importlib

from stages.core.errors import run
from stages.core.params import load_params


def main():
    source = load_params()["data"]["source"]
    importlib.import_module(f"stages.sources.{source}").main()


if __name__ == "__main__":
    run(main)
