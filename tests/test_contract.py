"""The engine contract (docs/ARCHITECTURE.md), checked for every technique in
`cnnviz_widgets.engine.TECHNIQUES`: the `image` argument, an ``_iter`` twin with
`should_stop`, numpy integers accepted, documented dataclass results on the CPU, and
the model restored after every call, also when it raises mid-forward.

Each technique runs on `tiny_network()` (32-px images, four layers), so the whole
contract takes seconds. A technique joins the registry with a recipe here: how to call
it small, with which integer settings, and one bad setting.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
import torch

from cnnviz_widgets.engine import TECHNIQUES
from cnnviz_widgets.engine.zoo.data import ListDataset, load_dataset
from cnnviz_widgets.engine.core.progress import Progress, run_to_end
from cnnviz_widgets.engine.core.targets import Neuron
from tests.helpers import assert_restored, tiny_network

PENDING = pytest.mark.xfail(strict=True, reason="a known departure from the contract, named in the technique's Recipe")


@dataclass
class Recipe:
    """How the contract test calls one technique on the tiny network.

    args(net, data) -> the positional arguments after the network (none for "features");
    ints: integer settings, given as Python ints (the test also passes them as numpy
    integers); settings: the rest; bad: a setting that must raise ValueError before any
    work; steps_kw: settings that make the _iter run take several steps."""

    args: Callable[[Any, dict], tuple]
    ints: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    bad: dict = field(default_factory=dict)
    steps_kw: dict = field(default_factory=dict)
    departures: tuple = ()  # contract checks this technique fails today (xfail, strict)


def _image(data):
    return data["image"]


def _not_predicted(net, image) -> int:
    """A class the network does not already predict: a fooling run then has steps to take."""
    from cnnviz_widgets.engine.optimize.adversarial import predicted_class

    return (predicted_class(net, image) + 1) % len(net.classes)


RECIPES: dict[str, Recipe] = {
    "01": Recipe(args=lambda net, d: ()),
    "02": Recipe(args=lambda net, d: (d["dataset"], "tiny_b"), ints={"batch_size": 3}, bad={"batch_size": 0}),
    "03": Recipe(args=lambda net, d: (d["features"], "tsne"), ints={"seed": 1, "max_iter": 250},
                 settings={"perplexity": 3}, bad={"max_iter": 10}),
    "04": Recipe(args=lambda net, d: (_image(d), "tiny_b"), bad={}),
    "05": Recipe(args=lambda net, d: (d["dataset"], "tiny_b"), ints={"k": 2, "batch_size": 3},
                 settings={"cache": False}, bad={"k": 0}),
    "06": Recipe(args=lambda net, d: (_image(d), 1), ints={"patch": 16, "stride": 8, "batch_size": 2},
                 bad={"patch": 0}),
    "07": Recipe(args=lambda net, d: (d["images"], [0, 2, 1]), ints={"batch_size": 1}, bad={"batch_size": 0}),
    "08": Recipe(args=lambda net, d: (d["images"], Neuron("tiny_b", 2)), ints={"batch_size": 1},
                 settings={"rule": "guided"}, bad={"rule": "smooth"}),
    "09": Recipe(args=lambda net, d: (1,), ints={"size": 32, "steps": 4, "seed": 3, "jitter": 1, "every": 2},
                 bad={"steps": -1}),
    "10": Recipe(args=lambda net, d: (_image(d), _not_predicted(net, _image(d))), ints={"steps": 4, "every": 1},
                 settings={"eps": 0.05, "step_size": 0.01}, bad={"eps": 0}),
    "11": Recipe(args=lambda net, d: (_image(d), "tiny_b"), ints={"octaves": 2, "steps": 2, "seed": 1, "jitter": 1},
                 settings={"octave_scale": 1.4}, bad={"octaves": 0}),
    "12": Recipe(args=lambda net, d: (_image(d), "tiny_b"), ints={"size": 32, "steps": 4, "seed": 2, "every": 2},
                 bad={"steps": -1}),
    "13a": Recipe(args=lambda net, d: (d["images"], [0, 2, 1]), ints={"batch_size": 1},
                  settings={"layer": "tiny_a"}, bad={"layer": "tiny_fc"}),
    "13b": Recipe(args=lambda net, d: (d["images"], Neuron("tiny_fc", 2)), ints={"batch_size": 2},
                  bad={"batch_size": 0}),
    "13c": Recipe(args=lambda net, d: (d["images"], [1, 0, 2]), ints={"steps": 4, "batch_size": 3, "seed": 2},
                  settings={"baseline": "noise"}, bad={"steps": 0}),
    "15": Recipe(args=lambda net, d: (d["dataset"], "tiny_b"), ints={"batch_size": 3},
                 settings={"quantile": 0.05}, bad={"quantile": 0}),
}

CHECKS = ("image argument", "iter twin", "numpy integers", "documented result", "state restored")


def cases(check: str, needs_iter: bool = False):
    """One pytest parameter per technique (the departures marked xfail, strict)."""
    out = []
    for lesson, technique in TECHNIQUES.items():
        if needs_iter and technique.verb_iter is None:
            continue
        recipe = RECIPES.get(lesson)
        marks = [PENDING] if recipe is not None and check in recipe.departures else []
        out.append(pytest.param(lesson, marks=marks, id=f"{lesson}-{technique.name}"))
    return out


@pytest.fixture(scope="module")
def net():
    return tiny_network(seed=5)


@pytest.fixture(scope="module")
def data(net):
    g = torch.Generator().manual_seed(0)
    shapes = load_dataset("shapes", n=7, seed=3, size=32)
    return {
        "image": torch.rand(1, 3, 32, 32, generator=g),
        "images": torch.rand(3, 3, 32, 32, generator=g),
        # nameless: never cached, so every call really scans (and can fail and be stopped)
        "dataset": ListDataset([shapes[i] for i in range(7)], shapes.classes, ""),
        "features": torch.randn(12, 5, generator=g),
    }


def call(lesson: str, net, data, fn=None, numpy_ints: bool = False, **extra):
    technique, recipe = TECHNIQUES[lesson], RECIPES[lesson]
    ints = {k: (np.int64(v) if numpy_ints else v) for k, v in recipe.ints.items()}
    kwargs = {**recipe.settings, **ints, **extra}
    head = () if technique.subject == "features" else (net,)
    return (fn or technique.verb)(*head, *recipe.args(net, data), **kwargs)


def main_tensor(result) -> torch.Tensor | np.ndarray:
    """The field that holds a result's numbers (the first array-valued field)."""
    for f in dataclasses.fields(result):
        value = getattr(result, f.name)
        if isinstance(value, (torch.Tensor, np.ndarray)):
            return value
    raise AssertionError(f"{type(result).__name__} holds no tensor")


def same(a, b) -> bool:
    a, b = torch.as_tensor(np.asarray(a)).double(), torch.as_tensor(np.asarray(b)).double()
    scale = float(b.abs().max()) or 1.0
    return a.shape == b.shape and float((a - b).abs().max()) <= 1e-6 * scale


def test_every_lesson_has_a_technique_and_a_recipe():
    assert sorted({t.lesson for t in TECHNIQUES.values()}) == [f"{i:02d}" for i in range(1, 14)] + ["15"]
    assert sorted(k for k in TECHNIQUES if k.startswith("13")) == ["13a", "13b", "13c"]
    assert set(RECIPES) == set(TECHNIQUES), "give every technique a recipe in tests/test_contract.py"
    for key, t in TECHNIQUES.items():
        assert key == t.key
        assert t.verb_iter is not None or t.no_iter, f"{t.name}: say why it has no _iter twin"


@pytest.mark.parametrize("lesson", cases("image argument"))
def test_image_argument_is_called_image(lesson):
    technique = TECHNIQUES[lesson]
    verbs = [technique.verb] + ([technique.verb_iter] if technique.verb_iter else [])
    twin = inspect.signature(technique.verb_iter).parameters if technique.verb_iter else {}
    for verb in verbs:
        params = inspect.signature(verb).parameters
        assert "x" not in params, f"{verb.__name__} calls its image x"
        names = list(params)
        if technique.subject == "features":
            assert names[0] == "features", verb.__name__
        elif technique.subject == "network":
            assert names[0] == "net", verb.__name__
        else:
            assert names[0] == "net", verb.__name__
            expected = technique.subject
            # second and positional, or (a start image, as gradient ascent's) keyword-only;
            # a verb that forwards **settings to its twin is held to the twin's signature
            keyword = params.get(expected) or (twin.get(expected) if any(
                p.kind == p.VAR_KEYWORD for p in params.values()) else None)
            assert names[1] == expected or (keyword is not None and keyword.kind == keyword.KEYWORD_ONLY), \
                f"{verb.__name__} takes its {expected} as {names[1]!r}"


@pytest.mark.parametrize("lesson", cases("iter twin", needs_iter=True))
def test_iter_twin_has_should_stop_yields_progress_and_matches_the_verb(lesson, net, data):
    technique, recipe = TECHNIQUES[lesson], RECIPES[lesson]
    twin = technique.verb_iter
    assert twin.__name__ == technique.verb.__name__ + "_iter"
    verb_params = inspect.signature(technique.verb).parameters
    twin_params = inspect.signature(twin).parameters
    assert "should_stop" in twin_params and twin_params["should_stop"].kind == inspect.Parameter.KEYWORD_ONLY
    assert twin_params["should_stop"].default is None
    missing = [p for p in verb_params if p not in twin_params and verb_params[p].kind != inspect.Parameter.VAR_KEYWORD]
    assert not missing, f"{twin.__name__} lacks {missing}"
    steps = list(call(lesson, net, data, twin))
    assert steps and all(isinstance(p, Progress) for p in steps)
    assert steps[-1].done and not any(p.done for p in steps[:-1])
    assert all(p.result is not None for p in steps)
    assert all(p.result.ended == "" for p in steps[:-1]), "a preview's result says ended == ''"
    assert steps[-1].result.ended in ("done", "reached")  # "reached": a fooling run met its goal early
    direct = call(lesson, net, data)
    assert type(direct) is type(steps[-1].result)
    assert same(main_tensor(steps[-1].result), main_tensor(direct))
    assert same(main_tensor(run_to_end(call(lesson, net, data, twin))), main_tensor(direct))
    # Stopped at the first question: a last progress, done, whose result says so.
    stopped = list(call(lesson, net, data, twin, should_stop=lambda: True))
    assert stopped[-1].done and stopped[-1].result.ended == "stopped"
    assert stopped[-1].step < steps[-1].step


@pytest.mark.parametrize("lesson", cases("numpy integers"))
def test_numpy_integers_are_accepted_alike(lesson, net, data):
    recipe = RECIPES[lesson]
    plain = call(lesson, net, data)
    with_numpy = call(lesson, net, data, numpy_ints=True)
    assert same(main_tensor(with_numpy), main_tensor(plain))
    if lesson in ("07", "10", "13a", "13c"):  # the class too may come from an argmax: numpy, or an array of them
        args = list(recipe.args(net, data))
        target = np.array(args[1]) if isinstance(args[1], list) else np.int64(args[1])
        again = TECHNIQUES[lesson].verb(net, args[0], target, **{**recipe.settings, **recipe.ints})
        assert same(main_tensor(again), main_tensor(plain))


def _documented(cls) -> str:
    return " ".join(inspect.getdoc(c) or "" for c in cls.__mro__ if dataclasses.is_dataclass(c))


@pytest.mark.parametrize("lesson", cases("documented result"))
def test_results_are_documented_dataclasses_with_cpu_tensors(lesson, net, data):
    result = call(lesson, net, data)
    assert dataclasses.is_dataclass(result), f"{type(result).__name__} is not a dataclass"
    doc = _documented(type(result))
    undocumented = [f.name for f in dataclasses.fields(result) if f.name not in doc and f.repr]
    assert not undocumented, f"{type(result).__name__} does not document {undocumented}"
    for f in dataclasses.fields(result):
        value = getattr(result, f.name)
        if isinstance(value, torch.Tensor):
            assert value.device.type == "cpu", f.name


class _Boom(RuntimeError):
    pass


@pytest.mark.parametrize("lesson", cases("state restored"))
def test_state_restored_after_calls_bad_settings_and_failures_mid_forward(lesson, net, data):
    technique, recipe = TECHNIQUES[lesson], RECIPES[lesson]
    net.train()  # a caller left it training: the engine runs in eval and gives it back
    try:
        with assert_restored(net):
            call(lesson, net, data)
        assert net.training
        if recipe.bad:
            with assert_restored(net), pytest.raises(ValueError):
                call(lesson, net, data, **recipe.bad)
        if technique.subject == "features":
            return  # no network: nothing runs forward
        # A failure inside the forward pass: the technique's own hooks and modes must go too.
        armed = {"on": True}

        def boom(_module, _inputs, _output):
            if armed["on"]:
                raise _Boom("failing on purpose inside the forward pass")

        handle = net.module("tiny_a").register_forward_hook(boom)
        try:
            with assert_restored(net):
                if lesson == "01":
                    call(lesson, net, data)  # reads weights only: runs no forward to fail in
                else:
                    with pytest.raises(_Boom):
                        call(lesson, net, data)
            # A long run abandoned while paused leaves nothing behind either.
            armed["on"] = False
            if technique.verb_iter is not None:
                with assert_restored(net):
                    steps = call(lesson, net, data, technique.verb_iter, **recipe.steps_kw)
                    next(iter(steps))
                    assert torch.is_grad_enabled()
                    steps.close()
        finally:
            handle.remove()
    finally:
        net.eval()
