"""Lesson 12: feature inversion (engine/inversion.py, widgets/inversion.py)."""

from __future__ import annotations

import pytest

from cnnviz_widgets.engine.optimize import inversion
from cnnviz_widgets.engine.zoo.samples import sample_image
from tests.helpers import assert_restored, png_to_array


def test_relative_error_falls_below_0_2(effnet):
    with assert_restored(effnet):
        steps = list(inversion.invert_features_iter(effnet, sample_image("coffee"), "stage1", size=64, steps=150,
                                                    every=50))
    errors = [p.result.relative_error for p in steps]
    assert errors[-1] < 0.2
    assert errors[-1] < errors[0]
    last = steps[-1].result
    assert last.layer == "stage1" and last.ended == "done" and last.original.shape == (1, 3, 64, 64)
    # the reported error is the real one, recomputed from scratch
    phi0 = inversion.layer_features(effnet, last.original, "stage1")
    assert inversion.relative_feature_error(effnet, last.image, phi0, "stage1") == pytest.approx(errors[-1], rel=1e-4)
    assert all(p.grad is None for p in effnet.parameters())


def test_earlier_layers_reconstruct_closer_to_the_image(effnet):
    results = inversion.invert_layers(effnet, sample_image("cat"), ["stage2", "stage6"], size=64, steps=60)
    photo = results["stage2"].original
    d_early = inversion.pixel_distance(results["stage2"].image, photo)
    d_late = inversion.pixel_distance(results["stage6"].image, photo)
    assert d_early < d_late


def test_bad_inputs(effnet):
    with assert_restored(effnet):
        with pytest.raises(ValueError, match="no layer 'conv9'"):
            inversion.invert_features(effnet, sample_image("cat"), "conv9", size=64, steps=2)
        with pytest.raises(ValueError, match="TV weight"):
            inversion.invert_features(effnet, sample_image("cat"), "stage2", size=64, steps=2, tv=-1)
        with pytest.raises(ValueError, match="size 8 is out of range"):
            inversion.invert_features(effnet, sample_image("cat"), "stage2", size=8, steps=2)


def test_app_reconstructs_several_layers_and_stops(effnet):
    from cnnviz_widgets.widgets import InversionApp

    app = InversionApp(model=effnet, image="cat", layers=("stage1", "stage3"), size=64, steps=8)
    with assert_restored(effnet):
        app.run()
        app.runner.wait()
    assert app.error == ""
    assert set(app.results) == {"stage1", "stage3"}
    assert "stage3" in app.info.value and "relative error" in app.info.value
    pic = png_to_array(app.view.value)
    assert pic.shape[1] > 2 * pic.shape[0] * 0.8  # the photo and two reconstructions side by side
    app.layers.value = ()
    app.run()
    assert "choose at least one layer" in app.error
