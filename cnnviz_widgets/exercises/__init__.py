"""Exercise checkers: the learner writes each technique, and `check` says what is wrong.

Every lesson 01-13 ends with a "Your turn" section: a function to write, and one line
that checks it::

    from cnnviz_widgets.exercises import check
    check("saliency", saliency)

`check` runs the function on several small inputs (the embedded models, the shapes,
random tensors of awkward shapes), compares each answer with the model solution within
a tolerance relative to its scale, and names the mistake when it recognises one
("no absolute value", "a step away from the target", ...). It never raises: a stub
that still raises NotImplementedError is "not done yet", an error inside the learner's
function is reported with the learner's own line, and a model left changed is put back
and reported. With ``CNNVIZ_GRADING=1`` (an autograder) a check that does not pass
raises `ExerciseFailed`.

`names()` lists the exercises in lesson order. The model solutions are in
`cnnviz_widgets.exercises.solutions` (spoilers); docs/INSTRUCTORS.md explains why they
are there and how to make student and solution versions of the notebooks.
"""

from __future__ import annotations

import difflib
import importlib
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .harness import CheckResult

__all__ = ["check", "names", "lesson_of", "CheckResult", "ExerciseFailed"]

# exercise -> the lesson notebook that asks for it
LESSONS = {
    "filter_tiles": "01_first_layer_filters",
    "nearest_neighbors": "02_nearest_neighbors",
    "pca_2d": "03_dimensionality_reduction",
    "top_channels": "04_activations",
    "receptive_field": "05_max_activating_patches",
    "occlusion_map": "06_occlusion",
    "saliency": "07_saliency_maps",
    "guided_relu_backward": "08_guided_backprop",
    "ascent_step": "09_gradient_ascent",
    "pgd_step": "10_fooling_images",
    "guided_dream_step": "11_deepdream",
    "total_variation": "12_feature_inversion",
    "deletion_curve": "13_comparing_attributions",
    "unit_iou": "15_network_dissection",
}


def names() -> list[str]:
    """The exercises, one per lesson, in lesson order (01 to 13)."""
    return list(LESSONS)


def lesson_of(name: str) -> str:
    """The notebook (without .ipynb) whose "Your turn" section asks for exercise `name`."""
    return LESSONS[name]


def check(name: str, fn: Callable) -> CheckResult:
    """Check the learner's function `fn` for exercise `name` (see `names()`).

    Returns a `CheckResult` (`.passed`, `.message`, `.diagnosis`), shown as a coloured
    box in a notebook. Never raises, except in grading mode (``CNNVIZ_GRADING=1``),
    where a result that did not pass raises `ExerciseFailed` with its message.
    """
    from .harness import ExerciseFailed, grading_mode

    result = _check(name, fn)
    if grading_mode() and not result.passed:
        raise ExerciseFailed(str(result))
    return result


def _check(name: str, fn: Callable) -> CheckResult:
    from .harness import FAILED, CheckResult

    if not isinstance(name, str) or name not in LESSONS:
        close = difflib.get_close_matches(str(name), names(), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return CheckResult(str(name), FAILED, f"There is no exercise called {name!r}.{hint} The exercises are: "
                           f"{', '.join(names())}.", "unknown_exercise", "unknown exercise")
    if not callable(fn):
        return CheckResult(name, FAILED, f"check({name!r}, ...) needs your function itself, e.g. "
                           f"`check({name!r}, {name})`; it got a {type(fn).__name__}.", "not_callable",
                           "not a function")
    from .checks import checker

    try:
        return checker(name).run(fn)
    except Exception as exc:  # the checker itself failed: say so, without a traceback
        return CheckResult(name, FAILED, "The checker itself failed before it could judge your function "
                           f"({type(exc).__name__}: {exc}). Please tell your instructor; the rest of the "
                           "lesson is unaffected.", "checker_error", "the checker failed")


def __getattr__(name: str):
    # The harness imports torch: loaded on first use, so `python -m cnnviz_widgets.exercises` stays light.
    if name in ("CheckResult", "ExerciseFailed"):
        return getattr(importlib.import_module(".harness", __name__), name)
    raise AttributeError(f"module 'cnnviz_widgets.exercises' has no attribute {name!r}")
