"""The "Your turn" sections of lessons 01-14: where they sit, what they hold, and the two
versions an instructor can hand out. The stored (student) notebooks themselves run under
nbval with the stubs unfilled (testpaths); here the *solved* exercise cells run in a real
kernel, and each check cell's value must be its full points (what nbgrader reads).
tests/test_nbgrader.py runs nbgrader itself."""

from __future__ import annotations

import ast
import linecache
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from cnnviz_widgets.exercises import lesson_of, names
from cnnviz_widgets.exercises.notebooks import (BEGIN, END, exercise_cells, solution_body, solution_source,
                                                solution_version, student_version)

ROOT = Path(__file__).resolve().parents[1]
LESSONS = {name: ROOT / "notebooks" / f"{lesson_of(name)}.ipynb" for name in names()}
PARTS = ["statement", "stub", "check", "questions"]


def _read(name):
    return nbformat.read(LESSONS[name], as_version=4)


@pytest.mark.parametrize("name", names())
def test_each_lesson_has_its_exercise_right_before_its_check_cell(name):
    nb = _read(name)
    parts = exercise_cells(nb)
    together = [n for n in names() if lesson_of(n) == lesson_of(name)]  # lesson 14 asks for two, one after the other
    assert list(parts) == together, f"{LESSONS[name].name} has exercises {list(parts)}"
    last = name == together[-1]
    wanted = PARTS if last else PARTS[:3]  # the questions come once, after the last exercise
    at = [parts[name][p] for p in wanted]
    assert at == list(range(at[0], at[0] + len(wanted))), "statement, stub, check, questions: together and in that order"
    following = nb.cells[at[-1] + 1]
    if last:
        assert following.cell_type == "code" and following.source.lstrip().startswith("# Check") or \
            following.source.lstrip().startswith("## Check"), "the lesson's check comes right after the questions"
    else:
        assert at[-1] + 1 == parts[together[together.index(name) + 1]]["statement"], "the next exercise follows"
    statement, stub, check = (nb.cells[i] for i in at[:3])
    heading = "## Your turn\n" if name == together[0] else "**Exercise "
    assert statement.source.startswith(heading) and f"`{name}(" in statement.source
    assert check.source == f'check("{name}", {name})'
    if last:
        questions = nb.cells[at[3]]
        numbered = re.findall(r"^(\d)\. ", questions.source, flags=re.M)
        assert questions.source.startswith("**Questions** (predict, then run)") and numbered in (["1", "2"], ["1", "2", "3"])


@pytest.mark.parametrize("name", names())
def test_the_stub_is_the_solutions_signature_with_an_empty_body(name):
    stub = _read(name).cells[exercise_cells(_read(name))[name]["stub"]].source
    assert "from cnnviz_widgets.exercises import check" in stub
    assert stub.rstrip().endswith("# YOUR CODE HERE\n    raise NotImplementedError()")
    assert BEGIN not in stub and END not in stub
    tree = ast.parse(stub)
    (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    expected = ast.parse(solution_source(name)).body[0]
    assert fn.name == name and ast.dump(fn.args) == ast.dump(expected.args)
    assert ast.get_docstring(fn) == ast.get_docstring(expected)
    assert 3 <= len(solution_body(name)) <= 20, "the learner writes 3-20 lines"


@pytest.mark.parametrize("name", names())
def test_the_learners_function_shadows_nothing_the_lesson_imports(name):
    for cell in _read(name).cells:
        if cell.cell_type == "code" and "cnnviz" not in cell.metadata:
            for line in cell.source.splitlines():
                if re.match(r"\s*(from\s+\S+\s+)?import\b", line):
                    imported = re.sub(r"\b\w+\s+as\s+", "", line.split("import", 1)[1])
                    assert not re.search(rf"\b{name}\b", imported), f"{LESSONS[name].name}: {line.strip()}"


def test_stubs_unfilled_say_not_done_instead_of_raising():
    for name in names():
        nb = _read(name)
        parts = exercise_cells(nb)[name]
        # Registered with linecache as IPython registers a cell, so the function's source can be read.
        filename = f"<cell {name}>"
        source = nb.cells[parts["stub"]].source
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        scope: dict = {}
        exec(compile(source, filename, "exec"), scope)
        result = eval(nb.cells[parts["check"]].source, scope)
        assert result.status == "not done", name


def test_student_version_of_the_solution_version_is_the_stored_notebook():
    for name in names():
        nb = _read(name)
        solved = solution_version(nb)
        stub = solved.cells[exercise_cells(solved)[name]["stub"]].source
        assert BEGIN in stub and END in stub and "NotImplementedError" not in stub
        assert nbformat.writes(student_version(solved)) == nbformat.writes(nb), name


def test_the_command_writes_both_versions(tmp_path):
    run = lambda *args: subprocess.run([sys.executable, "-m", "cnnviz_widgets.exercises", *args],
                                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    solved, handout = tmp_path / "solved", tmp_path / "handout"
    done = run("solution", "notebooks", str(solved))
    assert done.returncode == 0, done.stderr
    lessons = len(list((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    assert f"{lessons} notebook(s)" in done.stdout  # lesson 00 has no exercise and is copied as it is
    assert run("student", str(solved), str(handout)).returncode == 0
    for name, path in LESSONS.items():
        assert BEGIN in (solved / path.name).read_text()
        assert nbformat.read(handout / path.name, as_version=4) == nbformat.read(path, as_version=4)
    missing = run("solution", "notebooks", str(tmp_path / "nowhere"), "--solutions", str(tmp_path / "none.py"))
    assert missing.returncode == 1 and "no model solutions" in missing.stderr and not (tmp_path / "nowhere").exists()
    refused = run("solution", "notebooks", "notebooks")
    assert refused.returncode == 1 and "refusing to overwrite" in refused.stderr
    listing = run("list")
    assert listing.stdout.splitlines()[6] == "07_saliency_maps: saliency"


def test_the_solved_exercise_cells_pass_every_check_in_a_kernel():
    """One kernel runs each lesson's solved exercise cell and its check cell; each check's
    plain-text value is its full points, with nothing on stderr. Only these cells: the
    stored lessons already run whole under nbval, and the exercise cells need nothing else."""
    from cnnviz_widgets.exercises import POINTS
    from nbclient import NotebookClient

    cells = []
    for name in names():
        solved = solution_version(_read(name))
        parts = exercise_cells(solved)[name]
        cells += [solved.cells[parts["stub"]], solved.cells[parts["check"]]]
    cells.append(nbformat.v4.new_code_cell(
        "from cnnviz_widgets.exercises import names\n"
        "assert all(check(n, globals()[n]).passed for n in names())\nprint('all pass')"))
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                        "language": "python"}})
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error" or o.get("name") == "stderr"]
    results = [o for o in outputs if o.output_type == "execute_result"]
    assert [float(o.data["text/plain"]) for o in results] == [POINTS[n] for n in names()]
    assert all("✓" in o.data["text/html"] for o in results)
    assert "all pass" in "".join(o.get("text", "") for o in outputs)
