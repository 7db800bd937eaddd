"""The widget base: App, Runner, shared controls, the ipywidgets 7/8 shim, lesson 00's app."""

from __future__ import annotations

import io
import threading
import time

import ipywidgets as W
import pytest
from PIL import Image

from cnnviz_widgets.widgets import HelloApp, compat
from cnnviz_widgets.widgets.base import App, Runner
from cnnviz_widgets.widgets.controls import ClassPicker, ImagePicker, LayerPicker, ModelPicker

from .helpers import png_to_array, simulate_upload, tiny_network, tooltip_of


def _png_bytes(size=(64, 48), color=(10, 200, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def test_app_reports_errors_inside_itself_and_keeps_working():
    slider = W.IntSlider(value=1, min=0, max=10)
    app = App(tiny_network(), pickers=(), title="t")
    app.arrange([slider])
    seen = []

    def refresh():
        if slider.value == 0:
            raise ValueError("zero is not allowed here")
        seen.append(slider.value)

    app.watch([slider], refresh)
    slider.value = 0
    assert app.error == "zero is not allowed here"
    assert "zero is not allowed" in app.message.value
    slider.value = 3
    assert app.error == "" and seen == [3]


def test_app_never_displays_in_its_constructor(capsys):
    App(tiny_network()).arrange([W.Label("x")])
    assert capsys.readouterr().out == ""


def test_runner_runs_in_a_thread_and_stops_within_a_step():
    runner = Runner(preview_every=0.0)
    started = threading.Event()
    seen, done = [], {}

    class P:
        def __init__(self, step):
            self.step, self.total = step, 1000

    def steps(should_stop):
        for i in range(1000):
            started.set()
            time.sleep(0.002)
            yield P(i + 1)

    runner.start(steps, lambda p: seen.append(p.step), lambda last, stopped: done.update(last=last.step, stopped=stopped))
    started.wait(5)
    time.sleep(0.05)
    runner.stop()
    runner.wait(5)
    assert done["stopped"] is True and done["last"] < 1000
    assert not runner.running and runner.run_button.disabled is False and runner.stop_button.disabled is True
    assert runner.progress.bar_style == "warning" and 0 < runner.progress.value < 1


def test_runner_reports_errors():
    runner = Runner()
    errors = []
    runner.on_error = errors.append

    def steps(should_stop):
        yield 0.5
        raise ValueError("diverged")

    runner.start(steps, lambda p: None, lambda last, stopped: None)
    runner.wait(5)
    assert [str(e) for e in errors] == ["diverged"] and runner.status.value == "failed"


def test_model_picker_lists_offline_state():
    picker = ModelPicker()
    labels = dict((v, k) for k, v in picker.options)
    assert labels["efficientnet_lite0"] == "efficientnet_lite0 (embedded)"
    assert "online" in labels["alexnet"] or "cached" in labels["alexnet"]
    assert picker.value == "efficientnet_lite0"


def test_image_picker_upload_good_and_bad():
    picker = ImagePicker()
    errors, notes = [], []
    picker.on_error, picker.on_note = errors.append, notes.append
    simulate_upload(picker.upload, "notes.txt", b"just text")
    assert errors and "notes.txt" in str(errors[0])
    assert picker.value == "cat"  # unchanged
    simulate_upload(picker.upload, "green.png", _png_bytes())
    assert picker.value == "green.png"
    assert picker.image.size == (64, 48)
    assert compat.uploaded_files(picker.upload) == []  # cleared for the next upload


def test_layer_and_class_pickers(effnet):
    layer = LayerPicker(effnet)
    assert list(layer.options) == effnet.layers
    cls = ClassPicker(effnet)
    assert cls.class_index(effnet, predicted=7) == 7
    cls.value = "espresso"
    assert cls.class_index(effnet) == 967
    cls.value = "expresso machine"
    with pytest.raises(ValueError, match="no class named"):
        cls.class_index(effnet)


def test_tooltip_shim():
    b = W.Button()
    compat.set_tooltip(b, "hello")
    assert tooltip_of(b) == "hello"


def test_hello_app_renders_and_survives_a_bad_upload():
    app = HelloApp(threaded=False)
    assert app.error == ""
    first = png_to_array(app.view.value)
    assert first.shape == (224, 224, 3)
    assert app.predictions[0][0] in {"tabby", "tiger cat", "Egyptian cat"}
    simulate_upload(app.image_picker.upload, "virus.exe", b"MZ\x90\x00" * 10)
    assert "virus.exe" in app.error
    app.image_picker.value = "coffee"
    assert app.error == "" and app.predictions[0][0] == "espresso"
    assert not (png_to_array(app.view.value) == first).all()


def test_in_sequence_is_one_bar_over_several_engine_runs_and_ends_at_a_stop():
    from types import SimpleNamespace

    from cnnviz_widgets.engine.core.progress import Progress
    from cnnviz_widgets.widgets.runner import in_sequence

    def run(ended_at_end: str, steps: int = 2):
        for i in range(1, steps + 1):
            last = i == steps
            yield Progress(i, steps, SimpleNamespace(ended=ended_at_end if last else ""), done=last)

    joined = list(in_sequence([lambda: run("done"), lambda: run("done")]))
    assert [(p.step, p.total, p.done) for p in joined] == [(1, 4, False), (2, 4, False), (3, 4, False), (4, 4, True)]
    stopped = list(in_sequence([lambda: run("stopped"), lambda: run("done")]))  # the second never starts
    assert [(p.step, p.total, p.done) for p in stopped] == [(1, 4, False), (2, 4, True)]
    assert stopped[-1].result.ended == "stopped"
