"""Exercise checkers: the learner writes each technique, and `check` says what is wrong.

Every lesson 01-14 ends with a "Your turn" section: a function to write (lesson 14: two), and one line
that checks it::

    from cnnviz_widgets.exercises import check
    check("saliency", saliency)

`check` runs the function on several small inputs (the embedded models, the shapes,
random tensors of awkward shapes), compares each answer with the model solution within
a tolerance relative to its scale, and names the mistake when it recognises one
("no absolute value", "a step away from the target", ...). Every input is judged on
its own, and the result is worth ``points * (inputs right / inputs tried)``: as a number,
that is what nbgrader's autograder reads from the check cell as partial credit (the
notebook shows the feedback instead). It never raises and never writes to the error
stream: a stub that still raises NotImplementedError is "not done yet" (0 points), an
error inside the learner's function is reported with the learner's own line, a model
left changed is put back and reported, and a warning printed while the check runs (a
library's UserWarning, say) becomes a note in the feedback, since nbgrader scores a grade
cell with any error-stream output 0. Nothing depends on an environment variable: the
same check cell gives a learner feedback and an autograder the score.

The package, by idea: `result` (what `check` returns), `checker` (cases, mistakes, and
running the learner's function safely), `snapshot` (the model's state, put back after
each call), `learner_errors` (the learner's own line and hints), `comparison` (numbers
within a relative tolerance, generic slips), `fixtures` (the inputs), `kinds` (numeric,
index and step checkers), `lessons/` (one module per lesson's checker, and the registry),
`notebooks` (student and solution versions).

`names()` lists the exercises in lesson order, `POINTS` what each is worth (the points
in the check cell's nbgrader metadata). The model solutions are not in the package: they
are in the repository's ``instructor/solutions.py``, out of what a learner installs; the
checkers compute their references themselves or with the engine's own verbs.
docs/INSTRUCTORS.md explains how to make student and solution versions of the notebooks.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import io
import os
import tempfile
import warnings
from typing import TYPE_CHECKING, Callable

from ..course import exercises

if TYPE_CHECKING:
    from .result import CheckResult

__all__ = ["check", "names", "lesson_of", "POINTS", "CheckResult"]

# exercise -> the lesson notebook that asks for it, from the course table
LESSONS: dict[str, str] = exercises()


# exercise -> its points in nbgrader's metadata: the exercises the guide says to grade (06, 07,
# 09, 10, 12, 13, 14's style_loss, 15: a lesson's core skill) weigh more than the warm-ups and
# the quick extras.
POINTS = {
    "filter_tiles": 2, "nearest_neighbors": 2, "pca_2d": 2, "top_channels": 2, "receptive_field": 2,
    "occlusion_map": 4, "saliency": 4, "guided_relu_backward": 2, "ascent_step": 4, "pgd_step": 4,
    "guided_dream_step": 2, "total_variation": 4, "deletion_curve": 4, "gram_matrix": 2, "style_loss": 4,
    "unit_iou": 4,
}


def names() -> list[str]:
    """The exercises in lesson order (01 to 15; one per lesson, two in lesson 14)."""
    return list(LESSONS)


def lesson_of(name: str) -> str:
    """The notebook (without .ipynb) whose "Your turn" section asks for exercise `name`."""
    return LESSONS[name]


def check(name: str, fn: Callable, points: float | None = None) -> CheckResult:
    """Check the learner's function `fn` for exercise `name` (see `names()`).

    Returns a `CheckResult` (`.passed`, `.score`, `.message`, `.diagnosis`, `.outcomes`),
    shown as a coloured box in a notebook; as a float it is the points earned,
    ``points * share of inputs right``, with `points` from `POINTS` unless given (keep it
    equal to the check cell's nbgrader points). Never raises, and writes nothing to the
    error stream: warnings and error output during the check become notes.
    """
    if points is None:
        points = POINTS.get(name, 1) if isinstance(name, str) else 1
    with _caught_output() as caught:
        result = _check(name, fn, points)
    for text in caught:
        note = (f"this was printed while the check ran ({text}); it does not change the score, and the check kept "
                "it off the error stream (an autograder counts any error output as a failure).")
        if note not in result.notes:
            result.notes.append(note)
    return result


@contextlib.contextmanager
def _caught_output():
    """Collect warnings and error-stream output (Python's and the process's own, file
    descriptor 2, where C++ libraries write) instead of printing them; yields the list
    of what was caught, one line each, filled when the block ends."""
    caught: list[str] = []
    python_stderr = io.StringIO()
    saved_fd = None
    scratch = tempfile.TemporaryFile()
    try:
        saved_fd = os.dup(2)
        os.dup2(scratch.fileno(), 2)
    except OSError:  # no file descriptor 2 (an embedded interpreter): Python's stream only
        saved_fd = None
    try:
        with warnings.catch_warnings(record=True) as seen, contextlib.redirect_stderr(python_stderr):
            yield caught
    finally:
        if saved_fd is not None:
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
        scratch.seek(0)
        process_stderr = scratch.read().decode("utf-8", "replace")
        scratch.close()
        for w in seen:
            caught.append(f"{w.category.__name__}: {str(w.message).strip().splitlines()[0] if str(w.message).strip() else ''}")
        for text in (python_stderr.getvalue(), process_stderr):
            first = next((line.strip() for line in text.splitlines() if line.strip()), "")
            if first:
                caught.append(f"on the error stream: {first[:200]}")
        caught[:] = list(dict.fromkeys(caught))


def _check(name: str, fn: Callable, points: float) -> CheckResult:
    from .result import FAILED, CheckResult

    if not isinstance(name, str) or name not in LESSONS:
        close = difflib.get_close_matches(str(name), names(), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return CheckResult(str(name), FAILED, f"There is no exercise called {name!r}.{hint} The exercises are: "
                           f"{', '.join(names())}.", "unknown_exercise", "unknown exercise", points=points)
    if not callable(fn):
        return CheckResult(name, FAILED, f"check({name!r}, ...) needs your function itself, e.g. "
                           f"`check({name!r}, {name})`; it got a {type(fn).__name__}.", "not_callable",
                           "not a function", points=points)
    from .lessons import checker

    try:
        return checker(name).run(fn, points)
    except Exception as exc:  # the checker itself failed: say so, without a traceback
        return CheckResult(name, FAILED, "The checker itself failed before it could judge your function "
                           f"({type(exc).__name__}: {exc}). Please tell your instructor; the rest of the "
                           "lesson is unaffected.", "checker_error", "the checker failed", points=points)


def __getattr__(name: str):
    # The checkers import torch: loaded on first use, so `python -m cnnviz_widgets.exercises` stays light.
    if name == "CheckResult":
        return getattr(importlib.import_module(".result", __name__), name)
    raise AttributeError(f"module 'cnnviz_widgets.exercises' has no attribute {name!r}")
