"""Lesson 04: activations (engine and app)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from torch import nn

from cnnviz_widgets.engine.inspect import activations as A
from cnnviz_widgets.render import activations as RA
from cnnviz_widgets.engine.zoo.samples import sample_image
from cnnviz_widgets.engine.core.network import Network
from cnnviz_widgets.engine.zoo.shapes_net import WEIGHTS_PATH

from .helpers import assert_restored, close_to_scale, png_to_array, simulate_upload

needs_shapes = pytest.mark.skipif(not WEIGHTS_PATH.exists(), reason="shapes weights not committed yet")


def tiny_net() -> Network:
    """conv1 3->2 (3x3, pad 1), conv2 2->4 (3x3, no pad), a linear head; seeded weights."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 2, 3, padding=1), nn.ReLU(),
        nn.Conv2d(2, 4, 3), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    )
    return Network("tiny", model, {"conv1": "1", "conv2": "3", "fc": "6"}, ["a", "b", "c"],
                   mean=(0, 0, 0), std=(1, 1, 1), input_size=8, resize_size=8)


@pytest.fixture
def tiny():
    return tiny_net()


@pytest.fixture
def x8():
    torch.manual_seed(1)
    return torch.rand(1, 3, 8, 8)


# --- engine -----------------------------------------------------------------------------

def test_activations_equal_a_manual_convolution(tiny, x8):
    conv1, conv2 = tiny.model[0], tiny.model[2]
    expected1 = TF.relu(TF.conv2d(x8, conv1.weight, conv1.bias, padding=1))[0]
    expected2 = TF.relu(TF.conv2d(expected1[None], conv2.weight, conv2.bias))[0]
    got1 = A.activations(tiny, x8, "conv1")
    assert got1.layer == "conv1" and got1.channels == 2 and got1.maps.shape == (2, 8, 8)
    close_to_scale(got1.maps, expected1, 1e-6)
    close_to_scale(A.activations(tiny, x8[0], "conv2").maps, expected2, 1e-6)  # 3-D input too
    fc = A.activations(tiny, x8, "fc").maps
    assert fc.shape == (3, 1, 1)
    close_to_scale(fc.flatten(), tiny(x8)[0], 1e-6)


def test_all_activations_is_one_forward_pass_with_the_same_values(tiny, x8):
    calls = []
    handle = tiny.model.register_forward_pre_hook(lambda m, i: calls.append(1))
    try:
        every = A.all_activations(tiny, x8)
    finally:
        handle.remove()
    assert len(calls) == 1 and list(every) == tiny.layers
    for layer in tiny.layers:
        assert every[layer].layer == layer
        close_to_scale(every[layer].maps, A.activations(tiny, x8, layer).maps, 1e-6)


def test_engine_calls_restore_the_model_also_when_they_raise(tiny, x8, effnet):
    tiny.train()  # a caller left it training: the engine must run in eval and give it back
    with assert_restored(tiny):
        A.activations(tiny, x8, "conv2")
        A.all_activations(tiny, x8)
        with pytest.raises(ValueError, match="no layer 'conv7'"):
            A.activations(tiny, x8, "conv7")
        with pytest.raises(ValueError, match="one RGB image"):
            A.activations(tiny, torch.rand(2, 3, 8, 8), "conv1")
        with pytest.raises(ValueError, match="too small"):  # 2x2 is too small for conv2: refused before the forward
            A.all_activations(tiny, torch.rand(1, 3, 2, 2))
    assert tiny.training
    with assert_restored(effnet):
        acts = A.activations(effnet, sample_image("cat"), "stage3")
        with pytest.raises(ValueError, match="no layer"):
            A.all_activations(effnet, sample_image("cat"), ["stage3", "stage99"])
    assert acts.maps.shape == effnet.layer_shape("stage3")


def test_top_channels_rank_by_mean_activation():
    acts = torch.zeros(4, 2, 2)
    acts[1] = 1.0
    acts[3, 0, 0] = 3.0  # mean 0.75: a single strong pixel ranks below a broad response
    acts[2, 0, 0] = 0.5
    assert A.top_channels(acts, 3).tolist() == [1, 3, 2]
    assert A.top_channels(acts, 10).tolist()[:3] == [1, 3, 2]  # k above C: all channels
    assert A.top_channels(A.Activations(acts, "conv5"), np.int64(3)).tolist() == [1, 3, 2]
    with pytest.raises(ValueError, match="k 0 is out of range"):
        A.top_channels(acts, 0)
    with pytest.raises(ValueError, match="channels x height x width"):
        A.top_channels(acts[0], 1)


def test_activation_grid_layout_and_scales():
    acts = torch.zeros(4, 2, 2)
    acts[0] = 2.0
    acts[1] = 1.0
    grid = RA.activation_grid(acts, scale=1, ncols=2)
    assert grid.shape == (2 + 2 + 2 + 2 + 2, 10, 3)
    tile = lambda g, r, c: g[2 + r * 4:4 + r * 4, 2 + c * 4:4 + c * 4]
    # one scale for the layer: the strongest channel is white, half of it mid-grey, silent black
    assert (tile(grid, 0, 0) == 255).all() and (tile(grid, 0, 1) == 128).all() and (tile(grid, 1, 0) == 0).all()
    per = RA.activation_grid(acts, channels=[1], normalize="channel", scale=1, labels=False)
    assert per.shape == (6, 6, 3)
    big = torch.zeros(1, 120, 120)
    big[0, :60] = 1.0  # averaged down 3x to 40 x 40: the top half stays white, the bottom black
    small = RA.activation_grid(big, scale=1, max_tile=56)
    assert small.shape == (44, 44, 3) and (small[2:22, 2:42] == 255).all() and (small[22:42, 2:42] == 0).all()
    with pytest.raises(ValueError, match="channel 4 is out of range"):
        RA.activation_grid(acts, channels=[0, 4])
    with pytest.raises(ValueError, match="normalize"):
        RA.activation_grid(acts, normalize="per_tile")


def test_activation_grid_highlights_the_chosen_channel():
    acts = torch.rand(9, 4, 4)
    red = lambda g: np.all(g == [220, 20, 60], axis=-1)
    assert not red(RA.activation_grid(acts, scale=2)).any()
    framed = red(RA.activation_grid(acts, scale=2, highlight=4))  # the middle tile of 3x3
    rows, cols = np.nonzero(framed)
    assert rows.min() > 8 and rows.max() < 22 and cols.min() > 8 and cols.max() < 22
    labelled = RA.activation_grid(acts, channels=[4, 1], scale=8, highlight=4)  # a subset: labels
    assert red(labelled)[:, :36].any() and not red(labelled)[:, 36:].any()


def test_channel_overlay_is_bright_where_the_channel_fires():
    image = np.full((32, 32, 3), 100, np.uint8)
    heat = torch.zeros(4, 4)
    heat[:2, :2] = 1.0
    out = RA.channel_overlay(image, heat)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert out[:12, :12].mean() > out[20:, 20:].mean() + 50
    with pytest.raises(ValueError, match="H x W map"):
        RA.channel_overlay(image, torch.zeros(2, 4, 4))


def test_mask_fraction_against_hand_computed_cases():
    mask = np.zeros((8, 8), bool)
    mask[:, :2] = True
    assert math.isclose(A.mask_fraction(torch.ones(4, 4), mask), 0.25, rel_tol=1e-6)  # uniform -> area
    heat = torch.zeros(4, 4)
    heat[:, 0] = 1.0
    inside = A.mask_fraction(heat, mask)
    assert math.isclose(inside + A.mask_fraction(heat, ~mask), 1.0, rel_tol=1e-6)
    assert inside > 0.6  # most of the (blurred) mass of column 0 stays on the left quarter
    assert math.isnan(A.mask_fraction(torch.zeros(4, 4), mask))
    with pytest.raises(ValueError, match="2-D"):
        A.mask_fraction(heat, np.zeros((2, 8, 8), bool))
    with pytest.raises(ValueError, match="H x W map"):
        A.mask_fraction(heat[None], mask)


@needs_shapes
def test_strong_late_channels_fire_on_the_object(shapes_net, shapes_data):
    # The lesson's claim, on ground truth: conv5's strongest channels look at the shape,
    # not at the cluttered background. 40 images of every class.
    fractions, areas = [], []
    with assert_restored(shapes_net):
        for i in range(40):
            item = shapes_data[i]
            f, a = A.top_channel_mask_fraction(shapes_net, item.image, item.mask, "conv5", k=3)
            fractions.append(f)
            areas.append(a)
    assert np.nanmean(fractions) > 1.5 * np.mean(areas)
    assert np.mean(np.array(fractions) > np.array(areas)) > 0.75


# --- app --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def app():
    from cnnviz_widgets.widgets.activations import ActivationsApp

    return ActivationsApp(model="efficientnet_lite0", image="cat", layer="stage4", threaded=False)


def test_activations_app_answers_from_one_forward_pass(app, effnet):
    assert app.error == "" and app.layer.value == "stage4" and app.channel.max == 79
    calls = []
    handle = effnet.model.register_forward_pre_hook(lambda m, i: calls.append(1))
    try:
        seen = [app.view.value]
        other_channel = "any other channel"
        for control, value in [(app.layer, "stage2"), (app.channel, other_channel), (app.top_only, True),
                               (app.normalize, "channel"), (app.layer, "logits"), (app.layer, "stage4")]:
            control.value = (app.channel.value + 1) % (app.channel.max + 1) if value is other_channel else value
            assert app.error == "", app.error
            assert app.view.value != seen[-1], control
            seen.append(app.view.value)
    finally:
        handle.remove()
    assert calls == []  # all from the cache
    assert app.channel.max == 79 and "stage4" in app.info.value
    assert png_to_array(app.view.value).ndim == 3
    app.top_only.value, app.normalize.value = False, "layer"


def test_activations_app_picture_holds_the_engines_grid(app, effnet):
    app.layer.value, app.channel.value = "stage5", 2
    acts = A.activations(effnet, sample_image("cat"), "stage5").maps
    grid = RA.activation_grid(acts, highlight=2)
    picture = png_to_array(app.view.value)
    right = picture[:grid.shape[0], -grid.shape[1]:]
    assert np.abs(right.astype(int) - grid.astype(int)).max() <= 1


def test_activations_app_reports_a_bad_upload_and_keeps_working(app):
    app.image_picker.value = "cat"
    before = app.view.value
    app.image_picker.load_upload("bad.txt", b"not an image")
    assert "bad.txt" in app.error and "not an image" in app.error
    assert app.image_picker.value == "cat" and app.view.value == before
    simulate_upload(app.image_picker.upload, "broken.png", b"\x89PNG\r\n\x1a\n but then nothing")
    assert "broken.png" in app.error
    app.channel.value = 1
    assert app.error == "" and app.view.value != before
    app.image_picker.value = "coffee"  # a new image: a new forward pass, new maps
    assert app.error == "" and "coffee" in [k[1] for k in app._cache]


def test_activations_app_takes_a_good_upload(app):
    import io

    buf = io.BytesIO()
    sample_image("rocket").resize((120, 90)).save(buf, format="PNG")
    simulate_upload(app.image_picker.upload, "mine.png", buf.getvalue())
    assert app.error == "" and app.image_picker.value == "mine.png"
    assert "mine.png" in [k[1] for k in app._cache]


def test_a_new_layer_starts_on_its_strongest_channel_and_top_only_keeps_it_shown(app, effnet):
    app.image_picker.value, app.layer.value, app.top_only.value = "cat", "stage6", False
    acts = A.activations(effnet, sample_image("cat"), "stage6").maps
    top = A.top_channels(acts, app.top_k).tolist()
    assert app.channel.value == top[0]
    app.channel.value = next(c for c in range(len(acts)) if c not in top)
    app.top_only.value = True
    assert app.error == "" and app.channel.value == top[0]
    assert f"Channel <b>{top[0]}</b>" in app.info.value and "rank 1 of" in app.info.value
    app.top_only.value = False


def test_shape_examples_are_offered_beside_the_photos(app):
    shapes = [name for name in app.image_picker.dropdown.options if name.startswith("shape: ")]
    assert len(shapes) >= 3 and "cat" in app.image_picker.dropdown.options
    app.image_picker.value = shapes[0]
    assert app.error == "" and app.info.value


def test_activations_app_reports_a_model_it_cannot_load_and_keeps_working(app):
    from cnnviz_widgets.engine.zoo.models import torchvision_weight_file

    if torchvision_weight_file("alexnet").exists():
        pytest.skip("alexnet is cached here, so it would load")
    app.layer.value = "stage3"
    app.model_picker.value = "alexnet"
    assert "alexnet" in app.error and "offline" in app.error
    assert app.model_picker.value == "efficientnet_lite0" and app.layer.value == "stage3"
    before = app.view.value
    app.channel.value = (app.channel.value + 1) % (app.channel.max + 1)
    assert app.error == "" and app.view.value != before
