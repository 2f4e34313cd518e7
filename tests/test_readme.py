"""The front page: short, its links resolving, and every command of its quick start and design card run as written."""

import json
import re

import pytest
from conftest import PROJECT, README, readme_commands, readme_section

EVALUATE_LINE = re.compile(r"^evaluate: test accuracy \d\.\d{3} \(95% CI \d\.\d{3}-\d\.\d{3}, \d+ tracks\), "
                           r"macro F1 \d\.\d{3}$", re.M)


def test_the_readme_fits_on_a_few_screens():
    assert len(README.encode()) <= 12 * 1024


def test_every_link_to_the_docs_resolves():
    links = set(re.findall(r"\]\((docs/[^)#]+)", README))
    assert {"docs/data.md", "docs/features.md", "docs/own-music.md", "docs/trust.md", "docs/scaling.md",
            "docs/sharing.md", "docs/figures.md"} <= links
    for doc in PROJECT.glob("docs/*.md"):
        links |= {f"docs/{target}" for target in re.findall(r"\]\(([^)#:]+\.md)", doc.read_text())}
    assert [link for link in sorted(links) if not (PROJECT / link).is_file()] == []


def test_the_quick_start_is_install_and_run_then_install_and_test_which_ci_runs():
    install_and_run, install_and_test, *_ = readme_commands("Quick start")
    assert install_and_run.endswith("pip install -r requirements.txt && dvc repro")
    assert install_and_test.endswith("pip install -r requirements-test.txt && python -m pytest")
    assert "pip install -r requirements-test.txt && python -m pytest" in (PROJECT / ".ci/run").read_text()


@pytest.fixture(scope="module")
def ran(readme_built):
    """{command: {"stdout", "stderr", "params_diff"}}: the README's offline demo, four commands and comparison, run in
    order in a fresh clone; params_diff is `git diff` of params.yaml right after the command."""
    return json.loads((readme_built / "results.json").read_text())


def output(result):
    return result["stdout"] + result["stderr"]


def test_the_offline_demo_prints_the_evaluate_line_the_readme_shows(ran):
    result = ran["dvc exp run -S data.source=demo"]
    shown = re.search(r"`(evaluate: test accuracy [^`]+)`", readme_section("Quick start")).group(1)
    assert EVALUATE_LINE.search(output(result))
    assert shown in output(result).splitlines()


def test_dvc_exp_run_epochs_20_re_runs_train_and_evaluate_only(ran):
    result = output(ran["dvc exp run -S epochs=20"])
    assert re.findall(r"Running stage '(\w+)'", result) == ["check_params", "train", "evaluate"]
    assert EVALUATE_LINE.search(result)


def test_exp_run_with_s_changes_only_that_keys_line_of_params_yaml(ran):
    changed = [line for line in ran["dvc exp run -S epochs=20"]["params_diff"].splitlines()
               if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))]
    assert changed == ["-epochs: 10                 # training epochs of the network",
                       "+epochs: 20                 # training epochs of the network"]


def test_metrics_diff_compares_the_workspace_with_the_committed_baseline(ran):
    diff = ran["dvc metrics diff"]
    assert "failed to load" not in output(diff)
    epochs = next(line.split() for line in diff["stdout"].splitlines() if "epochs" in line)
    assert epochs == ["metrics/train.json", "epochs", "10", "20", "10"]


def test_plots_show_writes_the_page(ran):
    assert ran["dvc plots show"]["stdout"].strip().endswith("dvc_plots/index.html")


def test_exp_show_fits_120_columns_with_params_accuracy_interval_and_macro_f1(ran):
    shown = ran[next(command for command in ran if command.startswith("dvc exp show"))]["stdout"]
    header = next(line for line in shown.splitlines() if "Experiment" in line).split()
    assert header[1:] == ["accuracy", "accuracy_low", "accuracy_high", "macro_f1", "params.yaml:epochs"]
    assert max(len(line.rstrip()) for line in shown.splitlines()) <= 120 and "…" not in shown


def test_compare_with_no_names_is_the_baseline_against_the_workspace(ran):
    printed = ran["python -m stages.compare"]["stdout"]
    assert printed.startswith("A = HEAD, B = workspace: 20 test tracks")


def test_compare_prints_the_table_and_the_verdict_the_readme_shows(ran):
    printed = ran["python -m stages.compare epochs-5 epochs-20"]["stdout"]
    shown = re.search(r"```\n(A = epochs-5.*?)```", readme_section("Comparing experiments"), re.S).group(1)
    assert printed == shown


def test_the_params_table_gives_the_declared_defaults():
    from stages.core.params import Params

    def declared(dotted):
        value = Params()
        for key in dotted.split("."):
            value = getattr(value, key)
        return value

    def written(value):
        if isinstance(value, tuple):
            return f"[{', '.join(map(str, value))}]"
        return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)

    compared = 0
    table = readme_section("Params (`params.yaml`)")
    for keys, defaults in re.findall(r"^\| (`[a-z0-9_.`, ]+`) \| ([^|]+) \|", table, re.M):
        names = [name.strip("`") for name in keys.split(", ")]
        group = names[0].rsplit(".", 1)[0] if "." in names[0] else ""
        dotted = [group + name if name.startswith(".") else name for name in names]
        for name, default in zip(dotted, defaults.split(", ")):
            literal = default.strip().strip("`")
            if re.fullmatch(r"[\w.\[\]]+", literal) and literal != "-":
                assert literal == written(declared(name)), name
                compared += 1
    assert compared >= 23
