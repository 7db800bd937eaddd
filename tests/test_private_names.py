"""No module uses another module's private (`_name`) names: the package, the tests and
the benchmarks go through the public API (docs/ARCHITECTURE.md, "Layers and data flow").

Every Python file under cnnviz_widgets/, tests/ and benchmarks/ is parsed; a finding is
``from m import _y`` or ``m._y`` where `m` is one of the project's modules other than
the file itself. (Private attributes of objects, ``self._x`` or ``scan._cache``, are a
class's business and out of reach of a parse.)
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cnnviz_widgets", "tests", "benchmarks")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_project_module(name: str) -> bool:
    if not name or name.split(".")[0] not in PACKAGES:
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _absolute(module: str | None, level: int, here: str, is_package: bool) -> str:
    if level == 0:
        return module or ""
    base = here.split(".") if is_package else here.split(".")[:-1]
    base = base[:len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([module] if module else []))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def findings(path: Path, here: str | None = None) -> list[str]:
    """What `path` (the module `here`, by default its place in the repository) uses of
    other project modules' private names."""
    here = here or _module_name(path)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    aliases: dict[str, str] = {}  # local name -> project module it stands for
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if _is_project_module(a.name):
                    aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node.module, node.level, here, is_package)
            if source == "__future__" or not source.split(".")[0] in PACKAGES:
                continue
            for a in node.names:
                if _private(a.name) and source != here:
                    found.append(f"line {node.lineno}: from {source} import {a.name}")
                elif _is_project_module(f"{source}.{a.name}"):
                    aliases[a.asname or a.name] = f"{source}.{a.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            value = node.value
            dotted = []
            while isinstance(value, ast.Attribute):
                dotted.insert(0, value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in aliases:
                module = ".".join([aliases[value.id], *dotted])
                if module != here and _is_project_module(module):
                    found.append(f"line {node.lineno}: {module}.{node.attr}")
    return found


FILES = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", [pytest.param(p, id=p.relative_to(ROOT).as_posix()) for p in FILES])
def test_no_private_names_of_other_modules(path):
    assert not findings(path), f"{path.relative_to(ROOT)} uses private names: {findings(path)}"


def test_the_parse_finds_what_it_must(tmp_path):
    # The check itself: each form is found, public names and own privates are not.
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from cnnviz_widgets.engine.zoo import models\n"
        "from cnnviz_widgets.engine.zoo.models import _imagenet_classes\n"
        "import cnnviz_widgets.engine.core.network as N\n"
        "from .helpers import assert_restored\n"
        "_mine = 1\n"
        "a = models._vgg_layers\n"
        "b = N.lock_for\n"
        "c = models.torchvision_weight_file\n"
        "d = _mine\n"
        "e = object()._hidden\n",
        encoding="utf-8")
    got = findings(sample, here="tests.sample")
    assert got == ["line 2: from cnnviz_widgets.engine.zoo.models import _imagenet_classes",
                   "line 6: cnnviz_widgets.engine.zoo.models._vgg_layers"], got
