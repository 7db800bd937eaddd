"""The kit's address lives in pyproject.toml alone: every badge and install cell agrees with
it, a fork changes it with one command, and the install cell does what it says."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from tools import address

ROOT = Path(__file__).resolve().parents[1]


def test_every_badge_and_install_cell_agrees_with_pyproject():
    problems = address.sync(ROOT, write=False)
    assert not problems, "run `python -m tools.address` to rewrite them:\n" + "\n".join(problems)


def test_the_address_is_a_real_looking_github_repository_and_not_the_old_one():
    a = address.read_address(ROOT)
    assert a.repository.startswith("https://github.com/") and a.slug.count("/") == 1
    assert a.slug != "cnnviz-widgets/cnnviz-widgets"  # the address that did not exist (issue 28)
    assert a.package == "cnnviz-widgets"


def test_the_site_build_reads_the_same_address():
    spec = importlib.util.spec_from_file_location("cnnviz_site_build_address", ROOT / "docs" / "site" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.REPOSITORY == address.read_address(ROOT).slug


@pytest.fixture
def repo_copy(tmp_path):
    """The files the tool writes, copied: pyproject, README, the conventions, two lessons."""
    root = tmp_path / "fork"
    (root / "docs").mkdir(parents=True)
    (root / "notebooks").mkdir()
    for rel in ("pyproject.toml", "README.md", "docs/LESSON_CONVENTIONS.md",
                "notebooks/00_start_here.ipynb", "notebooks/06_occlusion.ipynb"):
        shutil.copy(ROOT / rel, root / rel)
    return root


def test_a_fork_sets_its_address_with_one_command(repo_copy, capsys):
    fork = "https://github.com/a-teacher/convnet-course"
    assert address.main(["--set", fork, "--root", str(repo_copy)]) == 0
    assert address.read_address(repo_copy).repository == fork
    assert address.main(["--check", "--root", str(repo_copy)]) == 0
    readme = (repo_copy / "README.md").read_text()
    assert "mybinder.org/v2/gh/a-teacher/convnet-course/main" in readme
    assert "colab.research.google.com/github/a-teacher/convnet-course/blob/main/notebooks/00_start_here.ipynb" in readme
    nb = json.loads((repo_copy / "notebooks" / "06_occlusion.ipynb").read_text())
    assert "a-teacher/convnet-course/blob/main/notebooks/06_occlusion.ipynb" in "".join(nb["cells"][0]["source"])
    assert "git+https://github.com/a-teacher/convnet-course@v" in "".join(nb["cells"][1]["source"])
    everything = "".join(p.read_text() for p in repo_copy.rglob("*") if p.is_file())
    old = address.read_address(ROOT).slug
    assert old not in everything
    pyproject = (repo_copy / "pyproject.toml").read_text()
    assert pyproject.count("[project.urls]") == 1 and f'Issues = "{fork}/issues"' in pyproject
    # the rest of pyproject is untouched
    assert pyproject.split("[project.urls]")[0] == (ROOT / "pyproject.toml").read_text().split("[project.urls]")[0]


def test_check_names_the_file_that_disagrees(repo_copy, capsys):
    path = repo_copy / "notebooks" / "06_occlusion.ipynb"
    path.write_text(path.read_text().replace(address.read_address(ROOT).slug, "someone/else"))
    assert address.main(["--check", "--root", str(repo_copy)]) == 1
    out = capsys.readouterr().out
    assert "notebooks/06_occlusion.ipynb: its Colab badge" in out and "00_start_here" not in out
    assert "someone/else" in out
    assert address.main(["--root", str(repo_copy)]) == 0  # the plain command puts it right
    assert address.main(["--check", "--root", str(repo_copy)]) == 0


def test_an_address_that_is_not_a_github_repository_is_refused(repo_copy):
    with pytest.raises(SystemExit, match="is not a GitHub repository address; give it as https://github.com/OWNER/NAME"):
        address.main(["--set", "https://gitlab.com/a/b/c", "--root", str(repo_copy)])
    assert address.main(["--check", "--root", str(repo_copy)]) == 0  # nothing was written


# -- the install cell itself ---------------------------------------------------------------

def _install_cell() -> str:
    nb = json.loads((ROOT / "notebooks" / "00_start_here.ipynb").read_text())
    return "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])


def _run_cell(monkeypatch, on_colab: bool, answers: list[int]) -> list[list[str]]:
    calls: list[list[str]] = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, answers[len(calls) - 1], "", "ERROR: No matching distribution")

    monkeypatch.setattr(subprocess, "run", fake_run)
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(_install_cell(), "install-cell", "exec"), {})
    return calls


def test_the_install_cell_does_nothing_outside_colab(monkeypatch):
    assert _run_cell(monkeypatch, on_colab=False, answers=[]) == []


def test_on_colab_it_installs_the_notebooks_release_from_the_index(monkeypatch):
    a = address.read_address(ROOT)
    calls = _run_cell(monkeypatch, on_colab=True, answers=[0])
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", f"cnnviz-widgets=={a.version}"]]


def test_without_the_release_on_the_index_it_installs_the_same_tag_from_git(monkeypatch):
    a = address.read_address(ROOT)
    calls = _run_cell(monkeypatch, on_colab=True, answers=[1, 0])
    assert calls[1][-1] == f"cnnviz-widgets @ git+{a.repository}@v{a.version}"


def test_when_both_fail_the_cell_says_why(monkeypatch):
    with pytest.raises(RuntimeError, match=r"(?s)could not install cnnviz-widgets .*No matching distribution"):
        _run_cell(monkeypatch, on_colab=True, answers=[1, 1])
