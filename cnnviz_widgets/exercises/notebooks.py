"""Student and solution versions of the lesson notebooks.

The notebooks are stored as the *student* version: each "Your turn" exercise cell (cell
metadata ``cnnviz.part == "stub"``) holds the function with its body replaced by
nbgrader's stub::

    # YOUR CODE HERE
    raise NotImplementedError()

`solution_version` puts the model solution (from the repository's
``instructor/solutions.py``, the text between its ``### BEGIN SOLUTION`` / ``### END
SOLUTION`` markers) back in its place, between the same markers. That file is not part
of the installed package (a learner's install carries no answers): it is found next to
the package in a clone of the repository (an editable install), in ``instructor/`` under
the current folder, or wherever `solutions=` (``--solutions`` on the command line) says. `student_version` does what nbgrader's ClearSolutions preprocessor does:
it replaces every marked region by the stub, indented like the markers. So the stored
notebooks, the kit's solution version and nbgrader's ``generate_assignment`` all agree:
``student_version(solution_version(nb)) == nb``.

Command line: ``python -m cnnviz_widgets.exercises --help``.
"""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

import nbformat

__all__ = ["BEGIN", "END", "STUB", "find_solutions", "solution_source", "solution_body", "solution_version", "student_version", "exercise_cells",
           "write_versions"]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")


SOLUTIONS_FILE = Path("instructor") / "solutions.py"


def find_solutions(solutions=None) -> Path:
    """The model solutions' file: `solutions` if given, else ``instructor/solutions.py`` in the
    repository this package was installed from (editable), else under the current folder."""
    if solutions is not None:
        path = Path(solutions)
        if not path.is_file():
            raise ValueError(f"no model solutions at {path}: pass the path of the repository's instructor/solutions.py")
        return path
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (root / SOLUTIONS_FILE).is_file():
            return root / SOLUTIONS_FILE
    raise ValueError("the model solutions are not part of the installed package: run this from a clone of the "
                     "cnnviz-widgets repository (they are in instructor/solutions.py), or pass "
                     "--solutions path/to/instructor/solutions.py")


def solution_source(name: str, solutions=None) -> str:
    """The source of the model solution of exercise `name` (read, not imported: no torch needed)."""
    path = find_solutions(solutions)
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            # The closing marker is a comment after the last statement: the AST ends before it.
            end = next((i for i in range(node.end_lineno, len(lines)) if lines[i].strip() == END), node.end_lineno - 1)
            return "\n".join(lines[node.lineno - 1:end + 1])
    raise ValueError(f"{path} has no function {name!r}")


def solution_body(name: str, solutions=None) -> list[str]:
    """The lines of the model solution of exercise `name`, dedented (without the markers)."""
    source = solution_source(name, solutions).splitlines()
    start = next(i for i, line in enumerate(source) if line.strip() == BEGIN)
    stop = next(i for i, line in enumerate(source) if line.strip() == END)
    body = source[start + 1:stop]
    indent = min(len(line) - len(line.lstrip()) for line in body if line.strip())
    return [line[indent:] for line in body]


def exercise_cells(nb) -> dict[str, dict[str, int]]:
    """{exercise: {part: cell index}} for the cells the "Your turn" section is made of."""
    found: dict[str, dict[str, int]] = {}
    for i, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("cnnviz", {})
        if "exercise" in meta and "part" in meta:
            found.setdefault(meta["exercise"], {})[meta["part"]] = i
    return found


def _fill(source: str, name: str, solutions=None) -> str:
    lines = source.split("\n")
    for i in range(len(lines) - 1):
        if lines[i].strip() == STUB[0] and lines[i + 1].strip() == STUB[1]:
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            body = [indent + line if line.strip() else "" for line in solution_body(name, solutions)]
            return "\n".join(lines[:i] + [indent + BEGIN] + body + [indent + END] + lines[i + 2:])
    raise ValueError(f"the exercise cell of {name!r} has no `{STUB[0]}` / `{STUB[1]}` stub to fill")


def solution_version(nb, solutions=None):
    """A copy of the (student) notebook with every exercise stub filled with its model solution
    (from `find_solutions(solutions)`)."""
    out = copy.deepcopy(nb)
    for name, parts in exercise_cells(out).items():
        if "stub" in parts:
            cell = out.cells[parts["stub"]]
            cell.source = _fill(cell.source, name, solutions)
    return out


_BEGIN_RE = re.compile(r"^(\s*)#+\s*BEGIN SOLUTION\s*$")
_END_RE = re.compile(r"^\s*#+\s*END SOLUTION\s*$")


def _clear(source: str) -> str:
    lines, out, i = source.split("\n"), [], 0
    while i < len(lines):
        begin = _BEGIN_RE.match(lines[i])
        if not begin:
            out.append(lines[i])
            i += 1
            continue
        stop = next((j for j in range(i + 1, len(lines)) if _END_RE.match(lines[j])), None)
        if stop is None:
            raise ValueError(f"a solution region opened at line {i + 1} is never closed ({END!r} missing)")
        out += [begin.group(1) + line for line in STUB]
        i = stop + 1
    return "\n".join(out)


def student_version(nb):
    """A copy of the notebook with every solution region replaced by nbgrader's stub."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if cell.cell_type == "code" and "BEGIN SOLUTION" in cell.source:
            cell.source = _clear(cell.source)
    return out


def write_versions(sources, out_dir, version: str = "solution", solutions=None) -> list[Path]:
    """Write the `version` ("solution" or "student") of each notebook in `sources` (files or
    folders of ``NN_*.ipynb``) into `out_dir`, under the same names. Returns the paths."""
    if version not in ("solution", "student"):
        raise ValueError(f"version must be 'solution' or 'student', not {version!r}")
    if version == "solution":
        found = find_solutions(solutions)  # before any file is written: a missing file stops at once
        make = lambda nb: solution_version(nb, found)  # noqa: E731
    else:
        make = student_version
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for source in sources:
        source = Path(source)
        files = sorted(source.glob("[0-9][0-9]_*.ipynb")) if source.is_dir() else [source]
        for path in files:
            nb = nbformat.read(path, as_version=4)
            target = out_dir / path.name
            if target.resolve() == path.resolve():
                raise ValueError(f"refusing to overwrite {path} with its own {version} version: pick another folder")
            nbformat.write(make(nb), target)
            paths.append(target)
    return paths
