"""dvc.yaml is exactly right: each stage depends on the project modules it imports, and no other."""

import ast
import shutil
from typing import NamedTuple

import pytest
import yaml
from conftest import PARAMS_YAML, PROJECT, set_dotted, write_params


def imported_modules(module, found=None):
    """The project files that importing `module` ("stages.extract") loads, itself and its packages included."""
    found = set() if found is None else found
    path = f"{module.replace('.', '/')}.py"
    if path in found:
        return found
    parts = module.split(".")
    found |= {path} | {"/".join(parts[:depth]) + "/__init__.py" for depth in range(1, len(parts))}
    for node in ast.walk(ast.parse((PROJECT / path).read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stages."):
            names = [node.module]
        for name in names:
            if name.startswith("stages.") and (PROJECT / f"{name.replace('.', '/')}.py").is_file():
                imported_modules(name, found)
    return found


def resolved_stages(folder, overrides):
    """{stage: (module run, project modules among its deps)} of dvc.yaml resolved with the params `overrides`."""
    from dvc.repo import Repo
    params = yaml.safe_load(PARAMS_YAML)
    for dotted, value in overrides.items():
        set_dotted(params, dotted, value)
    folder.mkdir()
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copy(PROJECT / "dvc.yaml", folder / "dvc.yaml")
    Repo.init(folder, no_scm=True)
    with Repo(folder) as repo:
        return {stage.name: (stage.cmd.split("python -m ")[1].split()[0],
                             {dep.def_path for dep in stage.deps if dep.def_path.startswith("stages/")})
                for stage in repo.index.stages}


SETTINGS = {
    "gtzan source, mfcc": {},
    "demo source": {"data.source": "demo"},
    "folder source, musicnn": {"data.source": "folder", "features.kind": "musicnn"},
}


SOURCES = ("gtzan", "demo", "folder", "table", "fma")


def download_modules(source):
    """What `download` must depend on under `source`: stages/download.py, the source's module, and the helpers of
    every source.

    dvc.yaml names the active source's module with ${data.source}, but cannot list the rest per
    source: the helpers any source imports are listed for all of them.
    """
    sources = {f"stages/sources/{other}.py" for other in SOURCES}
    helpers = set().union(imported_modules("stages.download"),
                          *(imported_modules(f"stages.sources.{other}") for other in SOURCES))
    return (helpers - sources) | {f"stages/sources/{source}.py"}


@pytest.mark.parametrize("setting", SETTINGS)
def test_every_stage_depends_on_exactly_the_modules_it_imports(setting, tmp_path):
    source = SETTINGS[setting].get("data.source", "gtzan")
    for stage, (module, declared) in resolved_stages(tmp_path / "repo", SETTINGS[setting]).items():
        expected = download_modules(source) if stage == "download" else imported_modules(module)
        assert declared == expected, f"stage {stage}"


def test_the_download_stage_depends_on_the_active_sources_module(tmp_path):
    demo = resolved_stages(tmp_path / "demo", {"data.source": "demo"})["download"][1]
    folder = resolved_stages(tmp_path / "folder", {"data.source": "folder"})["download"][1]
    assert "stages/sources/demo.py" in demo and "stages/sources/folder.py" not in demo
    assert "stages/sources/folder.py" in folder and "stages/sources/demo.py" not in folder


def test_imports_are_followed_through_other_project_modules():
    assert {"stages/features/audio.py", "stages/core/files.py", "stages/core/paths.py"} <= imported_modules(
        "stages.sources.catalogue")


# ---------------------------------------------------------------- the params and files each stage reads

class TracedParams(dict):
    """A params group that records, in `read`, the dotted key of every value a stage reads from it; iterating
    or copying a group reads all of it."""

    def __init__(self, data, read, prefix=""):
        super().__init__({key: TracedParams(value, read, f"{prefix}{key}.") if isinstance(value, dict) else value
                          for key, value in data.items()})
        self.read, self.prefix = read, prefix

    def __getitem__(self, key):
        value = super().__getitem__(key)
        if not isinstance(value, TracedParams):
            self.read.add(f"{self.prefix}{key}")
        return value

    def get(self, key, default=None):
        return self[key] if key in self else default

    def _everything(self):
        return {key: self[key] for key in super().keys()}

    def keys(self):
        return self._everything().keys()

    def __iter__(self):
        return iter(self.keys())

    def items(self):
        return self._everything().items()

    def values(self):
        return self._everything().values()

    def __or__(self, other):
        return self._everything() | other


NOT_DEPENDENCIES = {"features.n_jobs", "features.scheduler"}
"""Read by extract, but declared on purpose as no dependency: they say how the rows are computed, not what they are."""
READ_UNDER_ANOTHER_SETTING = {"pretrained.wheel": "read by pretrained under features.kind=musicnn only",
                              "features.musicnn.model": "read by pretrained under features.kind=musicnn only",
                              "data.table_ignore": "read by extract under data.source=table only",
                              "train.C": "read by train under train.head=logistic only"}
"""Declared for every setting because dvc.yaml cannot make a params entry conditional."""


def declared_leaves(params, declared):
    """The dotted leaf keys of `params` that the dvc.yaml params entries `declared` (groups or leaves) cover."""
    def leaves(value, prefix):
        if isinstance(value, dict):
            return set().union(*(leaves(item, f"{prefix}.{key}") for key, item in value.items()))
        return {prefix}
    found = set()
    for entry in declared:
        value = params
        for key in entry.split("."):
            value = value[key]
        found |= leaves(value, entry)
    return found


def run_traced(repo, module):
    """(the dotted params keys, the files under data/ relative to `repo`) that running `module`'s main() in `repo`
    reads."""
    import builtins
    import importlib
    import io
    from pathlib import Path

    import stages.core.params
    params, files, real_load, real_open = set(), set(), stages.core.params.load_params, io.open

    def traced_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, Path)) and not any(flag in mode for flag in "wax+"):
            path = Path(file).resolve()
            if path.is_relative_to(repo / "data"):
                files.add(path.relative_to(repo).as_posix())
        return real_open(file, mode, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(repo)
        patch.setattr(builtins, "open", traced_open)
        patch.setattr(io, "open", traced_open)
        imported = importlib.import_module(module)
        # stages.download runs a source's main(), which loads the params itself
        for name in [imported.__name__, *(f"stages.sources.{source}" for source in SOURCES)]:
            patch.setattr(importlib.import_module(name), "load_params",
                          lambda *args: TracedParams(real_load(*args), params), raising=False)
        imported.main()
    return params, files


class Traced(NamedTuple):
    """What a stage read when it ran, and what dvc.yaml declares for it."""
    params_read: set
    files_read: set
    params_declared: list
    deps: list
    outs: list


@pytest.fixture(scope="module")
def traced_stages(repo, tmp_path_factory):
    """{stage: Traced}, each stage's main() run once in-process in a copy of the demo repository (extract too:
    features.n_jobs 1, as worker processes would read copies of the params this process cannot trace)."""
    from dvc.repo import Repo
    copy = tmp_path_factory.mktemp("traced") / "repo"
    shutil.copytree(repo, copy, symlinks=True)
    write_params(copy, {"features.n_jobs": 1})
    with Repo(copy) as dvc_repo:
        declared = {stage.name: (stage.cmd.split("python -m ")[1].split()[0],
                                 [key for dep in stage.deps if hasattr(dep, "params") for key in dep.params],
                                 [dep.def_path for dep in stage.deps if not hasattr(dep, "params")],
                                 [out.def_path for out in stage.outs]) for stage in dvc_repo.index.stages}
    return {stage: Traced(*run_traced(copy, module), *rest) for stage, (module, *rest) in declared.items()}


def test_every_stage_reads_exactly_the_params_dvc_yaml_declares(traced_stages, repo):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for stage, traced in traced_stages.items():
        if stage == "check_params":
            continue  # it reads every param on purpose, and always runs: params_checks_is_first_and_always_runs
        read = traced.params_read - NOT_DEPENDENCIES
        covered = declared_leaves(params, traced.params_declared)
        assert read <= covered, f"stage {stage} reads params it does not declare: {read - covered}"
        assert covered - read <= set(READ_UNDER_ANOTHER_SETTING), f"stage {stage} declares {covered - read}"


def test_every_file_a_stage_reads_is_a_declared_dependency(traced_stages):
    for stage, traced in traced_stages.items():
        declared = traced.deps + traced.outs
        undeclared = {path for path in traced.files_read
                      if not any(path == entry or path.startswith(f"{entry.rstrip('/')}/") for entry in declared)}
        assert undeclared == set(), f"stage {stage} reads files dvc.yaml does not declare"


def test_every_cached_output_is_ignored_by_git_before_any_run():
    """Before a first `dvc repro` has finished (no network, say), git must already ignore what DVC caches:
    else the outputs of the stages that ran are untracked files a `git add -A` would commit."""
    import subprocess
    stages = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]
    cached = [out for stage in stages.values() for out in stage.get("outs", [])
              if isinstance(out, str) or next(iter(out.values())).get("cache", True)]
    assert "data/params-checked.txt" in cached
    kept = [out for out in cached
            if subprocess.run(["git", "check-ignore", "-q", "--no-index", out], cwd=PROJECT).returncode != 0]
    assert kept == []
