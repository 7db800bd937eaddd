"""Lesson 09: gradient ascent (engine/ascent.py, widgets/ascent.py, widgets/optimize_app.py)."""

from __future__ import annotations

import html
import time

import numpy as np
import pytest
import torch

from cnnviz_widgets.engine.core.cache import clear_caches
from cnnviz_widgets.engine.optimize import ascent
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
    from cnnviz_widgets.engine.zoo.samples import sample_image

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


# --- the app's recipes, the judge's verdict and Distill's channel view (issue 18) -------------

def test_app_recipe_sets_the_controls_from_ascent_recognisable(effnet, monkeypatch):
    # The app reads ascent.RECOGNISABLE by name when the recipe is chosen (the lead tunes its
    # numbers): other numbers and a setting without a control of its own both reach the engine.
    from cnnviz_widgets.widgets import AscentApp
    from cnnviz_widgets.widgets import ascent as app_module

    app = AscentApp(model=effnet, size=64, steps=6, threaded=False)
    lecture = {key: control.value for key, control in app.recipe_controls.items()}
    assert app.recipe.value == "lecture" and lecture["size"] == 64 and lecture["steps"] == 6
    assert lecture["param"] == "pixel" and lecture["scale"] == 0 and lecture["schedule"] == "constant"
    app.recipe.value = "recognisable"
    for key, value in ascent.RECOGNISABLE.items():
        assert app.recipe_controls[key].value == pytest.approx(value), key
    assert app.recipe.value == "recognisable" and app.blur.disabled  # a Fourier recipe: no pixel blur

    tuned = dict(ascent.RECOGNISABLE, steps=3, size=64, scale=0.2, rotate=7, crop=0.6, decorrelate=False)
    monkeypatch.setattr(ascent, "RECOGNISABLE", tuned)
    seen = {}
    real = ascent.visualize_class_iter
    monkeypatch.setattr(ascent, "visualize_class_iter", lambda *a, **kw: seen.update(kw) or real(*a, **kw))
    app.recipe.value = "lecture"
    assert {key: control.value for key, control in app.recipe_controls.items()} == lecture
    app.recipe.value = "recognisable"
    assert (app.n_steps.value, app.scale.value, app.rotate.value) == (3, 0.2, 7)
    app.class_picker.value = "goldfish"
    app.run()
    assert app.error == "" and app.last.result.ended == "done" and app.last.step == 3
    assert seen["decorrelate"] is False and seen["scale"] == 0.2 and seen["crop"] == 0.6
    assert seen["schedule"] == tuned["schedule"]
    # Moving a knob away from the recipe makes it custom; choosing the recipe again sets it back.
    app.rotate.value = 3
    assert app.recipe.value == "custom" and app.rotate.value == 3
    app.recipe.value = "recognisable"
    assert app.rotate.value == 7
    app.recipe.value = "lecture"
    assert app.rotate.value == 0 and app.param.value == "pixel" and not app.blur.disabled
    assert app_module.RECIPES[:2] == ("lecture", "recognisable")


def test_app_judge_speaks_only_when_asked(effnet, monkeypatch):
    from cnnviz_widgets.engine.optimize.judge import judge
    from cnnviz_widgets.engine.zoo.models import load_model
    from cnnviz_widgets.widgets import AscentApp
    from cnnviz_widgets.widgets import ascent as app_module

    loaded = []
    monkeypatch.setattr(app_module, "load_model", lambda name: loaded.append(name) or load_model(name))
    app = AscentApp(model=effnet, target="goldfish", size=64, steps=4)
    assert not app.ask_judge.value  # off by default
    app.run()
    app.runner.wait()
    assert app.error == "" and app.verdict is None and loaded == []  # the judge is not even loaded
    assert "cnnviz-verdict" not in app.info.value and "judge" not in app.info.value
    app.ask_judge.value = True
    app.run()
    app.runner.wait()
    assert app.error == "" and loaded == [app_module.JUDGE]
    verdict = app.verdict
    # the engine's verdict on the same picture, and the line names the judge's first choice
    expected = judge(load_model(app_module.JUDGE), app.last.result.image, "goldfish")
    assert str(verdict) == str(expected)
    line = app.info.value.split('class="cnnviz-verdict">', 1)[1]
    assert html.escape(str(verdict)) in line and html.escape(verdict.top_class) in line
    assert f"the maker ({effnet.name}): P(goldfish) = " in line and app_module.JUDGE in line
    # a stopped run is not judged
    app.n_steps.value = 500
    app.run()
    wait_for(lambda: app.previews >= 1)
    app.runner.stop()
    app.runner.wait()
    assert app.verdict is None and "cnnviz-verdict" not in app.info.value and "not judged" in app.info.value


def test_app_judge_of_a_non_imagenet_class_is_one_message(shapes_net):
    from cnnviz_widgets.widgets import AscentApp

    app = AscentApp(model=shapes_net, size=64, steps=2, threaded=False)
    app.ask_judge.value = True
    app.run()
    assert "ImageNet classes" in app.error and "cnnviz-error" in app.message.value
    assert app.last is None  # nothing ran
    app.ask_judge.value = False
    app.run()
    assert app.error == "" and app.last.result.ended == "done"


def test_app_channel_mode_shows_the_images_beside_the_units_top_patches(effnet, monkeypatch):
    from cnnviz_widgets.engine.inspect import patches
    from cnnviz_widgets.render.ascent import channel_comparison
    from cnnviz_widgets.widgets import AscentApp
    from cnnviz_widgets.widgets import ascent as app_module

    clear_caches()
    scans = []
    real = patches.max_activating_patches_iter
    monkeypatch.setattr(patches, "max_activating_patches_iter", lambda *a, **kw: scans.append(a[2]) or real(*a, **kw))
    app = AscentApp(model=effnet, size=64, steps=3)
    assert app.dataset.name == "samples"  # the bundled photos: offline
    app.what.value = "channel"
    app.layer.value, app.channel.value = "stage3", 5
    assert app.batch.value >= 2 and app.diversity.value > 0  # Distill's form: several images, pushed apart
    app.run()
    app.runner.wait()
    assert app.error == "" and scans == ["stage3"]
    images = app.last.result.image
    assert images.shape[0] == app.batch.value and "stage3 diversity" in app.last.result.losses
    # the picture: these images beside the unit's strongest patches from the scan
    scan = patches.cached_scan(effnet, app.dataset, "stage3", app_module.SCAN_K)
    top = scan.top(5, app_module.PATCHES)
    crops = [patches.crop_patch(effnet, app.dataset[i].image, scan.rf, r, c) for i, r, c, _ in top]
    expected = channel_comparison(images, crops, [v for *_, v in top], size=app_module.TILE)
    assert np.array_equal(png_to_array(app.view.value), expected)
    assert app.scan is not None and "patches of samples" in app.info.value
    # another channel of the same layer: the scan is not made again
    app.channel.value = 7
    app.run()
    app.runner.wait()
    assert app.error == "" and scans == ["stage3"] and app.last.result.ended == "done"
    # bad settings: one clear message, and the app keeps working
    app.batch.value = 1
    app.run()
    app.runner.wait()
    assert "diversity compares the images of a batch" in app.error and "cnnviz-error" in app.message.value
    app.diversity.value = 0
    app.run()
    app.runner.wait()
    assert app.error == "" and app.last.result.image.shape[0] == 1


def test_app_still_shows_a_picture_with_the_recipe(effnet):
    from cnnviz_widgets.widgets import AscentApp

    app = AscentApp(model=effnet, target="goldfish", size=64, steps=2)
    bundle = app.still_bundle()
    page = bundle["text/html"]
    assert 'class="cnnviz-still-picture"' in page and "target goldfish" in page
    settings = page.split('<p class="cnnviz-still-settings">', 1)[1].split("</p>", 1)[0]
    assert "recipe lecture" in settings and "ask an independent network off" in settings
    assert "dataset" not in settings and "images" not in settings  # channel mode's controls are hidden
