"""Lesson 11: DeepDream (engine/deepdream.py, widgets/deepdream.py)."""

from __future__ import annotations

import pytest
import torch

from cnnviz_widgets.engine.optimize import deepdream
from cnnviz_widgets.engine.zoo.samples import sample_image
from tests.helpers import assert_restored, png_to_array


def test_layer_energy_rises_at_every_octave(effnet):
    with assert_restored(effnet):
        progress = list(deepdream.deepdream_iter(effnet, sample_image("cat"), "stage4", octaves=3,
                                                 steps=5, size=128, every=5))
    last = progress[-1].result
    assert progress[-1].done and last.ended == "done" and progress[-1].step == progress[-1].total == 15
    assert last.steps_taken == 15 and not any(p.done for p in progress[:-1])
    energy = last.energy
    assert len(energy) == 3
    for before, after in energy:
        assert after > before * 1.1
    sizes = [tuple(d.shape[-2:]) for d in last.dreams]
    assert sizes == deepdream.octave_sizes(128, 128, 3, 1.4) and sizes[-1] == (128, 128)
    assert [p.result.octave for p in progress] == sorted(p.result.octave for p in progress)
    # the dream starts from the photo: it is changed, not replaced
    photo = effnet.as_batch(sample_image("cat"), single=True, size=128).cpu()
    assert torch.equal(last.original, photo)
    d = (last.image - photo).abs().mean()
    assert 0.005 < float(d) < 0.2
    assert all(p.grad is None for p in effnet.parameters())


def test_deterministic(effnet):
    kw = dict(octaves=2, steps=2, size=64)
    a = deepdream.deepdream(effnet, sample_image("rocket"), "stage3", seed=1, **kw).image
    b = deepdream.deepdream(effnet, sample_image("rocket"), "stage3", seed=1, **kw).image
    assert torch.equal(a, b)


@pytest.mark.parametrize("kw, match", [
    (dict(layer="stage99"), "no layer"),
    (dict(octaves=0), "octaves 0 is out of range"),
    (dict(octave_scale=1.0), "octave_scale 1 is out of range"),
    (dict(step_size=0), "step_size 0 is out of range"),
    (dict(steps=-1), "steps -1 is out of range"),
])
def test_bad_settings(effnet, kw, match):
    args = dict(layer="stage3", size=64)
    args.update(kw)
    with assert_restored(effnet), pytest.raises(ValueError, match=match):
        deepdream.deepdream(effnet, sample_image("cat"), **args)


def test_app_shows_each_octave_and_stop_keeps_the_dream(effnet):
    from cnnviz_widgets.widgets import DeepDreamApp

    app = DeepDreamApp(model=effnet, image="coffee", layer="stage3", size=64, steps=3, octaves=2)
    with assert_restored(effnet):
        app.run()
        app.runner.wait()
    assert app.error == ""
    assert app.last.result.ended == "done" and len(app.last.result.dreams) == 2
    pic = png_to_array(app.view.value)
    assert pic.shape[1] > 2 * app.display_height  # photo + two octaves side by side
    assert "octave 2" in app.info.value

    app.steps_per_octave.value = 400
    app.run()
    deadline = __import__("time").monotonic() + 60
    while app.previews < 1 and __import__("time").monotonic() < deadline:
        __import__("time").sleep(0.01)
    app.stop()
    app.runner.wait()
    assert app.error == "" and app.last.result.ended == "stopped"
    assert png_to_array(app.view.value).std() > 0
