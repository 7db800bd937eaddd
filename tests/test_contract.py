"""The engine contract (docs/ARCHITECTURE.md), checked for every public verb: the
techniques of `cnnviz_widgets.engine.TECHNIQUES` and the verbs around them (scores,
comparison, sanity check, judge, fooling, ascent of a unit, inversion of several
layers, the optimisation loop, neighbours and maps). For each: the call shape (`net`
first, `image` never `x`, keyword-only settings, no ``**settings``), an ``_iter`` twin
with `should_stop` that checks its settings when called and, paused, holds neither the
network nor the caller's grad mode, numpy integers accepted, a documented result on the
CPU, and the model restored after every call, also when it raises mid-forward.

Each verb runs on `tiny_network()` (32-px images, four layers), so the whole contract
takes seconds. A verb joins by a `Verb` here: how to call it small, with which integer
settings, and one bad setting. `test_every_long_run_is_covered` finds any ``_iter``
verb of the engine that has none.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
import torch

import cnnviz_widgets.engine as engine
from cnnviz_widgets.engine import TECHNIQUES
from cnnviz_widgets.engine.attribution import guided
from cnnviz_widgets.engine.core.network import Network
from cnnviz_widgets.engine.core.progress import Progress, run_to_end
from cnnviz_widgets.engine.core.targets import Neuron
from cnnviz_widgets.engine.evaluation import compare, scores
from cnnviz_widgets.engine.inspect import embedding, neighbors
from cnnviz_widgets.engine.optimize import PixelParam, adversarial, ascent, inversion, judge, loop, objectives
from cnnviz_widgets.engine.zoo.data import ListDataset, load_dataset
from tests.helpers import assert_restored, tiny_network

#: What a verb returns (docs/ARCHITECTURE.md, "Results"): a documented dataclass; a score
#: (one number to compare and assert on); documented dataclasses, one per item (a list or
#: a dict by name); a pair of tensors (indices, distances); positions (row, col, value);
#: a network (a changed copy).
RESULTS = ("dataclass", "score", "dataclasses", "pair", "positions", "network")

#: Parameters that may come positionally with a default: the subject's optional parts
#: (an untargeted attack's `target=None`; `embed`'s `method`, PCA by default).
OPTIONAL_SUBJECT = ("target", "method")


@dataclass
class Verb:
    """How the contract test calls one verb on the tiny network.

    fn / fn_iter: the verb and its ``_iter`` twin (None: one quick step); args(net,
    data) -> the positional arguments after the network; takes_net: False for verbs
    of feature matrices or maps; ints: integer settings, given as Python ints (the test
    also passes them as numpy integers); settings: the rest; bad: a setting that must
    raise ValueError before any work (at the call, for the twin); steps_kw: settings
    that make the _iter run take several steps; class_arg: the position in args of a
    class (or a list of classes), which may come from an argmax too; returns: one of
    `RESULTS`; forward: whether it runs the network (a failure inside its forward must
    then come out)."""

    fn: Callable
    fn_iter: Callable | None
    args: Callable[[Any, dict], tuple]
    takes_net: bool = True
    ints: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    bad: dict = field(default_factory=dict)
    steps_kw: dict = field(default_factory=dict)
    class_arg: int | None = None
    returns: str = "dataclass"
    forward: bool = True


@dataclass(frozen=True)
class From:
    """A setting taken from the test's data (a mask, say), by its key."""

    key: str


def _settings(verb: Verb, data: dict) -> dict:
    return {k: (data[v.key] if isinstance(v, From) else v) for k, v in verb.settings.items()}


def _image(data):
    return data["image"]


def _not_predicted(net, image) -> int:
    """A class the network does not already predict: a fooling run then has steps to take."""
    return (adversarial.predicted_class(net, image) + 1) % len(net.classes)


def _technique(key: str, **recipe) -> Verb:
    t = TECHNIQUES[key]
    return Verb(t.verb, t.verb_iter, takes_net=t.subject != "features", **recipe)


VERBS: dict[str, Verb] = {
    # --- the techniques, lesson by lesson
    "01": _technique("01", args=lambda net, d: (), forward=False),
    "02": _technique("02", args=lambda net, d: (d["dataset"], "tiny_b"), ints={"batch_size": 3}, bad={"batch_size": 0}),
    "03": _technique("03", args=lambda net, d: (d["features"], "tsne"), ints={"seed": 1, "max_iter": 250},
                     settings={"perplexity": 3}, bad={"max_iter": 10}, forward=False),
    "04": _technique("04", args=lambda net, d: (_image(d), "tiny_b")),
    "05": _technique("05", args=lambda net, d: (d["dataset"], "tiny_b"), ints={"k": 2, "batch_size": 3},
                     settings={"cache": False}, bad={"k": 0}),
    "06": _technique("06", args=lambda net, d: (_image(d), 1), ints={"patch": 16, "stride": 8, "batch_size": 2},
                     bad={"patch": 0}, class_arg=1),
    "07": _technique("07", args=lambda net, d: (d["images"], [0, 2, 1]), ints={"batch_size": 1},
                     bad={"batch_size": 0}, class_arg=1),
    "08": _technique("08", args=lambda net, d: (d["images"], Neuron("tiny_b", 2)), ints={"batch_size": 1},
                     settings={"rule": "guided"}, bad={"rule": "smooth"}),
    "09": _technique("09", args=lambda net, d: (1,), ints={"size": 32, "steps": 4, "seed": 3, "jitter": 1, "every": 2},
                     bad={"steps": -1}, class_arg=0),
    "10": _technique("10", args=lambda net, d: (_image(d), _not_predicted(net, _image(d))),
                     ints={"steps": 4, "every": 1}, settings={"eps": 0.05, "step_size": 0.01}, bad={"eps": 0},
                     class_arg=1),
    "11": _technique("11", args=lambda net, d: (_image(d), "tiny_b"), ints={"octaves": 2, "steps": 2, "seed": 1,
                                                                              "jitter": 1},
                     settings={"octave_scale": 1.4}, bad={"octaves": 0}),
    "12": _technique("12", args=lambda net, d: (_image(d), "tiny_b"), ints={"size": 32, "steps": 4, "seed": 2,
                                                                              "every": 2},
                     bad={"steps": -1}),
    "13a": _technique("13a", args=lambda net, d: (d["images"], [0, 2, 1]), ints={"batch_size": 1},
                      settings={"layer": "tiny_a"}, bad={"layer": "tiny_fc"}, class_arg=1),
    "13b": _technique("13b", args=lambda net, d: (d["images"], Neuron("tiny_fc", 2)), ints={"batch_size": 2},
                      bad={"batch_size": 0}),
    "13c": _technique("13c", args=lambda net, d: (d["images"], [1, 0, 2]), ints={"steps": 4, "batch_size": 3, "seed": 2},
                      settings={"baseline": "noise"}, bad={"steps": 0}, class_arg=1),
    "14a": _technique("14a", args=lambda net, d: (d["images"][1],), ints={"size": 32, "steps": 4, "seed": 2,
                                                                            "every": 2},
                      settings={"layers": {"tiny_a": 1.0, "tiny_b": 0.5}}, bad={"steps": -1}),
    "14b": _technique("14b", args=lambda net, d: (_image(d), d["images"][2]), ints={"size": 32, "steps": 4, "seed": 2,
                                                                                      "every": 2},
                      settings={"content_layer": "tiny_b", "style_layers": ["tiny_a", "tiny_b"], "tv_weight": 0.1},
                      bad={"style_weight": -1.0}),
    # --- lesson 08's unit pictures
    "neuron_gradient": Verb(guided.neuron_gradient, None, args=lambda net, d: (_image(d), "tiny_b", 2),
                            settings={"rule": "deconvnet"}, bad={"rule": "smooth"}),
    "top_positions": Verb(guided.top_positions, None, args=lambda net, d: (_image(d), "tiny_b", 2), ints={"k": 3},
                          bad={"k": 0}, returns="positions"),
    "neuron_pictures": Verb(guided.neuron_pictures, None, args=lambda net, d: (_image(d), "tiny_b", 2), ints={"k": 2},
                            settings={"rule": "guided"}, bad={"k": 0}, returns="dataclasses"),
    # --- lessons 02-03: neighbours and maps of feature matrices
    "nearest_neighbors": Verb(neighbors.nearest_neighbors, None, args=lambda net, d: (d["features"], 0),
                              takes_net=False, ints={"k": 3}, settings={"metric": "l2"}, bad={"k": 0},
                              returns="pair", forward=False),
    "neighbor_agreement": Verb(neighbors.neighbor_agreement, None, args=lambda net, d: (d["features"], d["labels"]),
                               takes_net=False, ints={"k": 2}, bad={"metric": "manhattan"}, returns="score",
                               forward=False),
    "knn_accuracy": Verb(embedding.knn_accuracy, None, args=lambda net, d: (d["features"], d["labels"]),
                         takes_net=False, ints={"k": 2, "folds": 2, "seed": 1}, bad={"k": 0}, returns="score",
                         forward=False),
    # --- lesson 13: scores, comparison, sanity check
    "curve": Verb(scores.curve, scores.curve_iter, args=lambda net, d: (_image(d), 1, d["heat"]),
                  ints={"steps": 4, "batch_size": 2, "seed": 1}, settings={"kind": "insertion"},
                  bad={"fill": "white"}, class_arg=1),
    "deletion_curve": Verb(scores.deletion_curve, None, args=lambda net, d: (_image(d), 1, d["heat"]),
                           ints={"steps": 4, "batch_size": 2, "seed": 1}, bad={"steps": 1}, class_arg=1),
    "insertion_curve": Verb(scores.insertion_curve, None, args=lambda net, d: (_image(d), 1, d["heat"]),
                            ints={"steps": 4, "batch_size": 2, "seed": 1}, bad={"steps": 1}, class_arg=1),
    "deletion_auc": Verb(scores.deletion_auc, None, args=lambda net, d: (_image(d), 1, d["heat"]),
                         ints={"steps": 4, "seed": 1}, settings={"fill": "black"}, bad={"steps": 1}, class_arg=1,
                         returns="score"),
    "insertion_auc": Verb(scores.insertion_auc, None, args=lambda net, d: (_image(d), 1, d["heat"]),
                          ints={"steps": 4, "seed": 1}, bad={"fill": "white"}, class_arg=1, returns="score"),
    "auc_scores": Verb(scores.auc_scores, scores.auc_scores_iter,
                       args=lambda net, d: (_image(d), 1, [d["heat"], 1 - d["heat"]]),
                       ints={"steps": 4, "batch_size": 3, "seed": 1}, bad={"kinds": ["erasure"]}, class_arg=1),
    "score_map": Verb(scores.score_map, None, args=lambda net, d: (_image(d), 1, d["heat"]), ints={"steps": 4, "seed": 1},
                      settings={"mask": From("mask")}, bad={"steps": 1}, class_arg=1),
    "pointing_game": Verb(scores.pointing_game, None, args=lambda net, d: (d["heat"], d["mask"]), takes_net=False,
                          ints={"tolerance": 1}, bad={"tolerance": -1}, returns="score", forward=False),
    "mask_mass": Verb(scores.mask_mass, None, args=lambda net, d: (d["heat"], d["mask"]), takes_net=False,
                      returns="score", forward=False),
    "randomised_network": Verb(scores.randomised_network, None, args=lambda net, d: (2,), ints={"seed": 1},
                               bad={"layers_top_down": ["nope"]}, returns="network", forward=False),
    "cascading_randomisation": Verb(scores.cascading_randomisation, scores.cascading_randomisation_iter,
                                    args=lambda net, d: (_image(d), 1), ints={"seed": 1},
                                    settings={"methods": ("saliency", "guided_backprop"),
                                              "layers_top_down": ["tiny_fc", "tiny_b"]},
                                    bad={"methods": ["lime"]}, class_arg=1),
    "compare": Verb(compare.compare, compare.compare_iter, args=lambda net, d: (_image(d), 1),
                    ints={"steps": 4, "seed": 1}, settings={"methods": ["saliency", "grad_cam"], "mask": From("mask")},
                    bad={"methods": ["lime"]}, class_arg=1),
    # --- lessons 09-12: the recipes on the loop, and the loop
    "visualize_channel": Verb(ascent.visualize_channel, ascent.visualize_channel_iter,
                              args=lambda net, d: ("tiny_b", 2), ints={"size": 32, "steps": 4, "seed": 3, "every": 2},
                              bad={"steps": -1}),
    "pgd": Verb(adversarial.pgd, adversarial.pgd_iter, args=lambda net, d: (_image(d), _not_predicted(net, _image(d))),
                ints={"steps": 4, "every": 1}, settings={"eps": 0.05, "step_size": 0.01}, bad={"eps": 0}, class_arg=1),
    "fgsm": Verb(adversarial.fgsm, None, args=lambda net, d: (_image(d), _not_predicted(net, _image(d))),
                 settings={"eps": 0.02}, bad={"eps": 0}, class_arg=1),
    "invert_layers": Verb(inversion.invert_layers, None, args=lambda net, d: (_image(d), ["tiny_a", "tiny_b"]),
                          ints={"size": 32, "steps": 2, "seed": 2, "every": 1}, bad={"steps": -1},
                          returns="dataclasses"),
    "optimize": Verb(loop.optimize, loop.optimize_iter,
                     args=lambda net, d: (objectives.channel("tiny_b", 1), PixelParam(_image(d).clone())),
                     ints={"steps": 4, "seed": 1, "every": 1}, settings={"step_size": 0.05}, bad={"steps": -1}),
    "judge": Verb(judge.judge, None, args=lambda net, d: (_image(d), 1), ints={"crops": 3, "seed": 1, "batch_size": 2},
                  bad={"crops": 0}, class_arg=1),
    "15": _technique("15", args=lambda net, d: (d["dataset"], "tiny_b"), ints={"batch_size": 3},
                     settings={"quantile": 0.05}, bad={"quantile": 0}),
}

def cases(needs_iter: bool = False, needs_net: bool = False):
    return [pytest.param(name, id=name) for name, v in VERBS.items()
            if (v.fn_iter is not None or not needs_iter) and (v.takes_net or not needs_net)]


@pytest.fixture(scope="module")
def net():
    return tiny_network(seed=5)


@pytest.fixture(scope="module")
def data(net):
    g = torch.Generator().manual_seed(0)
    shapes = load_dataset("shapes", n=7, seed=3, size=32)
    mask = np.zeros((32, 32), bool)
    mask[8:20, 10:24] = True
    return {
        "image": torch.rand(1, 3, 32, 32, generator=g),
        "images": torch.rand(3, 3, 32, 32, generator=g),
        # nameless: never cached, so every call really scans (and can fail and be stopped)
        "dataset": ListDataset([shapes[i] for i in range(7)], shapes.classes, ""),
        "features": torch.randn(12, 5, generator=g),
        "labels": np.array([0, 1] * 6),
        "heat": torch.rand(32, 32, generator=g).double().numpy(),
        "mask": mask,
    }


def call(name: str, net, data, fn=None, numpy_ints: bool = False, **extra):
    verb = VERBS[name]
    ints = {k: (np.int64(v) if numpy_ints else v) for k, v in verb.ints.items()}
    head = (net,) if verb.takes_net else ()
    return (fn or verb.fn)(*head, *verb.args(net, data), **{**_settings(verb, data), **ints, **extra})


def numbers(result) -> list:
    """Every number a result holds (tensors, arrays, floats; nested in dataclasses, lists
    and dicts), in order: what two runs of one verb must agree on."""
    if isinstance(result, torch.nn.Module):
        return [p.detach() for p in result.parameters()]
    if isinstance(result, (torch.Tensor, np.ndarray)):
        return [result]
    if isinstance(result, (bool, int, float, np.floating, np.integer)):
        return [np.asarray(float(result))]
    if dataclasses.is_dataclass(result):
        return [n for f in dataclasses.fields(result) for n in numbers(getattr(result, f.name))]
    if isinstance(result, dict):
        return [n for v in result.values() for n in numbers(v)]
    if isinstance(result, (list, tuple)):
        return [n for v in result for n in numbers(v)]
    return []


def same(a, b) -> bool:
    xs, ys = numbers(a), numbers(b)
    if len(xs) != len(ys) or not xs:
        return False
    for x, y in zip(xs, ys):
        x = torch.as_tensor(np.asarray(x.detach() if isinstance(x, torch.Tensor) else x)).double()
        y = torch.as_tensor(np.asarray(y.detach() if isinstance(y, torch.Tensor) else y)).double()
        if x.shape != y.shape or not torch.equal(torch.isnan(x), torch.isnan(y)):
            return False
        ok = ~torch.isnan(y)
        scale = float(y[ok].abs().max()) if ok.any() else 1.0
        if ok.any() and float((x[ok] - y[ok]).abs().max()) > 1e-6 * (scale or 1.0):
            return False
    return True


def test_every_lesson_has_a_technique_and_a_verb():
    lessons = sorted({t.lesson for t in TECHNIQUES.values()})
    assert lessons == [f"{i:02d}" for i in range(1, len(lessons) + 1)] and len(lessons) >= 14, lessons
    assert sorted(k for k in TECHNIQUES if k.startswith("13")) == ["13a", "13b", "13c"]
    assert sorted(k for k in TECHNIQUES if k.startswith("14")) == ["14a", "14b"]
    assert set(TECHNIQUES) <= set(VERBS), "give every technique a Verb in tests/test_contract.py"
    for key, t in TECHNIQUES.items():
        assert key == t.key
        assert t.verb_iter is not None or t.no_iter, f"{t.name}: say why it has no _iter twin"
    for name, verb in VERBS.items():
        assert verb.returns in RESULTS, name


def _public_functions():
    for info in pkgutil.walk_packages(engine.__path__, engine.__name__ + "."):
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", ()):
            fn = getattr(module, name, None)
            if inspect.isfunction(fn) and fn.__module__ == module.__name__:
                yield fn


def test_every_long_run_is_covered():
    """Every ``_iter`` verb of the engine (on a network or a feature matrix) has a `Verb`
    here, as the twin of its plain verb: no long run escapes the contract."""
    twins = {v.fn_iter for v in VERBS.values() if v.fn_iter is not None}
    missing = [f"{fn.__module__}.{fn.__name__}" for fn in _public_functions()
               if fn.__name__.endswith("_iter") and next(iter(inspect.signature(fn).parameters)) in ("net", "features")
               and fn not in twins]
    assert not missing, f"give these a Verb in tests/test_contract.py: {missing}"


@pytest.mark.parametrize("name", cases())
def test_call_shape(name):
    """`net` first (or the matrix or map a verb reads), then the subject; `image` never
    `x`; every setting keyword-only; no ``**settings``: the signature is the truth."""
    verb = VERBS[name]
    for fn in [verb.fn] + ([verb.fn_iter] if verb.fn_iter else []):
        params = inspect.signature(fn).parameters
        names = list(params)
        assert "x" not in params, f"{fn.__name__} calls its image x"
        assert not any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in params.values()), \
            f"{fn.__name__} hides its settings in **settings"
        assert (names[0] == "net") == verb.takes_net, f"{fn.__name__} takes {names[0]!r} first"
        if "image" in params:  # second and positional, or (a start image, as gradient ascent's) keyword-only
            assert names[1] == "image" or params["image"].kind == params["image"].KEYWORD_ONLY, fn.__name__
        loose = [p.name for p in params.values() if p.kind == p.POSITIONAL_OR_KEYWORD
                 and p.default is not p.empty and p.name not in OPTIONAL_SUBJECT]
        assert not loose, f"{fn.__name__}: settings {loose} must be keyword-only (after *)"


@pytest.mark.parametrize("name", cases(needs_iter=True))
def test_iter_twin_has_should_stop_yields_progress_and_matches_the_verb(name, net, data):
    verb = VERBS[name]
    twin = verb.fn_iter
    assert twin.__name__ == verb.fn.__name__ + "_iter"
    verb_params = inspect.signature(verb.fn).parameters
    twin_params = inspect.signature(twin).parameters
    assert "should_stop" in twin_params and twin_params["should_stop"].kind == inspect.Parameter.KEYWORD_ONLY
    assert twin_params["should_stop"].default is None
    assert not inspect.isgeneratorfunction(twin), f"{twin.__name__} must check its settings when called"
    missing = [p for p in verb_params if p not in twin_params]
    assert not missing, f"{twin.__name__} lacks {missing}"
    differ = [p for p in verb_params if verb_params[p].default != twin_params[p].default]
    assert not differ, f"{twin.__name__} has other defaults for {differ}"
    steps = list(call(name, net, data, twin, **verb.steps_kw))
    assert steps and all(isinstance(p, Progress) for p in steps)
    assert steps[-1].done and not any(p.done for p in steps[:-1])
    assert all(p.result is not None for p in steps)
    assert all(p.result.ended == "" for p in steps[:-1]), "a preview's result says ended == ''"
    assert steps[-1].result.ended in ("done", "reached")  # "reached": a fooling run met its goal early
    direct = call(name, net, data, **verb.steps_kw)
    assert type(direct) is type(steps[-1].result)
    assert same(steps[-1].result, direct)
    assert same(run_to_end(call(name, net, data, twin, **verb.steps_kw)), direct)
    # Stopped at the first question: a last progress, done, whose result says so.
    stopped = list(call(name, net, data, twin, should_stop=lambda: True, **verb.steps_kw))
    assert stopped[-1].done and stopped[-1].result.ended == "stopped"
    assert stopped[-1].step < steps[-1].step


@pytest.mark.parametrize("name", [c for c in cases(needs_iter=True) if VERBS[c.values[0]].bad])
def test_iter_twin_refuses_a_bad_setting_when_called(name, net, data):
    """The twin raises at the call, before anything is iterated: an app checks its
    settings in its own thread, before it starts a worker."""
    verb = VERBS[name]
    with assert_restored(net), pytest.raises(ValueError):
        call(name, net, data, verb.fn_iter, **verb.steps_kw, **verb.bad)


def _runs_in_another_thread(net, timeout: float = 20.0) -> bool:
    """Whether another thread can use `net` (its guard, a forward) within `timeout` s."""
    finished = threading.Event()

    def use():
        with net.guard(), torch.no_grad():
            net(torch.rand(1, 3, 32, 32))
        finished.set()

    worker = threading.Thread(target=use, daemon=True)
    worker.start()
    worker.join(timeout)
    return finished.is_set()


@pytest.mark.parametrize("name", cases(needs_iter=True, needs_net=True))
def test_a_paused_run_holds_neither_the_network_nor_the_grad_mode(name, net, data):
    """Paused after its first progress, a long run leaves the network free for another
    thread (no guard held across a yield) and the caller's grad mode as it was (no
    ``no_grad`` or ``enable_grad`` held across a yield), whichever the caller had."""
    verb = VERBS[name]
    for grad in (True, False):
        with torch.set_grad_enabled(grad):
            steps = call(name, net, data, verb.fn_iter, **verb.steps_kw)
            try:
                first = next(iter(steps))
                assert isinstance(first, Progress)
                assert torch.is_grad_enabled() is grad, f"a paused {name} changed the grad mode"
                assert _runs_in_another_thread(net), f"a paused {name} holds the network"
            finally:
                steps.close()


@pytest.mark.parametrize("name", cases())
def test_numpy_integers_are_accepted_alike(name, net, data):
    verb = VERBS[name]
    plain = call(name, net, data)
    assert same(call(name, net, data, numpy_ints=True), plain)
    if verb.class_arg is not None:  # the class too may come from an argmax: numpy, or an array of them
        args = list(verb.args(net, data))
        c = args[verb.class_arg]
        args[verb.class_arg] = np.array(c) if isinstance(c, list) else np.int64(c)
        head = (net,) if verb.takes_net else ()
        assert same(verb.fn(*head, *args, **{**_settings(verb, data), **verb.ints}), plain)


def _documented(cls) -> str:
    return " ".join(inspect.getdoc(c) or "" for c in cls.__mro__ if dataclasses.is_dataclass(c))


def _assert_documented_dataclass(result) -> None:
    assert dataclasses.is_dataclass(result), f"{type(result).__name__} is not a dataclass"
    doc = _documented(type(result))
    undocumented = [f.name for f in dataclasses.fields(result) if f.name not in doc and f.repr]
    assert not undocumented, f"{type(result).__name__} does not document {undocumented}"
    for f in dataclasses.fields(result):
        value = getattr(result, f.name)
        if isinstance(value, torch.Tensor):
            assert value.device.type == "cpu", f.name


@pytest.mark.parametrize("name", cases())
def test_results_are_documented_and_on_the_cpu(name, net, data):
    verb = VERBS[name]
    result = call(name, net, data)
    if verb.returns == "dataclass":
        _assert_documented_dataclass(result)
    elif verb.returns == "dataclasses":
        items = list(result.values()) if isinstance(result, dict) else list(result)
        assert items
        for item in items:
            _assert_documented_dataclass(item)
    elif verb.returns == "score":
        assert isinstance(result, (float, bool)), type(result)
    elif verb.returns == "pair":
        assert len(result) == 2 and all(isinstance(t, torch.Tensor) and t.device.type == "cpu" for t in result)
    elif verb.returns == "positions":
        assert result and all(len(p) == 3 and isinstance(p[2], float) for p in result)
    else:  # a network: a changed copy, never the one given
        assert isinstance(result, Network) and result is not net


class _Boom(RuntimeError):
    pass


@pytest.mark.parametrize("name", cases())
def test_state_restored_after_calls_bad_settings_and_failures_mid_forward(name, net, data):
    verb = VERBS[name]
    net.train()  # a caller left it training: the engine runs in eval and gives it back
    try:
        with assert_restored(net):
            call(name, net, data)
        assert net.training
        if verb.bad:
            with assert_restored(net), pytest.raises(ValueError):
                call(name, net, data, **verb.bad)
        if not verb.forward:
            return  # runs no forward to fail in
        # A failure inside the forward pass: the verb's own hooks and modes must go too.
        armed = {"on": True}

        def boom(_module, _inputs, _output):
            if armed["on"]:
                raise _Boom("failing on purpose inside the forward pass")

        handle = net.module("tiny_a").register_forward_hook(boom)
        try:
            with assert_restored(net), pytest.raises(_Boom):
                call(name, net, data)
            # A long run abandoned while paused leaves nothing behind either.
            armed["on"] = False
            if verb.fn_iter is not None:
                with assert_restored(net):
                    steps = call(name, net, data, verb.fn_iter, **verb.steps_kw)
                    next(iter(steps))
                    assert torch.is_grad_enabled()
                    steps.close()
        finally:
            handle.remove()
    finally:
        net.eval()
