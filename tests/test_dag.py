"""dvc.yaml is exactly right: each stage depends on the project modules it imports, and no other."""

import ast
import shutil

import pytest
import yaml

from conftest import PROJECT, set_dotted


def imported_modules(module, found=None):
    """The project files that importing `module` ("stages.extract") loads, itself and its package included."""
    found = set() if found is None else found
    path = f"{module.replace('.', '/')}.py"
    if path in found:
        return found
    found |= {path, "stages/__init__.py"}
    for node in ast.walk(ast.parse((PROJECT / path).read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "stages":
            names = [f"stages.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stages."):
            names = [node.module]
        for name in names:
            if name.startswith("stages.") and (PROJECT / f"{name.replace('.', '/')}.py").is_file():
                imported_modules(name, found)
    return found


def resolved_stages(folder, overrides):
    """{stage: (module run, project modules among its deps)} of dvc.yaml resolved with the params `overrides`."""
    from dvc.repo import Repo
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
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
    """What `download` must depend on under `source`: its source module and the helpers of every source.

    dvc.yaml names the active source's module with ${data.source}, but cannot list the rest per
    source: the helpers any source imports are listed for all of them.
    """
    helpers = set().union(*(imported_modules(f"stages.source_{other}") for other in SOURCES))
    return {path for path in helpers if not path.startswith("stages/source_")} | {f"stages/source_{source}.py"}


@pytest.mark.parametrize("setting", SETTINGS)
def test_every_stage_depends_on_exactly_the_modules_it_imports(setting, tmp_path):
    source = SETTINGS[setting].get("data.source", "gtzan")
    for stage, (module, declared) in resolved_stages(tmp_path / "repo", SETTINGS[setting]).items():
        expected = download_modules(source) if stage == "download" else imported_modules(module)
        assert declared == expected, f"stage {stage}"


def test_the_download_stage_runs_the_active_sources_module(tmp_path):
    assert resolved_stages(tmp_path / "demo", {"data.source": "demo"})["download"][0] == "stages.source_demo"
    assert resolved_stages(tmp_path / "folder", {"data.source": "folder"})["download"][0] == "stages.source_folder"


def test_imports_are_followed_through_other_project_modules():
    assert {"stages/audio.py", "stages/common.py", "stages/paths.py"} <= imported_modules("stages.catalogue")
