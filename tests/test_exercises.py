"""The exercise checkers: every model solution passes, every named mistake is recognised,
and a learner's function that raises, returns nonsense or changes the model gets a clear
message, never a traceback from inside the checker and never a changed model."""

from __future__ import annotations

import torch
import pytest

from cnnviz_widgets.exercises import POINTS, check, names
from instructor import solutions
from cnnviz_widgets.exercises.lessons import CHECKERS, checker

from .exercise_mistakes import WRONG
from .helpers import assert_restored, model_state

EXERCISES = ["filter_tiles", "nearest_neighbors", "pca_2d", "top_channels", "receptive_field", "occlusion_map",
             "saliency", "guided_relu_backward", "ascent_step", "pgd_step", "guided_dream_step",
             "total_variation", "deletion_curve", "gram_matrix", "style_loss", "unit_iou"]


def test_names_lists_the_exercises_in_lesson_order():
    assert names() == EXERCISES
    assert list(CHECKERS) == EXERCISES


@pytest.mark.parametrize("name", EXERCISES)
def test_every_model_solution_passes_its_checker(name):
    result = check(name, getattr(solutions, name))
    assert result.passed, str(result)
    assert result.status == "passed" and result.diagnosis is None and not result.notes
    assert f"all {len(checker(name).cases())} inputs" in result.message


@pytest.mark.parametrize("name", EXERCISES)
def test_each_checker_tries_several_inputs_and_names_at_least_three_mistakes(name):
    c = checker(name)
    assert len(c.cases()) >= 3
    assert len({m.key for m in c.mistakes}) >= (4 if name in ("gram_matrix", "style_loss") else 3)  # issue 25: four


WRONG_CASES = [(ex, diagnosis, fn) for ex, items in WRONG.items() for diagnosis, fn in items]


@pytest.mark.parametrize("exercise,diagnosis,fn", WRONG_CASES,
                         ids=[f"{ex}-{d}-{fn.__name__}" for ex, d, fn in WRONG_CASES])
def test_a_wrong_answer_is_diagnosed_by_name(exercise, diagnosis, fn):
    result = check(exercise, fn)
    assert not result.passed and result.status == "failed"
    assert result.diagnosis == diagnosis, str(result)
    assert result.title and result.message and result.case


@pytest.mark.parametrize("name", EXERCISES)
def test_every_named_mistake_has_a_wrong_answer_that_shows_it(name):
    tested = {d for d, _ in WRONG.get(name, [])}
    declared = {m.key for m in checker(name).mistakes}
    assert declared <= tested, f"{name}: no test feeds {sorted(declared - tested)}"


def test_the_issues_listed_mistakes_are_among_the_named_ones():
    listed = {"saliency": {"no_abs", "mean_over_channels", "probability"},
              "pgd_step": {"away_from_target", "no_clamp", "step_too_large", "no_projection"},
              "pca_2d": {"no_centring"},
              "gram_matrix": {"no_normalisation", "transposed", "not_flattened_per_channel"},
              "style_loss": {"mean", "content_layer", "no_weights", "not_squared"}}
    for name, keys in listed.items():
        tested = {d for d, _ in WRONG[name]}
        assert keys <= tested, name


# --- the stub, and functions that go wrong in general ways --------------------------------------

def saliency(net, image, target):
    """H x W."""
    # YOUR CODE HERE
    raise NotImplementedError()


def test_an_unfilled_stub_is_not_done_yet_and_does_not_raise():
    result = check("saliency", saliency)
    assert result.status == "not done" and not result.passed and not result
    assert "not done" in str(result) and "raise NotImplementedError()" in result.message


def test_a_stub_that_only_the_checker_sees_raising_is_also_not_done():
    def lazy(net, image, target):
        if True:
            raise NotImplementedError("later")

    assert check("saliency", lazy).status == "not done"


def test_an_error_is_reported_with_the_learners_own_line():
    def broken(net, image, target):
        x = image.clone().requires_grad_(True)
        scores = net(x)
        picked = scores[0, target + 1000]   # the learner's bug
        return picked

    result = check("saliency", broken)
    assert result.diagnosis == "raised"
    assert "IndexError" in result.message
    assert "picked = scores[0, target + 1000]" in result.message
    assert "Traceback" not in result.message


def test_nan_none_strings_and_wrong_shapes_get_clear_messages():
    def nan(net, image, target):
        return torch.full(image.shape[-2:], float("nan"))

    def nothing(net, image, target):
        torch.zeros(1)

    def text(net, image, target):
        return "a map"

    def square(net, image, target):
        return torch.zeros(5, 5)

    assert check("saliency", nan).diagnosis == "not_finite"
    assert check("saliency", nothing).diagnosis == "returned_none"
    assert check("saliency", text).diagnosis == "type"
    result = check("saliency", square)
    assert result.diagnosis == "shape" and "5 x 5" in result.message and "64 x 64" in result.message


def test_an_unknown_exercise_or_a_non_function_is_a_result_not_an_error():
    result = check("salency", saliency)
    assert result.diagnosis == "unknown_exercise" and "'saliency'" in result.message
    assert check("saliency", 42).diagnosis == "not_callable"


def _good_saliency_then(change):
    def fn(net, image, target):
        result = solutions.saliency(net, image, target)
        change(net)
        return result
    return fn


MODEL_CHANGES = {
    "training mode": (lambda net: net.train(), "training mode"),
    "weights": (lambda net: net.model.features[0].weight.data.mul_(1.5), "weights"),
    "requires_grad": (lambda net: [p.requires_grad_(True) for p in net.parameters()], "requires_grad"),
    "a hook": (lambda net: net.module("conv3").register_forward_hook(lambda m, i, o: None), "hook"),
    "grad mode": (lambda net: torch.set_grad_enabled(False), "gradients off"),
    "a replaced forward": (lambda net: setattr(net.model, "forward", lambda x: x), "attributes"),
    "a replaced module": (lambda net: net.model.features.__setitem__(1, torch.nn.Identity()), "replaced parts"),
    "a replaced parameter": (lambda net: setattr(net.model.classifier[6], "bias",
                                                 torch.nn.Parameter(torch.zeros(10))), "replaced parts"),
}


@pytest.mark.parametrize("what", list(MODEL_CHANGES))
def test_a_function_that_changes_the_model_is_reported_and_the_model_put_back(shapes_net, what):
    change, words = MODEL_CHANGES[what]
    with assert_restored(shapes_net):
        before = [p.detach().clone() for p in shapes_net.parameters()]
        result = check("saliency", _good_saliency_then(change))
        assert torch.is_grad_enabled()
    assert result.diagnosis == "changed_model", str(result)
    assert words in result.message
    assert all(torch.equal(a, b) for a, b in zip(before, shapes_net.parameters()))
    assert check("saliency", solutions.saliency).passed  # and the next check sees the model as it was


def test_a_function_that_raises_after_changing_the_model_still_leaves_it_restored(shapes_net):
    def hooks_then_fails(net, image, target):
        net.module("conv2").register_forward_hook(lambda m, i, o: None)
        net.train()
        raise RuntimeError("oops")

    with assert_restored(shapes_net):
        result = check("saliency", hooks_then_fails)
    assert result.diagnosis == "raised" and "oops" in result.message
    assert "hook" in result.message and "training mode" in result.message


def test_a_function_that_changes_its_input_in_place_is_told_so():
    def in_place(net, image, target):
        image.requires_grad_(True)
        net(image)[0, target].backward()
        grad = image.grad
        with torch.no_grad():
            image.mul_(0)
        return grad[0].abs().amax(0)

    result = check("saliency", in_place)
    assert result.diagnosis == "changed_input" and "`image`" in result.message


def test_switching_requires_grad_on_the_callers_image_is_a_note_not_a_failure():
    def flag(net, image, target):
        image.requires_grad_(True)
        net(image)[0, target].backward()
        return image.grad[0].abs().amax(0)

    result = check("saliency", flag)
    assert result.passed and result.notes and "requires_grad" in result.notes[0]


def test_the_score_is_the_share_of_inputs_right_times_the_points():
    """A partly right answer gets partial credit: filter_tiles without the guard for a flat
    filter is right on 4 of its 5 inputs."""
    def no_guard(weights):
        lo = weights.amin(dim=(1, 2, 3), keepdim=True)
        hi = weights.amax(dim=(1, 2, 3), keepdim=True)
        return (weights - lo) / (hi - lo)

    result = check("filter_tiles", no_guard)
    assert not result.passed and result.diagnosis == "flat_filter"
    assert [o.passed for o in result.outcomes] == [True, True, True, False, True]
    assert result.outcomes[3].diagnosis == "flat_filter"
    assert result.score == pytest.approx(4 / 5) and float(result) == pytest.approx(POINTS["filter_tiles"] * 4 / 5)
    assert "4 of 5 inputs right" in str(result) and "✗ input 4" in str(result)
    assert float(check("filter_tiles", no_guard, points=10)) == pytest.approx(8.0)
    right = check("filter_tiles", solutions.filter_tiles)
    assert right.score == 1 and float(right) == POINTS["filter_tiles"]
    assert float(check("saliency", saliency)) == 0.0  # the stub: not done, no points


def test_the_plain_text_of_a_result_is_the_number_nbgrader_reads():
    from IPython.core.formatters import DisplayFormatter

    result = check("total_variation", solutions.total_variation)
    data, _ = DisplayFormatter().format(result)
    assert float(data["text/plain"]) == POINTS["total_variation"]
    assert "✓ total_variation" in data["text/html"] and "Score: 5 of 5 inputs right" in data["text/html"]


def test_warnings_and_error_output_become_notes_never_stderr(capfd):
    import os
    import sys
    import warnings

    from cnnviz_widgets.exercises.lessons.total_variation import TotalVariationChecker  # noqa: F401

    def noisy(image):
        warnings.warn("a library complains", UserWarning)
        print("from Python", file=sys.stderr)
        os.write(2, b"from C++\n")
        return solutions.total_variation(image)

    result = check("total_variation", noisy)
    out, err = capfd.readouterr()
    assert err == "" and result.passed
    notes = " ".join(result.notes)
    assert "UserWarning: a library complains" in notes and "from Python" in notes and "from C++" in notes


def test_grading_needs_no_environment_variable(monkeypatch):
    """The score is the same whatever the environment: nothing for an instructor to forget."""
    def wrong(image):
        return solutions.total_variation(image) * 2

    plain = check("total_variation", wrong)
    monkeypatch.setenv("CNNVIZ_GRADING", "1")
    graded = check("total_variation", wrong)
    assert float(plain) == float(graded) == 0.0 and graded.diagnosis == plain.diagnosis == "scaled"


def test_a_result_shows_itself_as_escaped_html_and_as_text():
    def leaks_markup(image):
        raise ValueError("<script>alert(1)</script>")

    result = check("total_variation", leaks_markup)
    html = result._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html and "your function raised" in html
    assert str(result).startswith("✗ total_variation") and "0 of 5 inputs right: 0 of 4 points" in str(result)
    passed = check("total_variation", solutions.total_variation)
    assert "correct" in passed._repr_html_() and str(passed).startswith("✓")


def test_the_checker_never_changes_the_embedded_models(shapes_net, effnet):
    states = (model_state(shapes_net), model_state(effnet))
    for name in EXERCISES:
        check(name, getattr(solutions, name))
    assert (model_state(shapes_net), model_state(effnet)) == states


def test_the_exercises_package_imports_no_widget_or_plotting_library():
    import subprocess
    import sys

    code = ("import sys, cnnviz_widgets.exercises.lessons, cnnviz_widgets.exercises.notebooks\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('ipywidgets', 'matplotlib')]\n"
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
