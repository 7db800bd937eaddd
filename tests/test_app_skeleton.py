"""One app skeleton: every app takes the network it is given and uses it, switches model
one way, reports a wrong model name clearly, computes in its Runner; the Runner cancels
a stale job; notebooks take pictures from `render`, never from `widgets`."""

from __future__ import annotations

import ast
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cnnviz_widgets import widgets
from cnnviz_widgets.engine.zoo.data import load_dataset
from cnnviz_widgets.widgets.base import App, Runner

from .helpers import TINY_CLASSES, TINY_LAYERS, png_to_array, tiny_network

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.widgets


@pytest.fixture(scope="module")
def shapes20():
    return load_dataset("shapes", n=20, seed=3)


# (app, constructor settings, whether Run makes the picture) for every lesson app
APPS = {
    "HelloApp": ({"image": "cat"}, False),
    "FiltersApp": ({}, False),
    "ActivationsApp": ({"image": "cat"}, False),
    "NeighborsApp": ({"k": 3}, False),
    "EmbeddingApp": ({"method": "pca", "thumbnails": 0}, False),
    "PatchesApp": ({"k": 2, "rows": 2}, False),
    "OcclusionApp": ({"image": "cat", "patch": 16, "stride": 8}, False),
    "SaliencyApp": ({"image": "cat"}, False),
    "GuidedBackpropApp": ({"image": "cat"}, False),
    "AscentApp": ({"size": 64, "steps": 2}, True),
    "FoolingApp": ({"image": "cat", "target": "quokka", "steps": 2}, True),
    "DeepDreamApp": ({"image": "cat", "size": 64, "steps": 2, "octaves": 1}, True),
    "InversionApp": ({"image": "cat", "size": 32, "steps": 2}, True),
    "StyleApp": ({"image": "cat", "style": "waves", "size": 32, "steps": 2}, True),
    "CompareApp": ({"image": "cat", "methods": ["saliency", "grad_cam"]}, False),
    "DissectionApp": ({"k": 2, "rows": 2, "quantile": 0.05}, False),
}
DATASET_APPS = {"NeighborsApp", "EmbeddingApp", "PatchesApp", "DissectionApp"}


def test_every_lesson_app_is_covered():
    assert set(APPS) == {name for name in widgets.__all__ if name.endswith("App") and name != "App"}


def _build(name: str, model, shapes20, **extra):
    settings, _ = APPS[name]
    kwargs = dict(settings, **extra)
    if name in DATASET_APPS:
        kwargs["dataset"] = shapes20
    return getattr(widgets, name)(model, threaded=False, **kwargs)


@pytest.mark.parametrize("name", sorted(APPS))
def test_every_app_uses_the_network_it_is_given(name, shapes20):
    net = tiny_network()
    before = net.model.forwards
    app = _build(name, net, shapes20)
    if APPS[name][1]:
        app.run()
        app.runner.wait()
    assert app.error == "", app.error
    assert app.net is net
    # the model picker lists it under its own name, chosen, and gives it back as it is
    assert app.model_picker.value == "tiny" and ("tiny (your network)", "tiny") in app.model_picker.options
    assert app.model_picker.network() is net
    # its layers and classes are what the pickers offer
    for control in vars(app).values():
        if isinstance(control, widgets.LayerPicker):
            assert control.options and set(control.options) - {"pixels"} <= set(TINY_LAYERS), control.options
        if isinstance(control, widgets.ClassPicker):
            assert list(control.options) == TINY_CLASSES
    # and the computation ran on it
    if name == "FiltersApp":  # weights, no forward pass: its conv1 is 7 filters of 3 x 5 x 5
        assert "7 filters of 3 x 5 x 5" in app.info.value
    else:
        assert net.model.forwards > before, "the app never ran the network it was given"
    assert png_to_array(app.view.value).size > 4 * 4 * 3


@pytest.mark.parametrize("name", sorted(APPS))
def test_a_wrong_model_name_is_one_clear_message(name, shapes20):
    wrong = r"unknown model 'efficentnet_lite0'\. Did you mean efficientnet_lite0"
    with pytest.raises((ValueError, RuntimeError), match=wrong):
        _build(name, "efficentnet_lite0", shapes20)
    with pytest.raises(TypeError, match="model is a Network or a model name, not int"):
        _build(name, 3, shapes20)


def test_switching_away_and_back_keeps_the_network_given():
    net = tiny_network()
    app = widgets.HelloApp(net, image="coffee", threaded=False)
    seen = []
    app.on_model = seen.append
    app.model_picker.value = "shapes"
    assert app.error == "" and app.net.name == "shapes" and seen == [app.net]
    assert app.predictions[0][0] in app.net.classes
    app.model_picker.value = "tiny"
    assert app.net is net and seen[-1] is net and app.predictions[0][0] in TINY_CLASSES


def test_a_given_network_with_a_kit_models_name_is_not_swapped():
    """A hand-made network called like a kit model stays the one given (never the zoo's)."""
    import copy

    from cnnviz_widgets.engine.zoo.models import load_model

    net = copy.deepcopy(load_model("shapes"))
    app = widgets.GuidedBackpropApp(net, image="cat", threaded=False)
    assert app.net is net and app.model_picker.network() is net and app.model_picker.network() is not load_model("shapes")
    app.model_picker.value = "efficientnet_lite0"
    app.model_picker.value = "shapes"
    assert app.net is net and app.error == ""


@pytest.mark.parametrize("name", sorted(DATASET_APPS))
def test_dataset_apps_use_the_dataset_given_and_switch_it_one_way(name, shapes20):
    net = tiny_network()
    app = _build(name, net, shapes20)
    assert app.dataset is shapes20 and app.dataset_picker.value == shapes20.name
    seen = []
    app.on_dataset = lambda data: seen.append(data) or type(app).on_dataset(app, data)
    before = app.view.value
    app.dataset_picker.value = "samples"  # the bundled photos, offline
    app.runner.wait()
    assert app.error == "" and app.dataset.name == "samples" and seen == [app.dataset]
    assert app.view.value != before and app.net is net
    app.dataset_picker.value = shapes20.name
    assert app.dataset is shapes20 and app.error == ""


def test_an_online_dataset_offline_is_a_message_and_the_picker_goes_back(shapes20, monkeypatch):
    monkeypatch.setenv("CNNVIZ_OFFLINE", "1")
    monkeypatch.setenv("CNNVIZ_DATA_HOME", "/nonexistent-cnnviz-data")
    app = _build("PatchesApp", tiny_network(), shapes20)
    app.dataset_picker.value = "imagenette"
    assert "offline" in app.error and app.dataset_picker.value == shapes20.name and app.dataset is shapes20


def test_image_seeds_are_one_path(tmp_path):
    """A sample's name, a PIL image, an array, a tensor, a file's bytes or path: one `choose`."""
    import io

    import torch
    from PIL import Image

    from cnnviz_widgets.engine.zoo.samples import sample_image

    picker = widgets.ImagePicker()
    assert picker.choose("coffee") == "coffee" and picker.image.tobytes() == sample_image("coffee").tobytes()
    red = Image.new("RGB", (40, 30), (250, 0, 0))
    assert picker.choose(red) == "your image" and picker.image is red
    array = np.zeros((20, 24, 3), np.uint8)
    array[..., 1] = 200
    picker.choose(array)
    assert picker.value == "your image (2)" and picker.image.getpixel((0, 0)) == (0, 200, 0)
    picker.choose(torch.ones(3, 16, 16) * torch.tensor([0.0, 0.0, 1.0]).view(3, 1, 1))
    assert picker.image.getpixel((5, 5)) == (0, 0, 255) and picker.image.size == (16, 16)
    buf = io.BytesIO()
    Image.new("RGB", (48, 40), (9, 9, 9)).save(buf, format="PNG")
    picker.choose(buf.getvalue(), name="mine.png")
    assert picker.value == "mine.png" and picker.image.size == (48, 40)
    path = tmp_path / "grey.png"
    path.write_bytes(buf.getvalue())
    assert picker.choose(path) == "grey.png"
    with pytest.raises(ValueError, match="unknown image 'kitten': choose one of .*cat"):
        picker.choose("kitten")
    with pytest.raises(ValueError, match="not an image|cannot|image"):
        picker.choose(b"just some text", name="notes.txt")


def test_a_bad_image_setting_is_a_message_and_the_default_stays():
    app = widgets.HelloApp(tiny_network(), image="kitten", threaded=False)
    assert "unknown image 'kitten'" in app.error and app.predictions
    app.image_picker.value = "coffee"
    assert app.error == ""


# --- computing in the Runner: saliency and guided backprop -----------------------------------

def _held(net):
    """Hold the network's gradient passes until released (a job stays in flight)."""
    net.model.gate, net.model.entered = threading.Event(), threading.Event()
    return net.model.gate, net.model.entered


@pytest.mark.parametrize("name", ["SaliencyApp", "GuidedBackpropApp"])
def test_saliency_and_guided_compute_in_the_runner_with_progress_and_stop(name):
    net = tiny_network()
    gate, entered = _held(net)
    app = getattr(widgets, name)(net, image="cat")
    try:
        assert entered.wait(10), "the app did not start computing"
        blank = app.view.value
        runner = app.runner
        assert runner.running and runner.stop_button.disabled is False and runner.run_button.disabled is True
        assert runner.status.value == "working…" and runner.progress.value == 0.0
        runner.stop_button.click()
        assert runner.status.value == "stopping…"
    finally:
        gate.set()
    app.runner.wait()
    assert runner.status.value == "stopped" and runner.progress.bar_style == "warning"
    assert app.error == "" and app.view.value == blank  # a stopped job draws nothing
    assert set(net.model.gradient_threads) == {"cnnviz-runner"}  # never on the caller's thread
    net.model.gate = None
    app.image_picker.value = "coffee"
    app.runner.wait()
    assert runner.status.value == "done" and runner.progress.value == 1.0 and runner.progress.bar_style == "success"
    assert app.error == "" and app.view.value != blank
    assert set(net.model.gradient_threads) == {"cnnviz-runner"}


# --- the Runner's one cancel-the-stale-job mechanism ------------------------------------------

class Gate:
    """A job of `steps` steps that waits at each step (after the `free` first ones)
    until released or stopped."""

    def __init__(self, name: str, log: list, steps: int = 50, free: int = 0):
        self.name, self.log, self.steps, self.free = name, log, steps, free
        self.release, self.started = threading.Event(), threading.Event()

    def __call__(self, should_stop):
        self.log.append(("start", self.name))
        self.started.set()
        for i in range(self.steps):
            while i >= self.free and not self.release.is_set() and not should_stop():
                time.sleep(0.002)
            if should_stop():
                self.log.append(("stopped", self.name))
                return
            yield (i + 1) / self.steps
        self.log.append(("end", self.name))


def test_a_new_job_makes_the_running_one_stale_it_never_calls_back():
    runner, log = Runner(preview_every=0.0), []
    calls = []
    first, second = Gate("first", log), Gate("second", log, steps=3)
    runner.start(first, lambda p: calls.append(("update", "first")), lambda last, stopped: calls.append(("done", "first")))
    assert first.started.wait(5)
    t0 = time.monotonic()
    assert runner.start(second, lambda p: calls.append(("update", "second")),
                        lambda last, stopped: calls.append(("done", "second", stopped)))
    assert time.monotonic() - t0 < 0.5  # starting never blocks on the stale job
    second.release.set()
    runner.wait(10)
    # the stale job ended (one job at a time), then the new one ran; only the new one called back
    assert log.index(("stopped", "first")) < log.index(("start", "second"))
    assert ("done", "first") not in calls and ("done", "second", False) in calls
    assert runner.status.value == "done" and runner.progress.value == 1.0 and not runner.running


def test_a_job_for_the_same_key_is_left_alone():
    runner, log = Runner(), []
    job = Gate("k", log, steps=2)
    assert runner.start(job, key="k")
    assert runner.start(Gate("k again", log), key="k") is False
    assert runner.busy_with("k") and not runner.busy_with("other")
    job.release.set()
    runner.wait(10)
    assert [name for what, name in log if what == "start"] == ["k"]


def test_cancel_stops_a_job_without_a_callback_and_stop_keeps_what_it_has():
    runner, log, calls = Runner(), [], []
    job = Gate("cancelled", log)
    runner.start(job, on_done=lambda last, stopped: calls.append(("cancelled", stopped)))
    assert job.started.wait(5)
    runner.cancel()
    runner.wait(10)
    assert calls == [] and runner.status.value == "cancelled" and not runner.running
    assert runner.run_button.disabled is False and runner.stop_button.disabled is True

    job = Gate("stopped", log, free=1)
    runner.start(job, on_done=lambda last, stopped: calls.append((last, stopped)))
    while runner.progress.value == 0:
        time.sleep(0.01)
    runner.stop()
    runner.wait(10)
    assert len(calls) == 1 and calls[0][1] is True and 0 < calls[0][0] < 1  # the learner's Stop: kept
    assert runner.status.value == "stopped"


def test_unthreaded_runner_runs_in_the_caller_and_wait_covers_jobs_started_by_callbacks():
    calls = []
    runner = Runner(threaded=False)
    runner.start(lambda stop: iter([0.5, 1.0]), on_done=lambda last, stopped: calls.append(threading.current_thread()))
    assert calls == [threading.current_thread()] and runner.status.value == "done"

    threaded, log = Runner(), []
    first, second = Gate("first", log, steps=1), Gate("second", log, steps=2)
    first.release.set()
    second.release.set()
    threaded.start(first, on_done=lambda last, stopped: threaded.start(second))
    threaded.wait(10)
    assert log == [("start", "first"), ("end", "first"), ("start", "second"), ("end", "second")]
    assert not threaded.running and threaded.status.value == "done"


def test_draw_when_ready_draws_cached_settings_at_once_and_never_draws_stale_ones():
    app = App(tiny_network(), pickers=())
    app.arrange([])
    drawn = []

    def job(should_stop):
        yield 1.0

    app.draw_when_ready("a", lambda: True, job, lambda: drawn.append(("a", threading.current_thread().name)))
    assert drawn == [("a", threading.current_thread().name)] and not app.runner.running
    app.draw_when_ready("b", lambda: False, job, lambda: drawn.append(("b", threading.current_thread().name)))
    app.runner.wait()
    assert drawn[-1] == ("b", "cnnviz-runner")

    log = []
    slow = Gate("c", log)
    app.draw_when_ready("c", lambda: False, slow, lambda: drawn.append(("c",)))
    assert slow.started.wait(5)
    app.draw_when_ready("c", lambda: False, Gate("c again", log), lambda: drawn.append(("c again",)))
    app.draw_when_ready("d", lambda: True, job, lambda: drawn.append(("d",)))  # cached: the job for c is stale
    slow.release.set()
    app.runner.wait()
    assert drawn[-1] == ("d",) and ("c",) not in drawn and ("c again",) not in drawn
    assert [name for what, name in log if what == "start"] == ["c"]

    def broken():
        raise ValueError("cannot draw this")

    app.draw_when_ready("e", lambda: False, job, broken)  # a failing draw is a message
    app.runner.wait()
    assert "cannot draw this" in app.error


# --- layering: pictures come from render ------------------------------------------------------

def _code_cells(path: Path) -> list[str]:
    import nbformat

    from IPython.core.inputtransformer2 import TransformerManager

    nb = nbformat.read(path, as_version=4)
    # IPython turns magics (%pip) into Python, as the kernel does
    return [TransformerManager().transform_cell(c.source) for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.stem)
def test_notebooks_import_only_app_classes_from_widgets(path):
    apps = {name for name in widgets.__all__ if name.endswith("App") and name != "App"}
    for source in _code_cells(path):
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cnnviz_widgets.widgets"):
                assert node.module == "cnnviz_widgets.widgets", f"{path.name} imports from {node.module}"
                names = {a.name for a in node.names}
                assert names <= apps, f"{path.name} takes {sorted(names - apps)} from widgets (pictures: render)"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("cnnviz_widgets.widgets"), f"{path.name} imports {alias.name}"


def test_render_imports_no_private_engine_name_and_no_widgets():
    for path in sorted((ROOT / "cnnviz_widgets" / "render").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                assert "widgets" not in module and module != "ipywidgets", f"{path.name} imports {module}"
                if "engine" in module:
                    private = [a.name for a in node.names if a.name.startswith("_")]
                    assert not private, f"{path.name} imports private {private} from {module}"
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("ipywidgets") for a in node.names), path.name
