"""nbgrader end to end, with nbgrader itself: the release version of every lesson, and the
autograded scores of a right and a wrong (named mistakes, partly right) submission, with
the course's own configuration (instructor/nbgrader_config.py, its timeouts set for a
2-core machine). Also: the model solutions are not in the wheel a learner installs.

Autograde runs whole lessons, so it grades two of them (in quick mode, about a minute
each on two cores), chosen for what they exercise: 01 (a partly right answer: the flat
filter left out, 4 of 5 inputs) and 07 (a right answer that makes torch print a
UserWarning, which nbgrader would score 0 if it reached the error stream; a named
mistake on one input of three). The release versions cover all thirteen.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from cnnviz_widgets.exercises import POINTS, LESSONS, check
from cnnviz_widgets.exercises.notebooks import STUB, exercise_cells, write_versions

ROOT = Path(__file__).resolve().parents[1]
STORED = ROOT / "notebooks"

# What each submission writes in place of the stub, and the points nbgrader must give it.
RIGHT = {
    "filter_tiles": ("lo = weights.amin(dim=(1, 2, 3), keepdim=True)\n"
                     "hi = weights.amax(dim=(1, 2, 3), keepdim=True)\n"
                     "return (weights - lo) / (hi - lo).clamp_min(1e-12)"),
    # Right, but torch warns ("To copy construct from a tensor ...") on every call.
    "saliency": ("x = torch.tensor(image, requires_grad=True)\n"
                 "net(x)[0, target].backward()\n"
                 "return x.grad[0].abs().amax(dim=0)"),
}
WRONG = {
    # Partly right: a flat filter gives 0/0 (4 of the 5 inputs right).
    "filter_tiles": ("lo = weights.amin(dim=(1, 2, 3), keepdim=True)\n"
                     "hi = weights.amax(dim=(1, 2, 3), keepdim=True)\n"
                     "return (weights - lo) / (hi - lo)"),
    # The predicted class instead of `target`: right on the 2 inputs where they agree, of 3.
    "saliency": ("x = image.clone().requires_grad_(True)\n"
                 "logits = net(x)\n"
                 "logits[0, int(logits.argmax())].backward()\n"
                 "return x.grad[0].abs().amax(dim=0)"),
}
EXPECTED = {"right": {"filter_tiles": POINTS["filter_tiles"], "saliency": POINTS["saliency"]},
            "wrong": {"filter_tiles": round(POINTS["filter_tiles"] * 4 / 5, 2),
                      "saliency": round(POINTS["saliency"] * 2 / 3, 2)}}
GRADED = [LESSONS[name] for name in RIGHT]

nbgrader_app = shutil.which("nbgrader", path=str(Path(sys.executable).parent)) or shutil.which("nbgrader")


def _nbgrader(course: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               CNNVIZ_QUICK="1", CNNVIZ_OFFLINE="1", MPLBACKEND="Agg")
    env.pop("CNNVIZ_GRADING", None)  # grading needs no switch
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    pytest.importorskip("nbgrader", reason="nbgrader is in the test extra: pip install -e '.[test]'")
    root = tmp_path_factory.mktemp("course")
    config = (ROOT / "instructor" / "nbgrader_config.py").read_text(encoding="utf-8")
    (root / "nbgrader_config.py").write_text(config + f"\nc.CourseDirectory.root = {str(root)!r}\n"
                                             "c.CourseDirectory.course_id = 'cnnviz'\n", encoding="utf-8")
    # The instructors' one command makes the source (solution) version; nbgrader the release.
    write_versions([STORED], root / "source" / "all_lessons", "solution")
    write_versions([STORED / f"{lesson}.ipynb" for lesson in GRADED], root / "source" / "graded", "solution")
    _nbgrader(root, "generate_assignment", "all_lessons", "--force")
    _nbgrader(root, "generate_assignment", "graded", "--force")
    return root


def test_the_release_version_of_every_lesson_is_the_stored_notebook(course):
    released = sorted((course / "release" / "all_lessons").glob("*.ipynb"))
    assert [p.name for p in released] == sorted(p.name for p in STORED.glob("[0-9][0-9]_*.ipynb"))
    for path in released:
        mine, stored = nbformat.read(path, as_version=4), nbformat.read(STORED / path.name, as_version=4)
        assert [c.source for c in mine.cells] == [c.source for c in stored.cells], path.name
        for name, parts in exercise_cells(stored).items():
            meta = mine.cells[parts["check"]].metadata["nbgrader"]
            assert meta["grade"] and meta["locked"] and meta["points"] == POINTS[name], path.name


def _submit(course: Path, student: str, answers: dict[str, str]) -> None:
    folder = course / "submitted" / student / "graded"
    folder.mkdir(parents=True)
    for name, body in answers.items():
        lesson = LESSONS[name]
        nb = nbformat.read(course / "release" / "graded" / f"{lesson}.ipynb", as_version=4)
        cell = nb.cells[exercise_cells(nb)[name]["stub"]]
        stub = "    " + STUB[0] + "\n    " + STUB[1]
        assert stub in cell.source
        cell.source = cell.source.replace(stub, "\n".join("    " + line for line in body.splitlines()))
        nbformat.write(nb, folder / f"{lesson}.ipynb")


def test_autograde_gives_the_right_answers_full_marks_and_the_wrong_ones_their_share(course):
    from nbgrader.api import Gradebook

    _submit(course, "right", RIGHT)
    _submit(course, "wrong", WRONG)
    _nbgrader(course, "autograde", "graded", "--force")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student, expected in EXPECTED.items():
            for name, points in expected.items():
                grade = gradebook.find_grade(f"{name}_check", LESSONS[name], "graded", student)
                assert grade.max_score == POINTS[name]
                assert grade.auto_score == pytest.approx(points), (student, name)
    graded = nbformat.read(course / "autograded" / "right" / "graded" / f"{LESSONS['saliency']}.ipynb", as_version=4)
    outputs = graded.cells[exercise_cells(graded)["saliency"]["check"]].outputs
    assert [o.output_type for o in outputs] == ["execute_result"]  # nothing on stderr, one value
    assert "UserWarning" in outputs[0].data["text/html"] and "✓ saliency" in outputs[0].data["text/html"]


def test_autograde_agrees_with_check_itself():
    """The scores asserted above are what `check` gives in this process too."""
    for answers, student in ((RIGHT, "right"), (WRONG, "wrong")):
        for name, body in answers.items():
            args = {"filter_tiles": "weights", "saliency": "net, image, target"}[name]
            scope: dict = {}
            exec("import torch\n" + f"def {name}({args}):\n" + "\n".join("    " + line for line in body.splitlines()),
                 scope)
            assert float(check(name, scope[name])) == pytest.approx(EXPECTED[student][name]), (student, name)


def test_the_wheel_carries_no_model_solution(tmp_path):
    """A learner's install (the wheel, or a non-editable install built from it) holds none of
    the answers: instructor/ is outside the package."""
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("*.whl")
    from cnnviz_widgets.exercises.notebooks import solution_body

    bodies = {name: "\n".join(solution_body(name)) for name in LESSONS}
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert not [n for n in names if n.startswith("instructor/") or n.endswith("solutions.py")]
        for member in names:
            if member.endswith(".py"):
                text = archive.read(member).decode("utf-8")
                assert "### BEGIN SOLUTION\n" not in text, member
                leaked = [name for name, body in bodies.items() if body in text]
                assert not leaked, (member, leaked)
