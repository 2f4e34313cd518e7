"""Is B better than A? Two experiments compared track by track on the same test tracks.

    python -m stages.compare [A [B]] [--json]

A and B are anything `dvc exp show` lists: an experiment's name, a branch, a tag, a commit, or
`workspace` (default: HEAD against workspace). Each side's per-track predictions are its
`metrics/confusion.csv`, read with dvc.api. Prints the 2x2 table of paired outcomes, each
accuracy and the difference with their 95% intervals, and the exact McNemar p-value.
"""

import argparse
import io
import json

import pandas as pd

from stages.core.console import log
from stages.core.errors import UserError, run
from stages.core.paths import CONFUSION
from stages.core.statistics import (
    DIFFERENCE_INTERVAL,
    INTERVAL,
    TEST,
    mcnemar_p,
    paired_difference_interval,
    rounded,
    wilson_interval,
)

WORKSPACE = "workspace"
ALPHA = 0.05


def revision(side):
    """The git commit of `side`: an experiment's name, or whatever git resolves (a branch, tag or commit)."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo
    from dvc.repo.experiments.utils import resolve_name
    from scmrepo.exceptions import RevError
    try:
        with Repo() as repo:
            found = resolve_name(repo.scm, side).get(side)
            return repo.scm.get_ref(str(found)) if found else repo.scm.resolve_rev(side)
    except NotDvcRepoError:
        raise UserError("run python -m stages.compare inside the repository")
    except RevError:
        raise UserError(f"'{side}' is no experiment, branch, tag or commit here: `dvc exp show` lists them")


def predictions(side):
    """The (track_id, actual, predicted) table of `side`'s test tracks."""
    if side == WORKSPACE:
        if not CONFUSION.is_file():
            raise UserError(f"the workspace has no {CONFUSION}: run `dvc repro` first")
        return pd.read_csv(CONFUSION, dtype=str, keep_default_na=False)
    import dvc.api
    from dvc.exceptions import PathMissingError
    rev = revision(side)
    try:
        text = dvc.api.read(str(CONFUSION), rev=rev)
    except (FileNotFoundError, PathMissingError):
        raise UserError(f"'{side}' has no {CONFUSION}: run its pipeline to the end (`dvc exp run`) "
                        "and commit the results (git add dvc.lock metrics && git commit), then compare again")
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def paired_outcomes(a, b):
    """(both right, only A right, only B right, both wrong) of two prediction tables on the same tracks.

    Raises UserError when they were scored on different test tracks or give tracks different labels.
    """
    a, b = a.set_index("track_id"), b.set_index("track_id")
    only_in_a, only_in_b = a.index.difference(b.index), b.index.difference(a.index)
    if len(only_in_a) or len(only_in_b):
        raise UserError(f"the two were scored on different test tracks ({len(only_in_a)} only in A, "
                        f"{len(only_in_b)} only in B): compare experiments with the same data, seed and split.*")
    b = b.loc[a.index]
    relabelled = (a["actual"] != b["actual"]).sum()
    if relabelled:
        raise UserError(f"the two give {relabelled} test tracks different labels: they were trained on "
                        "different label sets, so their accuracies do not compare")
    right_a, right_b = a["predicted"] == a["actual"], b["predicted"] == b["actual"]
    return (int((right_a & right_b).sum()), int((right_a & ~right_b).sum()),
            int((~right_a & right_b).sum()), int((~right_a & ~right_b).sum()))


def compare(a, b):
    """Every number of the comparison of prediction tables `a` and `b` (B against A), as a dict."""
    both, only_a, only_b, neither = paired_outcomes(a, b)
    n = both + only_a + only_b + neither
    p = mcnemar_p(only_a, only_b)
    return {
        "tracks": n,
        "table": {"both_right": both, "only_a_right": only_a, "only_b_right": only_b, "both_wrong": neither},
        "accuracy_a": round((both + only_a) / n, 6), "accuracy_a_ci95": rounded(wilson_interval(both + only_a, n)),
        "accuracy_b": round((both + only_b) / n, 6), "accuracy_b_ci95": rounded(wilson_interval(both + only_b, n)),
        "difference": round((only_b - only_a) / n, 6),
        "difference_ci95": rounded(paired_difference_interval(both, only_a, only_b, neither)),
        "p_value": round(p, 6), "significant": p < ALPHA,
        "methods": {"accuracy": INTERVAL, "difference": DIFFERENCE_INTERVAL, "test": TEST},
    }


def verdict(result):
    """One line of plain words: `B is better on 14 tracks and worse on 5: p = 0.064, not significant at 0.05`.

    Newcombe's interval is approximate and McNemar's test exact, so near 0.05 the interval may exclude 0
    while the test finds no significance: the line then says which to believe.
    """
    table = result["table"]
    significance = "significant" if result["significant"] else "not significant"
    low, high = result["difference_ci95"]
    disagree = not result["significant"] and (low > 0 or high < 0)
    return (f"B is better on {table['only_b_right']} tracks and worse on {table['only_a_right']}: "
            f"p = {result['p_value']:.3f}, {significance} at {ALPHA}" +
            (" (the interval is approximate and excludes 0 here; the exact test is the stricter of the two)"
             if disagree else ""))


def warn_if_stale(*sides):
    """Warn when `workspace` is one of `sides` and its metrics are not what its params and code give now."""
    if WORKSPACE not in sides:
        return
    from dvc.repo import Repo
    with Repo() as repo:
        changed = [stage for stage in repo.status() if stage in ("train", "evaluate")]
    if changed:
        log(f"compare: warning: the workspace's metrics are not what its params and code give now "
            f"({', '.join(changed)} changed): run `dvc exp run` first")


def report(result, name_a, name_b):
    table, width = result["table"], max(len(name_a), len(name_b), 12)
    interval = "{:.3f} (95% CI {:.3f}-{:.3f})".format
    return "\n".join([
        f"A = {name_a}, B = {name_b}: {result['tracks']} test tracks",
        "",
        f"{'':{width}}  {'B right':>8}  {'B wrong':>8}",
        f"{'A right':{width}}  {table['both_right']:8}  {table['only_a_right']:8}",
        f"{'A wrong':{width}}  {table['only_b_right']:8}  {table['both_wrong']:8}",
        "",
        f"accuracy A  {interval(result['accuracy_a'], *result['accuracy_a_ci95'])}",
        f"accuracy B  {interval(result['accuracy_b'], *result['accuracy_b_ci95'])}",
        f"B - A       {result['difference']:+.3f} (95% CI {result['difference_ci95'][0]:+.3f} to "
        f"{result['difference_ci95'][1]:+.3f})",
        f"McNemar     p = {result['p_value']:.3f} (exact)",
        verdict(result),
    ])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m stages.compare",
                                     description="Compare two experiments track by track on their test tracks.")
    parser.add_argument("a", nargs="?", default="HEAD", help="experiment, branch, tag, commit or workspace (HEAD)")
    parser.add_argument("b", nargs="?", default=WORKSPACE, help="the same (workspace)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = compare(predictions(args.a), predictions(args.b))
    warn_if_stale(args.a, args.b)
    if args.json:
        print(json.dumps({"a": args.a, "b": args.b, **result, "verdict": verdict(result)}))
    else:
        print(report(result, args.a, args.b))


if __name__ == "__main__":
    run(main)
