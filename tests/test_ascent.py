"""Lesson 09: gradient ascent (engine/ascent.py, widgets/ascent.py, widgets/optimize_app.py)."""

from __future__ import annotations

import time

import pytest
import torch

from cnnviz_widgets.engine import ascent
from tests.helpers import assert_restored, png_to_array


@pytest.mark.parametrize("target, param", [("goldfish", "pixel"), (948, "fourier")])
def test_class_visualisation_is_top1_above_90_percent(effnet, target, param):
    # The lesson's claim, at the quick-mode size and step count the notebook uses.
    with assert_restored(effnet):
        last = ascent.visualize_class(effnet, target, size=128, steps=30, param=param)
    idx = effnet.class_index(target)
    with torch.no_grad():
        probs = effnet(last.image).softmax(-1)[0]
    assert int(probs.argmax()) == idx
    assert float(probs[idx]) > 0.9
    assert all(p.grad is None for p in effnet.parameters())


def test_channel_visualisation_raises_the_channel(effnet):
    start = ascent.visualize_channel(effnet, "stage3", 5, size=64, steps=0).image
    last = ascent.visualize_channel(effnet, "stage3", 5, size=64, steps=10, step_size=0.05)
    with torch.no_grad():
        before = effnet.forward_to(start, "stage3")[0, 5].mean()
        after = effnet.forward_to(last.image, "stage3")[0, 5].mean()
    assert float(after) > float(before) + 0.5


def test_bad_settings_are_one_clear_error(effnet):
    with pytest.raises(ValueError, match="no class named 'not a class'"):
        ascent.visualize_class(effnet, "not a class", size=64, steps=2)
    with pytest.raises(ValueError, match="no layer 'stage42'"):
        ascent.visualize_channel(effnet, "stage42", 0, size=64, steps=2)
    with assert_restored(effnet), pytest.raises(ValueError, match="channel 80 is out of range"):
        ascent.visualize_channel(effnet, "stage3", 80, size=64, steps=2)
    with pytest.raises(ValueError, match="parametrisation"):
        ascent.visualize_class(effnet, 1, size=64, steps=2, param="wavelet")
    with pytest.raises(ValueError, match="step_size 0 is out of range"):
        ascent.visualize_class_iter(effnet, 1, size=64, steps=2, step_size=0)  # at the call, before any step
    with pytest.raises(ValueError, match="starts from noise"):
        ascent.visualize_class(effnet, 1, size=64, steps=2, param="fourier", image=torch.rand(1, 3, 64, 64))


def test_ascent_can_start_from_a_photo(effnet):
    from cnnviz_widgets.engine.images import sample_image

    photo = effnet.as_batch(sample_image("cat"), single=True, size=64).cpu()
    r = ascent.visualize_class(effnet, "goldfish", image=sample_image("cat"), size=64, steps=2, blur_sigma=0,
                               l2=0, jitter=0)
    change = (r.image - photo).abs()
    assert 0 < float(change.mean()) < 0.1  # the photo, changed a little, not replaced
    assert r.target.classes == [effnet.class_index("goldfish")]


def wait_for(predicate, timeout=60.0):
    end = time.monotonic() + timeout
    while not predicate() and time.monotonic() < end:
        time.sleep(0.01)
    assert predicate(), "timed out waiting"


def test_app_runs_and_shows_the_class(effnet):
    from cnnviz_widgets.widgets import AscentApp

    app = AscentApp(model=effnet, size=64, steps=6)
    app.class_picker.value = "goldfish"
    with assert_restored(effnet):
        app.run()
        app.runner.wait()
    assert app.error == ""
    assert app.last.result.ended == "done" and app.last.step == 6
    assert png_to_array(app.view.value).shape[0] == app.display_height
    assert "target goldfish" in app.info.value


def test_app_stop_keeps_the_partial_image(effnet):
    from cnnviz_widgets.widgets import AscentApp

    app = AscentApp(model=effnet, size=64, steps=500)
    app.n_steps.value = 500
    app.run()
    wait_for(lambda: app.previews >= 1)
    app.runner.stop_button.click()
    app.runner.wait()
    assert app.error == ""
    assert app.last.result.ended == "stopped" and 0 < app.last.step < 500
    picture = png_to_array(app.view.value)
    assert picture.std() > 0  # an image, not a blank
    assert "stopped" in app.info.value
    assert not app.runner.running and not app.runner.run_button.disabled


def test_app_shows_bad_settings_and_keeps_working(effnet):
    from cnnviz_widgets.widgets import AscentApp

    app = AscentApp(model=effnet, size=64, steps=3)
    app.class_picker.value = "no such class"
    app.run()
    app.runner.wait()
    assert "no class named" in app.error and "cnnviz-error" in app.message.value
    # channel out of range surfaces from the worker thread
    app.what.value = "channel"
    app.layer.value = "stage2"
    app.channel.max = 500
    app.channel.value = 400
    app.run()
    app.runner.wait()
    assert "channel 400 is out of range" in app.error
    app.channel.value = 1
    app.run()
    app.runner.wait()
    assert app.error == "" and app.last.result.ended == "done"


def test_app_offers_yosinskis_clipping_and_it_greys_out_pixels(effnet):
    # The two clipping regularisers are app controls: with 50% norm clipping, at least
    # half of the final image's pixels are grey (0.5 in every colour), as the engine sets them.
    from cnnviz_widgets.widgets import AscentApp

    app = AscentApp(model=effnet, size=64, steps=4)
    app.class_picker.value = "goldfish"
    app.clip_norm.value = 50
    app.run()
    app.runner.wait()
    assert app.error == ""
    grey = (app.last.result.image - 0.5).abs().amax(dim=1) == 0
    assert float(grey.float().mean()) >= 0.45
    app.clip_norm.value, app.clip_contribution.value = 0, 30
    app.run()
    app.runner.wait()
    assert app.error == "" and app.last.result.ended == "done"
    # The Fourier image has no pixels of its own to blur or clip: the controls say so.
    app.param.value = "fourier"
    assert app.clip_norm.disabled and app.clip_contribution.disabled and app.blur.disabled
    assert app.clip_contribution.value == 0 and app.blur.value == 0
    app.param.value = "pixel"
    assert not app.clip_norm.disabled and app.blur.value > 0
