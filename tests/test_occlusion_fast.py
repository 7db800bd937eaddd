"""Exact incremental occlusion (engine/occlusion_fast.py): the same logits as the naive
batched forward on AlexNet, the shapes net and VGG16, for every kind of fill, at borders
and corners; unsupported networks are recognised; the model is left as it was."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnviz_widgets.engine import models
from cnnviz_widgets.engine import occlusion as occ
from cnnviz_widgets.engine import occlusion_fast as of
from cnnviz_widgets.engine.shapes_net import WEIGHTS_PATH
from tests.conftest import make_random_alexnet
from tests.helpers import assert_restored


def _naive(net, x, fill, boxes):
    out = []
    with torch.no_grad():
        for t, l, b, r in boxes:
            out.append(net(occ.occluded_image(x, fill, (t, l, b, r))))
    return torch.cat(out)


def _boxes(size, patch, stride):
    """Corners, borders, the centre, and a few interior positions of a patch grid."""
    starts = occ.positions(size, patch, stride)
    mid = starts[len(starts) // 2]
    picks = [(starts[0], starts[0]), (starts[0], starts[-1]), (starts[-1], starts[0]), (starts[-1], starts[-1]),
             (starts[0], mid), (mid, starts[-1]), (mid, mid), (starts[1], starts[2]), (starts[-2], starts[1])]
    return [(t, l, t + patch, l + patch) for t, l in picks]


def _fills(x, patch):
    return {"grey": occ.fill_image(x, "grey", patch), "mean": occ.fill_image(x, "mean", patch),
            "blur": occ.fill_image(x, "blur", patch)}


def _random_net(name, seed, size, builder):
    torch.manual_seed(seed)
    m = builder()
    # Random weights give near-constant logits; larger biases and a little gain make the
    # patches move the output, so agreement is a real test.
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)) and mod.bias is not None:
                mod.bias.normal_(0, 0.05)
    layers = models._vgg_layers(m) if name == "vgg16" else dict(models._ALEXNET_LAYERS)
    return models.Network(name, m, layers, models._imagenet_classes(), models.IMAGENET_MEAN,
                          models.IMAGENET_STD, input_size=size, resize_size=size)


@pytest.fixture(scope="module")
def alexnet():
    net = make_random_alexnet(3)
    # Default random weights give logits that barely move (changes ~1e-3); scale the last
    # layer so the patches move them by ~0.1 and 1e-4 agreement means something.
    with torch.no_grad():
        net.model.classifier[6].weight.mul_(100.0)
    return net


@pytest.fixture(scope="module")
def vgg_small():
    import torchvision

    return _random_net("vgg16", 5, 64, lambda: torchvision.models.vgg16(weights=None))


@pytest.fixture(scope="module")
def shapes():
    if WEIGHTS_PATH.is_file():
        return models.load_model("shapes", device="cpu")
    from cnnviz_widgets.engine import shapes, shapes_net

    torch.manual_seed(7)
    m = shapes_net.ShapesNet()
    return models.Network("shapes", m, dict(models._ALEXNET_LAYERS), list(shapes.SHAPE_CLASSES),
                          shapes_net.MEAN, shapes_net.STD, input_size=64, resize_size=64)


@pytest.mark.parametrize("patch,stride", [(32, 16), (16, 8)])
def test_alexnet_matches_naive_forward(alexnet, patch, stride):
    torch.manual_seed(11)
    x = torch.rand(1, 3, 224, 224)
    boxes = _boxes(224, patch, stride)
    for name, fill in _fills(x, patch).items():
        expected = _naive(alexnet, x, fill, boxes)
        with assert_restored(alexnet):
            got = of.occluded_logits(alexnet, x, boxes, fill, batch_size=4)
        assert got.shape == (len(boxes), 1000)
        # The patches really change the output, so agreement is not trivial.
        with torch.no_grad():
            clean = alexnet(x)
        assert (expected - clean).abs().max() > 2e-2, name
        assert torch.allclose(got, expected, atol=1e-4, rtol=0), (name, (got - expected).abs().max())


def test_shapes_net_matches_naive_forward(shapes):
    assert of.supports_incremental(shapes)
    torch.manual_seed(12)
    x = torch.rand(1, 3, 64, 64)
    for patch, stride in [(16, 8), (8, 4), (20, 16)]:
        boxes = _boxes(64, patch, stride)
        for name, fill in _fills(x, patch).items():
            expected = _naive(shapes, x, fill, boxes)
            with assert_restored(shapes):
                got = of.occluded_logits(shapes, x, boxes, fill, batch_size=5)
            assert (expected - shapes(x).detach()).abs().max() > 1e-4
            assert torch.allclose(got, expected, atol=1e-4, rtol=0), (patch, name, (got - expected).abs().max())


def test_vgg16_matches_naive_forward(vgg_small):
    torch.manual_seed(13)
    x = torch.rand(1, 3, 64, 64)
    boxes = _boxes(64, 16, 8)
    fill = occ.fill_image(x, "grey", 16)
    expected = _naive(vgg_small, x, fill, boxes)
    with assert_restored(vgg_small):
        got = of.occluded_logits(vgg_small, x, boxes, fill, batch_size=9)
    assert (expected - vgg_small(x).detach()).abs().max() > 1e-4
    assert torch.allclose(got, expected, atol=1e-4, rtol=0), (got - expected).abs().max()


def test_every_switch_point_and_odd_boxes_agree(alexnet):
    """From 'switch at once' to 'never switch', and boxes of mixed sizes, partly
    outside the image, and empty: always the naive answer."""
    torch.manual_seed(14)
    x = torch.rand(1, 3, 224, 224)
    fill = torch.full_like(x, 0.2)
    boxes = [(0, 0, 5, 224), (100, 100, 101, 101), (-10, 200, 30, 240), (50, 60, 50, 90), (3, 7, 70, 40)]
    clipped = [(max(t, 0), max(l, 0), min(b, 224), min(r, 224)) for t, l, b, r in boxes]
    expected = _naive(alexnet, x, fill, clipped)
    for ratio in (0.0, 0.3, 0.6, 2.0):
        got = of.occluded_logits(alexnet, x, boxes, fill, batch_size=3, switch_ratio=ratio)
        assert torch.allclose(got, expected, atol=1e-4, rtol=0), ratio
    # The empty box leaves the image as it is.
    with torch.no_grad():
        assert torch.allclose(got[3], alexnet(x)[0], atol=1e-4)


def test_incremental_and_naive_methods_agree_and_fill_broadcasts(shapes):
    torch.manual_seed(15)
    x = torch.rand(1, 3, 64, 64)
    boxes = _boxes(64, 12, 6)
    a = of.occluded_logits(shapes, x, boxes, torch.tensor(0.5), method="incremental")
    b = of.occluded_logits(shapes, x, boxes, torch.full_like(x, 0.5), method="naive")
    assert torch.allclose(a, b, atol=1e-4, rtol=0)


def test_unsupported_networks_are_recognised(effnet):
    import torchvision

    assert not of.supports_incremental(effnet)
    torch.manual_seed(0)
    resnet = models.Network("resnet18", torchvision.models.resnet18(weights=None), models._resnet_layers(
        torchvision.models.resnet18(weights=None)), models._imagenet_classes(), models.IMAGENET_MEAN,
        models.IMAGENET_STD, input_size=224, resize_size=256)
    assert not of.supports_incremental(resnet)
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="naive"):
        of.occluded_logits(resnet, x, [(0, 0, 8, 8)], torch.full_like(x, 0.5), method="incremental")
    # auto falls back to the naive forward and still answers.
    with assert_restored(resnet):
        got = of.occluded_logits(resnet, x, [(0, 0, 8, 8), (8, 8, 30, 30)], torch.full_like(x, 0.5))
    assert torch.allclose(got, _naive(resnet, x, torch.full_like(x, 0.5), [(0, 0, 8, 8), (8, 8, 30, 30)]), atol=1e-4)


def test_bad_settings_raise(shapes):
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="method"):
        of.occluded_logits(shapes, x, [(0, 0, 8, 8)], x, method="fast")
    with pytest.raises(ValueError, match="batch_size"):
        of.occluded_logits(shapes, x, [(0, 0, 8, 8)], x, batch_size=0)
    with pytest.raises(ValueError, match="1x3xHxW"):
        of.occluded_logits(shapes, torch.rand(2, 3, 64, 64), [(0, 0, 8, 8)], x)


def test_scorer_plugs_into_occlusion_map(shapes):
    """incremental_scores has occluded_scores' signature and values: the same heatmap."""
    torch.manual_seed(16)
    x = torch.rand(1, 3, 64, 64)
    with assert_restored(shapes):
        fast = occ.occlusion(shapes, x, 2, patch=16, stride=8, fill="mean", batch_size=7, scorer=of.incremental_scores)
    slow = occ.occlusion(shapes, x, 2, patch=16, stride=8, fill="mean", batch_size=7)
    assert np.allclose(fast.heat, slow.heat, atol=1e-5)
    fast = occ.occlusion(shapes, x, 2, patch=16, stride=8, output="logit", scorer=of.incremental_scores)
    slow = occ.occlusion(shapes, x, 2, patch=16, stride=8, output="logit")
    assert np.allclose(fast.heat, slow.heat, atol=1e-4)


@pytest.mark.parametrize("fill", ["grey", "blur"])
def test_occlusion_methods_give_the_same_heatmap(alexnet, fill):
    """occlusion(method=...): 'auto' picks the incremental path on AlexNet, and its
    heatmap equals the naive one within 1e-4."""
    torch.manual_seed(17)
    x = torch.rand(1, 3, 224, 224)
    with assert_restored(alexnet):
        auto = occ.occlusion(alexnet, x, 3, patch=48, stride=44, fill=fill, output="logit", batch_size=8)
    inc = occ.occlusion(alexnet, x, 3, patch=48, stride=44, fill=fill, output="logit", method="incremental")
    naive = occ.occlusion(alexnet, x, 3, patch=48, stride=44, fill=fill, output="logit", method="naive")
    assert np.ptp(naive.heat) > 1e-2  # the map is not flat
    assert np.allclose(auto.heat, naive.heat, atol=1e-4) and np.allclose(inc.heat, naive.heat, atol=1e-4)


def test_occlusion_method_option_is_checked(effnet, shapes):
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="method"):
        occ.occlusion(shapes, x, 0, method="quick")
    with pytest.raises(ValueError, match="incremental"):
        occ.occlusion(effnet, torch.rand(1, 3, 64, 64), 0, patch=32, stride=32, method="incremental")
    # auto on a network that is not a chain is the naive map.
    a = occ.occlusion(effnet, torch.rand(1, 3, 64, 64), 0, patch=32, stride=32)
    assert a.heat.shape == (2, 2) and np.isfinite(a.heat).all()


def test_whole_grid_with_merged_groups_matches_naive(alexnet):
    """A full 32/16 grid: the planner merges boxes of different changed-region sizes
    into padded groups (checked), and every logit still equals the naive forward."""
    torch.manual_seed(18)
    x = torch.rand(1, 3, 224, 224)
    fill = occ.fill_image(x, "grey", 32)
    starts = occ.positions(224, 32, 16)
    boxes = np.array([(t, l, t + 32, l + 32) for t in starts for l in starts])
    plan = of.IncrementalPlan(alexnet, x, fill)
    groups = plan._groups(boxes)
    rows = plan._axis_profiles(boxes[:, 0], boxes[:, 2], 0)
    cols = plan._axis_profiles(boxes[:, 1], boxes[:, 3], 1)
    profiles = np.concatenate([rows, cols], axis=1)
    merged = [g for g in np.unique(groups) if len(np.unique(profiles[groups == g], axis=0)) > 1]
    assert merged, "expected some groups to mix profiles"
    assert 1 < len(np.unique(groups)) < len(np.unique(profiles, axis=0))
    with assert_restored(alexnet):
        got = of.occluded_logits(alexnet, x, boxes, fill, batch_size=64)
    expected = of.occluded_logits(alexnet, x, boxes, fill, method="naive")
    assert torch.allclose(got, expected, atol=1e-4, rtol=0), (got - expected).abs().max()


def test_both_methods_clip_boxes_and_take_an_empty_list(alexnet):
    """A box partly outside the image covers its inside part on both paths (the naive
    path used to read negative corners as Python's from-the-end indices)."""
    torch.manual_seed(19)
    x = torch.rand(1, 3, 224, 224)
    fill = torch.full_like(x, 0.3)
    boxes = [(-8, -8, 24, 24), (200, 210, 240, 260)]
    inc = of.occluded_logits(alexnet, x, boxes, fill, method="incremental")
    naive = of.occluded_logits(alexnet, x, boxes, fill, method="naive")
    assert torch.allclose(inc, naive, atol=1e-4, rtol=0)
    assert torch.allclose(naive, _naive(alexnet, x, fill, [(0, 0, 24, 24), (200, 210, 224, 224)]), atol=1e-4)
    for method in ("incremental", "naive"):
        assert of.occluded_logits(alexnet, x, [], fill, method=method).shape == (0, 1000)


def test_boxes_of_many_sizes_plan_quickly_and_agree(shapes):
    """Not a grid: 200 boxes of random sizes (more profiles than the DP takes) are
    grouped in even runs, fast, and still give the naive logits."""
    import time

    rng = np.random.default_rng(0)
    x = torch.rand(1, 3, 64, 64)
    fill = torch.full_like(x, 0.5)
    tl = rng.integers(0, 60, size=(200, 2))
    hw = rng.integers(1, 40, size=(200, 2))
    boxes = np.concatenate([tl, np.minimum(tl + hw, 64)], axis=1)  # top, left, bottom, right
    plan = of.IncrementalPlan(shapes, x, fill)
    rows = plan._axis_profiles(boxes[:, 0], boxes[:, 2], 0)
    assert len(np.unique(rows, axis=0)) > of._MAX_DP_PROFILES  # the even-runs path
    t = time.perf_counter()
    groups = plan._groups(boxes)
    assert time.perf_counter() - t < 2.0 and len(groups) == len(boxes) and len(np.unique(groups)) <= 16 * 16
    got = of.occluded_logits(shapes, x, boxes, fill, method="incremental")
    expected = of.occluded_logits(shapes, x, boxes, fill, method="naive")
    assert torch.allclose(got, expected, atol=1e-4, rtol=0)
