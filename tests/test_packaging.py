"""What the repository promises: Binder matches pyproject, notebooks are stored clean,
every lesson has its Colab cell and badge, the README names the two commands CI runs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import nbformat
import pytest

from tools.address import read_address

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# conda-forge spells a few packages differently from PyPI
CONDA_NAMES = {"torch": "pytorch-cpu"}


def _requirements(lines):
    out = {}
    for line in lines:
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:>=\s*([0-9][0-9.]*))?", line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def _environment(path: Path) -> dict:
    import yaml

    env = yaml.safe_load(path.read_text())
    deps = {}
    for d in env["dependencies"]:
        if isinstance(d, dict):
            deps.update(_requirements(d["pip"]))
        elif not d.startswith(("python", "pip")) or d.startswith("pip:"):
            deps.update(_requirements([d]))
    return deps


@pytest.mark.parametrize("env_file", ["environment.yml", "binder/environment.yml"])
def test_binder_environment_declares_the_same_dependencies(env_file):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # Binder opens JupyterLab: the hard dependencies and the `lab` extra
    wanted = _requirements(project["dependencies"] + project["optional-dependencies"]["lab"])
    have = _environment(ROOT / env_file)
    for name, lower in wanted.items():
        conda = CONDA_NAMES.get(name, name)
        assert conda in have, f"{env_file} lacks {conda} (pyproject: {name}>={lower})"
        assert have[conda] == lower, f"{env_file}: {conda}>={have[conda]} but pyproject says >={lower}"
    extra = set(have) - {CONDA_NAMES.get(n, n) for n in wanted}
    assert not extra, f"{env_file} installs what pyproject does not declare: {extra}"


def test_jupyterlab_is_an_extra_not_a_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "jupyterlab" not in _requirements(project["dependencies"])  # Colab has none; it could move jupyter_server
    assert "jupyterlab" in _requirements(project["optional-dependencies"]["lab"])


def test_colab_safe_bounds():
    deps = _requirements(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    assert deps["ipywidgets"] == "7.6"  # Colab ships 7.7.1: never force 8
    text = (ROOT / "pyproject.toml").read_text()
    assert '"torch>=' in text and "torch==" not in text and "torch<" not in text  # reuse Colab's torch


def test_the_notebooks_are_numbered_without_gaps():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(len(NOTEBOOKS))] and len(NOTEBOOKS) >= 15


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_clean_with_colab_cell_and_badge(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has stored outputs"
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code.source == read_address(ROOT).install_cell(), f"{path.name}: run python -m tools.address"
    badge = read_address(ROOT).colab_url(f"notebooks/{path.name}")
    assert badge in nb.cells[0].source, f"{path.name}: no Open in Colab badge pointing at itself"
    last_code = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert "assert" in last_code.source, f"{path.name}: the last code cell should check the lesson's claim"


def test_readme_has_the_two_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text()
    assert 'pip install -e ".[lab]" && jupyter lab notebooks/00_start_here.ipynb' in readme
    assert 'pip install -e ".[test]" && pytest' in readme
    assert 'pip install -e ".[test]" && pytest' in (ROOT / ".ci" / "run").read_text()
