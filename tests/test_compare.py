"""Numbers you can compare: intervals, the paired test, and `python -m stages.compare` on real experiments."""

import json
import math
import sys

import pandas as pd
import pytest
from conftest import clone_project, copy_of, dvc, params_set, run_in
from scipy.stats import binomtest

from stages.compare import compare, paired_outcomes, verdict
from stages.core.errors import UserError
from stages.core.statistics import mcnemar_p, paired_difference_interval, wilson_interval


def predictions(outcomes, labels=("rock", "jazz")):
    """A confusion table with one track per outcome: True = predicted right."""
    actual = [labels[i % 2] for i in range(len(outcomes))]
    predicted = [a if right else labels[(labels.index(a) + 1) % 2] for a, right in zip(actual, outcomes)]
    return pd.DataFrame({"track_id": [f"t{i:03d}" for i in range(len(outcomes))], "actual": actual,
                         "predicted": predicted})


def paired(both, only_a, only_b, neither):
    """Two confusion tables with exactly these counts of paired outcomes."""
    a = [True] * both + [True] * only_a + [False] * only_b + [False] * neither
    b = [True] * both + [False] * only_a + [True] * only_b + [False] * neither
    return predictions(a), predictions(b)


def test_the_wilson_interval_is_scipys_wilson_interval():
    for correct, n in [(53, 100), (0, 20), (20, 20), (7, 9)]:
        expected = binomtest(correct, n).proportion_ci(0.95, method="wilson")
        assert wilson_interval(correct, n) == pytest.approx((expected.low, expected.high), abs=1e-9)


def test_the_mcnemar_p_value_is_the_exact_two_sided_binomial_tail():
    # 14 discordant tracks for B, 5 for A: p = 2 * P(X <= 5), X ~ Binomial(19, 1/2)
    expected = 2 * sum(math.comb(19, k) for k in range(6)) / 2 ** 19
    assert mcnemar_p(5, 14) == pytest.approx(expected, rel=1e-12)
    assert mcnemar_p(14, 5) == pytest.approx(expected, rel=1e-12)
    assert mcnemar_p(0, 0) == 1.0


def test_the_paired_difference_interval_holds_the_difference_and_turns_with_the_sides():
    low, high = paired_difference_interval(120, 5, 14, 61)
    assert low < (14 - 5) / 200 < high and -1 <= low and high <= 1
    assert paired_difference_interval(120, 14, 5, 61) == pytest.approx((-high, -low))



def test_the_paired_difference_interval_is_walds_on_many_tracks():
    both, only_a, only_b, neither, n = 1200, 50, 140, 610, 2000
    difference = (only_b - only_a) / n
    half_width = 1.959964 * math.sqrt(only_a + only_b - (only_b - only_a) ** 2 / n) / n
    assert paired_difference_interval(both, only_a, only_b, neither) == pytest.approx(
        (difference - half_width, difference + half_width), abs=0.002)


def test_compare_counts_the_paired_outcomes_and_says_it_in_plain_words():
    a, b = paired(120, 5, 14, 61)
    result = compare(a, b)
    assert result["table"] == {"both_right": 120, "only_a_right": 5, "only_b_right": 14, "both_wrong": 61}
    assert result["tracks"] == 200
    assert result["accuracy_a"] == 0.625 and result["accuracy_b"] == 0.67 and result["difference"] == 0.045
    assert result["p_value"] == pytest.approx(0.063568, abs=1e-6)
    assert verdict(result) == ("B is better on 14 tracks and worse on 5: p = 0.064, not significant at 0.05 (the "
                               "interval is approximate and excludes 0 here; the exact test is the stricter of the two)")


def test_compare_refuses_different_test_tracks_saying_how_many():
    a, b = paired(10, 2, 3, 5)
    with pytest.raises(UserError, match=r"different test tracks \(2 only in A, 2 only in B\)"):
        compare(a.iloc[2:], b.iloc[:-2])


def test_compare_refuses_tracks_labelled_differently():
    a, b = paired(10, 2, 3, 5)
    b.loc[0, "actual"] = "pop"
    with pytest.raises(UserError, match="give 1 test tracks different labels"):
        paired_outcomes(a, b)


@pytest.fixture(scope="module")
def two_experiments(readme_built, tmp_path_factory):
    """A copy of the demo repository after the README's commands: experiments `epochs-5` and `epochs-20` among them."""
    return copy_of(readme_built / "repo", tmp_path_factory.mktemp("compare"))


def test_compare_two_experiments_by_name(two_experiments):
    result = run_in(two_experiments, sys.executable, "-m", "stages.compare", "epochs-5", "epochs-20")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("A = epochs-5, B = epochs-20: ") and lines[0].endswith(" test tracks")
    assert lines[-1].startswith("B is better on ") and " at 0.05" in lines[-1]
    numbers = json.loads(run_in(two_experiments, sys.executable, "-m", "stages.compare", "epochs-5", "epochs-20",
                                "--json").stdout)
    test_tracks = len((two_experiments / "data/split/test.txt").read_text().splitlines())
    assert numbers["tracks"] == test_tracks and sum(numbers["table"].values()) == test_tracks
    eval_twenty = json.loads(dvc(two_experiments, "exp", "show", "--json").stdout)
    assert numbers["a"] == "epochs-5" and numbers["b"] == "epochs-20" and eval_twenty


def test_compare_with_no_arguments_is_head_against_the_workspace(two_experiments):
    numbers = json.loads(run_in(two_experiments, sys.executable, "-m", "stages.compare", "--json").stdout)
    assert (numbers["a"], numbers["b"]) == ("HEAD", "workspace")


def test_compare_names_a_side_that_does_not_exist_in_one_line(two_experiments):
    result = run_in(two_experiments, sys.executable, "-m", "stages.compare", "epochs-5", "no-such-run", check=False)
    assert result.returncode == 1
    assert result.stderr == ("error: 'no-such-run' is no experiment, branch, tag or commit here: "
                             "`dvc exp show` lists them\n")


def test_an_interval_that_excludes_zero_beside_not_significant_says_why():
    a, b = paired(2, 1, 7, 2)  # 7 against 1: p = 0.070, the difference's interval above 0
    result = compare(a, b)
    assert not result["significant"] and result["difference_ci95"][0] > 0
    assert verdict(result).endswith("not significant at 0.05 (the interval is approximate and excludes 0 here; "
                                    "the exact test is the stricter of the two)")


def test_compare_says_which_side_has_no_results_and_what_makes_them(repo, tmp_path):
    fresh = clone_project(tmp_path / "fresh")  # a clone: no run committed, none in the workspace
    result = run_in(fresh, sys.executable, "-m", "stages.compare", check=False)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: 'HEAD' has no metrics/confusion.csv: run its pipeline")


def test_compare_warns_when_the_workspaces_params_changed_since_its_metrics(two_experiments, tmp_path):
    copy = copy_of(two_experiments, tmp_path)
    with params_set(copy, {"epochs": 7}):
        result = run_in(copy, sys.executable, "-m", "stages.compare", "epochs-5", "workspace")
    assert ("compare: warning: the workspace's metrics are not what its params and code give now (train "
            "changed): run `dvc exp run` first") in result.stderr
