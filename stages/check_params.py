"""Stage `check_params`: the whole of params.yaml checked at every `dvc repro` and `dvc exp run`, first.

    python -m stages.check_params

DVC re-runs a stage only when something it declares changes, so a bad value of a param that no
stage depends on (`-S features.n_jobs=-3`, say) would otherwise end in nothing re-run and an
experiment recorded. This stage always runs (`always_changed`), reads only params.yaml, and stops
the run with the params schema's one line. Every stage depends on it through `download`; its
output never changes, so it re-runs nothing. It also checks that the folder or table the params
name is there, before DVC looks for it.
"""

from pathlib import Path

from stages.core.errors import UserError, run
from stages.core.files import write_text
from stages.core.params import load_params
from stages.core.paths import PARAMS_CHECKED


def check_inputs(data):
    """Raise UserError when the `data` params group names a folder or table that is not there: DVC would stop on
    the missing dependency with its own words before any stage could say what to set."""
    if data["source"] == "folder" and not Path(data["folder"]).is_dir():
        raise UserError(f"data.folder is {data['folder']}, which is not a folder here: set it to a folder of "
                        "<label>/<audio files>")
    if data["source"] == "table" and not Path(data["table"]).is_file():
        raise UserError(f"data.table is {data['table']}, which is not a file here: set it to a CSV feature table")


def main():
    check_inputs(load_params()["data"])
    write_text(PARAMS_CHECKED, "params.yaml is valid: every stage after this one may read it\n")


if __name__ == "__main__":
    run(main)
