"""Stage `check_params`: the whole of params.yaml checked at every `dvc repro` and `dvc exp run`, first.

    python -m stages.check_params

DVC re-runs a stage only when something it declares changes, so a bad value of a param that no
stage depends on (`-S features.n_jobs=-3`, say) would otherwise end in nothing re-run and an
experiment recorded. This stage always runs (`always_changed`), reads only params.yaml, and stops
the run with the params schema's one line. Every stage depends on it through `download`; its
output never changes, so it re-runs nothing.
"""

from stages.core.errors import run
from stages.core.files import write_text
from stages.core.params import load_params
from stages.core.paths import PARAMS_CHECKED


def main():
    load_params()
    write_text(PARAMS_CHECKED, "params.yaml is valid: every stage after this one may read it\n")


if __name__ == "__main__":
    run(main)
