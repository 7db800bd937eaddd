"""Lesson 01: first-layer filters (engine and app)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnviz_widgets.engine.inspect import filters as F
from cnnviz_widgets.render import filters as RF
from cnnviz_widgets.engine.core.network import Network
from cnnviz_widgets.engine.zoo.shapes_net import SNAPSHOTS_PATH, WEIGHTS_PATH, filter_smoothness

from .helpers import assert_restored, close_to_scale, png_to_array

needs_shapes = pytest.mark.skipif(not WEIGHTS_PATH.exists(), reason="shapes weights not committed yet")
needs_snapshots = pytest.mark.skipif(not SNAPSHOTS_PATH.exists(), reason="conv1 snapshots not committed yet")

GREY = 128  # how a zero weight is drawn: 0.5 * 255, rounded


def tiny_net() -> Network:
    """conv1 3->2 (3x3, hand-set), conv2 2->4 (3x3, seeded), a linear head."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 2, 3, padding=1), nn.ReLU(),
        nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    )
    with torch.no_grad():
        w = torch.zeros(2, 3, 3, 3)
        w[0, 0] = 1.0    # filter 0: red only, +1 everywhere
        w[1, 0] = 0.5    # filter 1: red +0.5, blue -0.5 (weaker, signed)
        w[1, 2] = -0.5
        model[0].weight.copy_(w)
    return Network("tiny", model, {"conv1": "1", "conv2": "3", "fc": "6"}, ["a", "b", "c"],
                   mean=(0, 0, 0), std=(1, 1, 1), input_size=8, resize_size=8)


@pytest.fixture
def tiny():
    return tiny_net()


# --- engine -----------------------------------------------------------------------------

def test_first_layer_filters_are_a_copy_of_conv1(tiny):
    filters = F.first_layer_filters(tiny)
    assert filters.module == "0"
    w = filters.weights
    assert torch.equal(w, tiny.model[0].weight)
    w.fill_(7.0)  # drawing code may scribble on it: the model must not change
    assert tiny.model[0].weight[0, 0, 0, 0] == 1.0


def test_first_layer_filters_of_real_layouts(effnet, random_alexnet):
    assert tuple(F.first_layer_filters(effnet).weights.shape) == (32, 3, 3, 3)  # EfficientNet's stem
    assert tuple(F.first_layer_filters(random_alexnet).weights.shape) == (64, 3, 11, 11)


def test_filter_grid_puts_zero_at_mid_grey_and_normalises_as_asked(tiny):
    w = F.first_layer_filters(tiny).weights
    per = RF.filter_grid(w, "per_filter", scale=1, pad=2, ncols=2)
    glob = RF.filter_grid(w, "global", scale=1, pad=2, ncols=2)
    # one row of two 3x3 tiles with 2 px padding around each
    assert per.shape == glob.shape == (2 + 3 + 2, 2 + 3 + 2 + 3 + 2, 3) and per.dtype == np.uint8
    tile0, tile1 = (slice(2, 5), slice(2, 5)), (slice(2, 5), slice(7, 10))
    assert (per[tile0] == [255, GREY, GREY]).all()
    # per filter: the weaker filter is stretched to full range, its negative blue is dark
    assert (per[tile1] == [255, GREY, 0]).all()
    # global: one scale, so 0.5 of the largest weight is 3/4 of the way to white
    assert (glob[tile1] == [int(0.75 * 255 + 0.5), GREY, int(0.25 * 255 + 0.5)]).all()
    assert (glob[tile0] == per[tile0]).all()


def test_filter_grid_draws_grey_kernels_and_frames_the_chosen_tile(tiny):
    kernels = F.deeper_filters(tiny, "conv2", 1).weights
    grid = RF.filter_grid(kernels, scale=2, pad=2, ncols=2)
    assert grid.shape == (2 + 6 + 2, 2 + 6 + 2 + 6 + 2, 3)
    assert (grid[..., 0] == grid[..., 1]).all() and (grid[..., 1] == grid[..., 2]).all()  # grey
    framed = RF.filter_grid(kernels, scale=2, pad=2, ncols=2, highlight=1)
    red = np.all(framed == [220, 20, 60], axis=-1)
    assert red[:, 8:].any() and not red[:, :7].any()  # only around the second tile


def test_filter_grid_rejects_bad_input(tiny):
    with pytest.raises(ValueError, match="deeper_filters"):
        RF.filter_grid(tiny.model[2].weight)  # 4 x 2 x 3 x 3: not RGB
    with pytest.raises(ValueError, match="normalize"):
        RF.filter_grid(F.first_layer_filters(tiny).weights, normalize="sideways")
    with pytest.raises(ValueError, match="highlight"):
        RF.filter_grid(F.first_layer_filters(tiny).weights, highlight=5)


def test_filter_zoom_shows_each_colour_channel_on_the_filters_scale(tiny):
    zoom = RF.filter_zoom(F.first_layer_filters(tiny).weights, 1, size=30)
    tiles = [zoom[4:34, x:x + 30] for x in (4, 38, 72, 106)]  # 3x3 at scale 10, pad 4
    rgb, red, green, blue = tiles
    assert (rgb == [255, GREY, 0]).all()
    assert (red == 255).all() and (green == GREY).all() and (blue == 0).all()
    with pytest.raises(ValueError, match="out of range"):
        RF.filter_zoom(F.first_layer_filters(tiny).weights, 2)


def test_deeper_filters_by_layer_name_and_by_index(tiny, random_alexnet):
    k = F.deeper_filters(tiny, "conv2", 3).weights
    assert torch.equal(k, tiny.model[2].weight[3])
    assert torch.equal(F.deeper_filters(tiny, np.int64(1), np.int64(3)).weights, k)  # index into conv_layers
    assert F.deeper_filters(tiny, "conv2", 3).module == "2"
    assert F.conv_layers(tiny) == ["0", "2"]
    assert torch.equal(F.deeper_filters(tiny, "conv1", 0).weights, tiny.model[0].weight[0])
    assert tuple(F.deeper_filters(random_alexnet, "conv2", 0).weights.shape) == (64, 5, 5)
    assert tuple(F.deeper_filters(random_alexnet, "conv5", 0).weights.shape) == (256, 3, 3)


def test_deeper_filters_name_the_problem(tiny):
    with assert_restored(tiny):
        with pytest.raises(ValueError, match="channel 4 is out of range: conv2 has channels 0..3"):
            F.deeper_filters(tiny, "conv2", 4).weights
        with pytest.raises(ValueError, match="conv index 5"):
            F.deeper_filters(tiny, 5, 0).weights
        with pytest.raises(ValueError, match="no layer 'conv9'"):
            F.deeper_filters(tiny, "conv9", 0).weights
        F.deeper_filters(tiny, "conv2", 0).weights
        F.first_layer_filters(tiny).weights


def test_smoothness_separates_smooth_from_noisy_filters():
    torch.manual_seed(0)
    noise = torch.randn(16, 3, 9, 9)
    ramp = torch.linspace(-1, 1, 9).view(1, 1, 1, 9).expand(16, 3, 9, 9).contiguous()
    assert filter_smoothness(ramp) < 0.1 < 0.8 < filter_smoothness(noise)


def test_snapshot_file_missing_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_shapes"):
        F.filter_snapshots(tmp_path / "nothing.pt")


@needs_snapshots
def test_snapshots_go_from_initialisation_to_shipped_filters(shapes_net):
    snaps = F.filter_snapshots()
    steps = [s for s, _ in snaps]
    assert steps[0] == 0 and steps == sorted(set(steps)) and len(steps) >= 3
    shipped = F.first_layer_filters(shapes_net).weights
    assert all(w.shape == shipped.shape for _, w in snaps)
    close_to_scale(snaps[-1][1], shipped, 1e-2)


@needs_snapshots
def test_trained_first_layer_is_smoother_than_its_initialisation(shapes_net):
    # The lesson's claim: training turns random conv1 weights into smooth edges and blobs.
    snaps = F.filter_snapshots()
    trained = filter_smoothness(F.first_layer_filters(shapes_net).weights)
    assert trained < filter_smoothness(snaps[0][1])
    torch.manual_seed(1)
    assert trained < filter_smoothness(torch.randn_like(snaps[0][1]))


# --- app --------------------------------------------------------------------------------

def test_filters_app_headless_controls_change_the_picture(effnet):
    from cnnviz_widgets.widgets.filters import FiltersApp

    app = FiltersApp(model="efficientnet_lite0")
    assert app.error == "" and app.filter.max == 31
    assert app.snapshot.layout.display == "none" and app.conv.layout.display == "none"
    pictures = [png_to_array(app.view.value)]
    for control, value in [(app.filter, 7), (app.normalize, "global"), (app.mode, "deeper"), (app.filter, 3)]:
        control.value = value
        assert app.error == ""
        pictures.append(png_to_array(app.view.value))
        assert pictures[-1].shape != pictures[-2].shape or (pictures[-1] != pictures[-2]).any(), control
    assert app.conv.layout.display != "none"
    deeper = F.deeper_filters(effnet, app.conv.value, 3).weights
    assert f"{deeper.shape[0]} kernels of {deeper.shape[-1]} x {deeper.shape[-1]}" in app.info.value


def test_filters_app_reports_a_model_it_cannot_load_and_keeps_working():
    from cnnviz_widgets.engine.zoo.models import torchvision_weight_file
    from cnnviz_widgets.widgets.filters import FiltersApp

    if torchvision_weight_file("alexnet").exists():
        pytest.skip("alexnet is cached here, so it would load")
    app = FiltersApp(model="efficientnet_lite0")
    app.model_picker.value = "alexnet"
    assert "alexnet" in app.error and "offline" in app.error
    assert app.model_picker.value == "efficientnet_lite0"  # back to the model that works
    before = app.view.value
    app.filter.value = 4
    assert app.error == "" and app.view.value != before


@needs_snapshots
def test_filters_app_snapshot_slider_shows_training(shapes_net):
    from cnnviz_widgets.widgets.filters import FiltersApp

    app = FiltersApp(model="shapes")
    assert app.error == "" and app.snapshot.layout.display != "none"
    assert app.snapshot.value == len(app.snapshot.options) - 1 and app.filter.max == 31
    trained = app.view.value
    app.snapshot.value = 0
    assert app.error == "" and app.view.value != trained and "training step 0" in app.info.value
    app.mode.value = "deeper"
    assert app.snapshot.layout.display == "none"
    assert "32 kernels of 5 x 5" in app.info.value  # conv2 reads conv1's 32 maps
