"""The import graph, drawn from the code: the layering of docs/ARCHITECTURE.md and no cycle.

Every import counts, also one inside a function: a hidden import is still an arrow.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cnnviz_widgets"

# The engine's folders, lowest first. A module may import its own folder and the folders
# of a lower rank; two folders of the same rank never import each other.
ENGINE_RANKS = {"core": 0, "zoo": 1, "inspect": 2, "attribution": 3, "evaluation": 4, "optimize": 4}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files():
    for top in ("cnnviz_widgets", "benchmarks"):
        yield from sorted((ROOT / top).rglob("*.py"))


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imported_names(path: Path, source_text: str | None = None) -> set:
    """Every import in `path`: a module name for ``import a``, ``(source, names)`` for
    ``from source import names``, relative imports resolved."""
    name = module_name(path) if path.suffix == ".py" else ""
    package = name if is_package(path) else name.rpartition(".")[0]
    found = set()
    text = source_text if source_text is not None else path.read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found.add((source, tuple(alias.name for alias in node.names)))
    return found


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The kit's modules `path` imports (a `from package import name` that names a submodule
    counts as an import of that submodule, not of the package)."""
    found = set()
    for item in imported_names(path):
        if isinstance(item, str):
            found.add(item)
            continue
        source, names = item
        submodules = {f"{source}.{n}" for n in names} & known
        found.update(submodules)
        if len(submodules) < len(names):  # some names are the package's own
            found.add(source)
    return {m for m in found if m in known and m != module_name(path)}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    files = list(python_files())
    known = {module_name(p) for p in files}
    return {module_name(p): imports_of(p, known) for p in files}


def test_every_import_of_the_kit_names_a_module_that_exists():
    # a path left behind by a move fails here, not in a learner's notebook
    files = list(python_files()) + sorted((ROOT / "tests").rglob("*.py"))
    known = {module_name(p) for p in files if not p.is_relative_to(ROOT / "tests")}
    def python_only(source):  # IPython's magics and shell lines become `pass`, indentation kept
        return "\n".join(re.sub(r"^(\s*)[%!].*$", r"\1pass", line) for line in source.split("\n"))

    cells = [(nb, python_only(cell.source))
             for nb in sorted((ROOT / "notebooks").rglob("*.ipynb"))
             for cell in nbformat.read(nb, as_version=4).cells if cell.cell_type == "code"]
    missing = []
    for path, text in [(f, None) for f in files] + cells:
        for item in imported_names(path, text):
            source = item if isinstance(item, str) else item[0]
            if source.startswith(("cnnviz_widgets", "benchmarks")) and source not in known:
                missing.append(f"{path.relative_to(ROOT)}: {source}")
    assert not missing, "imports of modules that do not exist:\n" + "\n".join(missing)


def test_the_graph_is_read_from_every_module(graph):
    # the test would pass vacuously on an empty or unparsed tree
    assert "cnnviz_widgets.engine.core.network" in graph
    assert "cnnviz_widgets.engine.core.checks" in graph["cnnviz_widgets.engine.attribution.saliency"] | \
        graph["cnnviz_widgets.engine.attribution.base"]
    assert "benchmarks.report" in graph["benchmarks.__main__"]


def test_the_engine_never_imports_widgets_render_or_exercises(graph):
    bad = {(m, d) for m, deps in graph.items() if m.startswith("cnnviz_widgets.engine")
           for d in deps if d.startswith(("cnnviz_widgets.widgets", "cnnviz_widgets.render", "cnnviz_widgets.exercises"))}
    assert not bad


def test_the_engine_imports_neither_ipywidgets_nor_matplotlib():
    pattern = re.compile(r"^\s*(import|from)\s+(ipywidgets|matplotlib)\b", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in (PACKAGE / "engine").rglob("*.py") if pattern.search(p.read_text())]
    assert not offenders


def test_render_never_imports_widgets(graph):
    assert not {(m, d) for m, deps in graph.items() if m.startswith("cnnviz_widgets.render")
                for d in deps if d.startswith("cnnviz_widgets.widgets")}


def engine_folder(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 3 or parts[:2] != ["cnnviz_widgets", "engine"]:
        return None
    return parts[2] if parts[2] in ENGINE_RANKS else None


def test_every_engine_module_sits_in_a_folder_of_the_map(graph):
    loose = [m for m in graph if m.startswith("cnnviz_widgets.engine.") and engine_folder(m) is None
             and m != "cnnviz_widgets.engine.techniques"]
    assert not loose, f"engine modules outside the folders {sorted(ENGINE_RANKS)}: {loose}"


def test_no_engine_folder_imports_a_folder_above_it_or_beside_it(graph):
    upward = []
    for module, deps in graph.items():
        here = engine_folder(module)
        if here is None:
            continue
        for dep in deps:
            if dep == "cnnviz_widgets.engine.techniques":
                upward.append((module, dep))
                continue
            there = engine_folder(dep)
            if there is not None and there != here and ENGINE_RANKS[there] >= ENGINE_RANKS[here]:
                upward.append((module, dep))
    assert not upward, "imports against the layering (core < zoo < inspect < attribution < evaluation, optimize):\n" \
        + "\n".join(f"  {a} -> {b}" for a, b in upward)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_anywhere(graph):
    # A package's __init__ that re-exports its own modules is not a cycle: the module does
    # not import the package back. Any other loop is.
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join("  " + " <-> ".join(c) for c in found)


def test_imports_inside_functions_say_why():
    """An import inside a function breaks a real cycle or defers a heavy or optional
    dependency; either way its line (or the line above) says so in a comment."""
    unexplained = []
    for path in (PACKAGE / "engine").rglob("*.py"):
        lines = path.read_text(encoding="utf-8").split("\n")
        tree = ast.parse("\n".join(lines))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    here, above = lines[node.lineno - 1], lines[node.lineno - 2]
                    if "#" not in here and not above.strip().startswith("#"):
                        unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno}: {here.strip()}")
    assert not unexplained, "imports inside functions with no comment saying why:\n" + "\n".join(unexplained)
