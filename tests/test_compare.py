"""Lesson 13's comparison: every method through one call shape, scored, with progress and
Stop; and its app (a grid of maps with scores, the randomisation slider, the cache)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnviz_widgets.engine.evaluation import compare as C
from cnnviz_widgets.engine.attribution.base import Attribution
from cnnviz_widgets.engine.core.progress import run_to_end

from .helpers import assert_restored, close_to_scale, png_to_array

FAST = {"smoothgrad": {"samples": 3}, "integrated_gradients": {"steps": 6}, "occlusion": {"patch": 16, "stride": 8}}


@pytest.fixture(scope="module")
def shape_item():
    from cnnviz_widgets.engine.zoo.data import load_dataset

    return load_dataset("shapes", n=3, seed=9)[2]


def test_every_method_has_one_call_shape(shapes_net, shape_item):
    x = shapes_net.preprocess(shape_item.image)
    with assert_restored(shapes_net):
        for name, method in C.METHODS.items():
            result = method(shapes_net, x, shape_item.label, **FAST.get(name, {}))
            assert isinstance(result, Attribution) and result.map.shape == (1, 64, 64), name
            assert torch.isfinite(result.map).all() and float(result.map.max()) > 0, name
            # a class name and a one-per-image list mean the same class
            by_name = method(shapes_net, x, shapes_net.classes[shape_item.label], **FAST.get(name, {}))
            assert torch.allclose(by_name.map, result.map), name
    assert set(C.LABELS) == set(C.METHODS)


def test_occlusion_map_is_the_logit_drop_per_pixel(shapes_net, shape_item):
    """compare's occlusion explains the logit (ClassLogit), as the gradient methods do; a
    `Target` goes through as it is (occlusion's own reading: a bare class = probability)."""
    from cnnviz_widgets.engine.attribution.occlusion import occlusion, occlusion_to_pixels
    from cnnviz_widgets.engine.core.targets import ClassLogit, ClassProbability

    x = shapes_net.preprocess(shape_item.image)
    ours = C.occlusion_logit(shapes_net, x, shape_item.label, patch=16, stride=8)
    logit = occlusion(shapes_net, x, ClassLogit(shape_item.label), patch=16, stride=8)
    close_to_scale(ours.map[0], occlusion_to_pixels(logit), 1e-5)
    assert ours.extra["patch"] == 16 and ours.extra["stride"] == 8
    probability = occlusion(shapes_net, x, shape_item.label, patch=16, stride=8)
    as_given = C.occlusion_logit(shapes_net, x, ClassProbability(shape_item.label), patch=16, stride=8)
    close_to_scale(as_given.map[0], occlusion_to_pixels(probability), 1e-5)
    assert not np.allclose(as_given.map[0].numpy(), ours.map[0].numpy())


def test_compare_scores_each_map_and_a_random_reference(shapes_net, shape_item):
    x = shapes_net.preprocess(shape_item.image)
    mask = shapes_net.preprocess_mask(shape_item.mask)
    result = C.compare(shapes_net, x, shape_item.label, methods=["grad_cam", "saliency"], mask=mask, steps=6, settings=FAST)
    assert result.methods == ["grad_cam", "saliency"] and result.target == shape_item.label
    for name in result.methods:
        s = result.scores[name]
        assert isinstance(s.pointing, bool) and 0 <= s.mask_mass <= 1
        assert 0 <= s.deletion <= 1 and 0 <= s.insertion <= 1
    ref = result.reference
    assert ref is not None and 0 <= ref.mask_mass <= 1 and 0 <= ref.deletion <= 1
    no_mask = C.compare(shapes_net, x, shape_item.label, methods=["grad_cam"], steps=4, reference=False)
    assert no_mask.scores["grad_cam"].pointing is None and no_mask.reference is None
    # the same map as the method alone
    assert torch.equal(no_mask.attributions["grad_cam"].map, C.METHODS["grad_cam"](shapes_net, x, shape_item.label).map)


def test_compare_reports_progress_and_stops_between_methods(shapes_net, shape_item):
    x = shapes_net.preprocess(shape_item.image)
    steps = list(C.compare_iter(shapes_net, x, shape_item.label, methods=["saliency", "grad_cam"], steps=4))
    assert [p.step for p in steps] == [1, 2, 3, 4, 5] and [p.done for p in steps] == [False] * 4 + [True]
    assert steps[0].result.attributions.keys() == {"saliency"}
    answers = iter([False, False, True, True])
    stopped = run_to_end(C.compare_iter(shapes_net, x, shape_item.label, methods=["saliency", "grad_cam"], steps=4,
                                        should_stop=lambda: next(answers, True)))
    assert stopped.ended == "stopped" and list(stopped.attributions) == ["saliency"]


@pytest.mark.parametrize("kwargs, words", [
    (dict(methods=["lime"]), "method must be one of"),
    (dict(methods=[]), "at least one method"),
    (dict(mask=np.ones((8, 8), bool)), "resize it with net.preprocess_mask"),
    (dict(settings={"gradcam": {}}), "settings for method must be one of"),
    (dict(steps=1), "steps 1 is out of range"),
])
def test_compare_bad_arguments_name_the_problem(shapes_net, shape_item, kwargs, words):
    x = shapes_net.preprocess(shape_item.image)
    with pytest.raises(ValueError, match=words):
        C.compare(shapes_net, x, shape_item.label, **{"methods": ["saliency"], **kwargs})


# --- the app --------------------------------------------------------------------------------

def _settled(app):
    app.runner.wait()
    assert app.error == "", app.error


def test_compare_app_draws_scores_caches_and_randomises(shapes_net):
    from cnnviz_widgets.widgets import CompareApp

    app = CompareApp(shapes_net, image="shape: circle", methods=["saliency", "grad_cam", "guided_backprop"])
    app.settings = {**app.settings, **FAST}
    _settled(app)
    assert set(app.scores) == {"saliency", "grad_cam", "guided_backprop"}
    assert all(s.pointing is not None and s.deletion is not None for s in app.scores.values())
    assert "mask mass" in app.info.value and "random map" in app.info.value
    grid = png_to_array(app.view.value)
    assert grid.shape[0] > 128 and grid.shape[1] >= 4 * 128
    cached = len(app._cache)
    # randomising the top layers: maps recomputed on a copy, the network itself untouched
    with assert_restored(shapes_net):
        app.randomised.value = 3
        _settled(app)
    assert set(app.correlations) == {"saliency", "grad_cam", "guided_backprop"}
    assert app.correlations["guided_backprop"] > app.correlations["grad_cam"]
    assert "rank corr" in app.info.value and "fc8, fc7, fc6" in app.info.value
    assert "random map" not in app.info.value  # the chance level belongs to the original network
    assert len(app._cache) == cached + 3
    # back to the original network: answered from the cache, synchronously
    app.randomised.value = 0
    assert not app.runner.running and len(app._cache) == cached + 3 and app.correlations == {}
    # a method more, then a photo (no mask: only deletion and insertion)
    app.method_boxes["integrated_gradients"].value = True
    _settled(app)
    assert "integrated_gradients" in app.scores
    app.image_picker.value = "coffee"
    _settled(app)
    assert all(s.pointing is None for s in app.scores.values()) and "No ground-truth mask" in app.info.value


def test_compare_app_takes_an_image_with_its_mask_and_survives_bad_input(shapes_net):
    from cnnviz_widgets.engine.zoo.data import load_dataset
    from cnnviz_widgets.widgets import CompareApp

    item = load_dataset("shapes", n=2, seed=12)[1]
    app = CompareApp(shapes_net, image=item.image, mask=item.mask, methods=["grad_cam"])
    _settled(app)
    assert app.image_picker.value == "your image" and app.scores["grad_cam"].mask_mass is not None
    assert f"covers {item.mask.mean():.0%}" in app.info.value
    app.class_picker.value = "dodecahedron"
    assert "no class named" in app.error
    app.class_picker.value = "ring"
    _settled(app)
    assert "ring" in app.info.value
    app.image_picker.load_upload("notes.txt", b"this is not a picture")
    assert "notes.txt" in app.error
    app.method_boxes["grad_cam"].value = False
    assert "Tick at least one method" in app.info.value
    with pytest.raises(ValueError, match="unknown method 'lime'"):
        CompareApp(shapes_net, methods=["lime"])
    with pytest.raises(ValueError, match="the mask is 3x3 but the image is 64x64"):
        app.image_picker.add_image("odd", item.image.copy(), mask=np.ones((3, 3), bool))


def test_compare_app_stop_keeps_what_is_done(shapes_net):
    from cnnviz_widgets.widgets import CompareApp

    app = CompareApp(shapes_net, image="shape: star", methods=["saliency"])
    _settled(app)
    for m in ("smoothgrad", "integrated_gradients", "occlusion"):
        app.method_boxes[m].value = True  # each starts a new job (the previous one is stale)
    app.runner.stop()
    app.runner.wait()
    assert app.error == ""
    app.refresh()  # what is cached is kept; the rest is computed again
    _settled(app)
    assert set(app.scores) == {"saliency", "smoothgrad", "integrated_gradients", "occlusion"}
