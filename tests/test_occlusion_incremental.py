"""Exact incremental occlusion (engine/occlusion/incremental.py): the same logits as the
naive batched forward on AlexNet, the shapes net, VGG16, EfficientNet-Lite0 (real
weights) and ResNet-18, for every kind of fill, at borders and corners, for several
windows and image sizes; unsupported networks are recognised by name; the model is
left as it was."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnviz_widgets.engine.zoo import models
from cnnviz_widgets.engine.attribution import occlusion as occ
from cnnviz_widgets.engine.attribution.occlusion.incremental import MAX_DP_PROFILES, Program
from cnnviz_widgets.engine.zoo.shapes_net import WEIGHTS_PATH
from cnnviz_widgets.engine.core.targets import ClassLogit
from tests.conftest import make_random_alexnet
from tests.helpers import assert_restored


def _naive(net, x, fill, boxes):
    out = []
    with torch.no_grad():
        for t, l, b, r in boxes:
            out.append(net(occ.occluded_image(x, fill, (t, l, b, r))))
    return torch.cat(out)


def _boxes(size, patch, stride, width=None):
    """Corners, borders, the centre, and a few interior positions of a patch grid."""
    rows = occ.positions(size, patch, stride)
    cols = occ.positions(width or size, patch, stride)
    picks = [(rows[0], cols[0]), (rows[0], cols[-1]), (rows[-1], cols[0]), (rows[-1], cols[-1]),
             (rows[0], cols[len(cols) // 2]), (rows[len(rows) // 2], cols[-1]), (rows[len(rows) // 2], cols[len(cols) // 2]),
             (rows[1], cols[min(2, len(cols) - 1)]), (rows[-2], cols[1])]
    return [(t, l, t + patch, l + patch) for t, l in picks]


def _fills(x, patch):
    return {"grey": occ.fill_image(x, "grey", patch), "mean": occ.fill_image(x, "mean", patch),
            "blur": occ.fill_image(x, "blur", patch)}


def _wrap(name, model, size):
    return models.Network(name, model, {}, [f"class {i}" for i in range(1000)], models.IMAGENET_MEAN,
                          models.IMAGENET_STD, input_size=size, resize_size=size)


def _random_net(name, seed, size, builder):
    torch.manual_seed(seed)
    m = builder()
    # Random weights give near-constant logits; larger biases make the patches move the
    # output, so agreement is a real test.
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)) and mod.bias is not None:
                mod.bias.normal_(0, 0.05)
    return _wrap(name, m, size)


def _assert_agree(got, expected, clean, what, rel=1e-5):
    """Within `rel` of the values' scale, and the patches really moved the output."""
    scale = float(expected.abs().max())
    assert float((expected - clean).abs().max()) > 1e-3 * scale, f"{what}: the patches change nothing"
    err = float((got - expected).abs().max())
    assert err <= rel * scale, f"{what}: max difference {err:.3g} at scale {scale:.3g}"


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
def resnet18():
    import torchvision

    return _random_net("resnet18", 8, 112, lambda: torchvision.models.resnet18(weights=None))


@pytest.fixture(scope="module")
def shapes():
    if WEIGHTS_PATH.is_file():
        return models.load_model("shapes", device="cpu")
    from cnnviz_widgets.engine.zoo import shapes, shapes_net

    torch.manual_seed(7)
    return models.Network("shapes", shapes_net.ShapesNet(), {}, list(shapes.SHAPE_CLASSES), shapes_net.MEAN,
                          shapes_net.STD, input_size=64, resize_size=64)


@pytest.fixture(scope="module")
def cat224(effnet):
    from cnnviz_widgets import sample_image

    return effnet.preprocess(sample_image("cat"))


@pytest.mark.parametrize("network,size,seed,windows,batch_size", [
    ("alexnet", 224, 11, [(32, 16, None), (16, 8, None)], 4),
    ("shapes", 64, 12, [(16, 8, None), (8, 4, None), (20, 16, None)], 5),
    ("vgg_small", 64, 13, [(16, 8, "grey")], 9),
    # ResNet's blocks: a strided 1x1 shortcut, the maxpool stem.
    ("resnet18", 112, 21, [(32, 16, "grey"), (12, 10, "mean")], 4),
])
def test_random_image_matches_naive_forward(request, network, size, seed, windows, batch_size):
    """Every window (patch, stride, fill; None: each of grey, mean and blur) over a seeded
    random image: the incremental logits equal the naive ones within 1e-5 of their scale."""
    net = request.getfixturevalue(network)
    assert occ.supports_incremental(net)
    torch.manual_seed(seed)
    x = torch.rand(1, 3, size, size)
    with torch.no_grad():
        clean = net(x)
    for patch, stride, fill in windows:
        boxes = _boxes(size, patch, stride)
        fills = _fills(x, patch) if fill is None else {fill: occ.fill_image(x, fill, patch)}
        for name, filler in fills.items():
            expected = _naive(net, x, filler, boxes)
            with assert_restored(net):
                got = occ.occluded_logits(net, x, boxes, filler, batch_size=batch_size, method="incremental")
            assert got.shape == (len(boxes), len(net.classes))
            _assert_agree(got, expected, clean, f"{network} {patch}/{stride} {name}")


@pytest.mark.parametrize("size,patch,stride,fill", [
    ((224, 224), 32, 16, "grey"),
    ((224, 224), 16, 8, "blur"),
    ((224, 224), 56, 56, "mean"),
    ((160, 160), 40, 24, 0.2),
    ((100, 136), 20, 12, "grey"),   # not a multiple of the network's stride of 32, not square
])
def test_efficientnet_lite0_matches_naive_forward(effnet, cat224, size, patch, stride, fill):
    """The default model (real weights, a photo): residual and depthwise blocks run
    incrementally and give the naive logits within 1e-5 of their scale, at the corners,
    the borders and inside."""
    assert occ.supports_incremental(effnet)
    x = torch.nn.functional.interpolate(cat224, size=size, mode="bilinear", antialias=True).clamp(0, 1)
    filler = occ.fill_image(x, fill, patch)
    boxes = _boxes(size[0], patch, stride, size[1])
    expected = _naive(effnet, x, filler, boxes)
    with assert_restored(effnet):
        got = occ.occluded_logits(effnet, x, boxes, filler, batch_size=4, method="incremental")
    with torch.no_grad():
        _assert_agree(got, expected, effnet(x), f"{size} {patch}/{stride} {fill}")


@pytest.mark.parametrize("fill,target", [("grey", 281), ("blur", ClassLogit(281))])
def test_efficientnet_lite0_maps_agree(effnet, cat224, fill, target):
    """Whole maps (probability, logit), every position, grouped as the planner likes:
    incremental = naive within 1e-5 of the map's scale."""
    x = torch.nn.functional.interpolate(cat224, size=(96, 96), mode="bilinear", antialias=True).clamp(0, 1)
    inc = occ.occlusion(effnet, x, target, patch=16, stride=8, fill=fill, method="incremental")
    naive = occ.occlusion(effnet, x, target, patch=16, stride=8, fill=fill, method="naive")
    assert inc.extra["method"] == "incremental" and naive.extra["method"] == "naive"
    scale = float(np.abs(naive.heat).max())
    assert np.ptp(naive.heat) > 1e-2 * scale  # the map is not flat
    assert np.abs(inc.heat - naive.heat).max() <= 1e-5 * scale


def test_every_switch_point_and_odd_boxes_agree(alexnet, effnet, cat224):
    """From 'switch to whole maps at once' to 'never switch', and boxes of mixed sizes,
    partly outside the image, and empty: always the naive answer."""
    torch.manual_seed(14)
    for net, x in ((alexnet, torch.rand(1, 3, 224, 224)), (effnet, cat224)):
        fill = torch.full_like(x, 0.2)
        boxes = [(0, 0, 5, 224), (100, 100, 101, 101), (-10, 200, 30, 240), (50, 60, 50, 90), (3, 7, 70, 40)]
        clipped = [(max(t, 0), max(l, 0), min(b, 224), min(r, 224)) for t, l, b, r in boxes]
        expected = _naive(net, x, fill, clipped)
        with torch.no_grad():
            clean = net(x)
        for ratio in (0.0, 0.3, 0.6, 2.0):
            got = occ.occluded_logits(net, x, boxes, fill, batch_size=3, switch_ratio=ratio, method="incremental")
            _assert_agree(got, expected, clean, f"{net.name} switch {ratio}")
        # The empty box leaves the image as it is.
        assert float((got[3] - clean[0]).abs().max()) <= 1e-5 * float(clean.abs().max())


def test_incremental_and_naive_methods_agree_and_fill_broadcasts(shapes):
    torch.manual_seed(15)
    x = torch.rand(1, 3, 64, 64)
    boxes = _boxes(64, 12, 6)
    a = occ.occluded_logits(shapes, x, boxes, torch.tensor(0.5), method="incremental")
    b = occ.occluded_logits(shapes, x, boxes, torch.full_like(x, 0.5), method="naive")
    with torch.no_grad():
        _assert_agree(a, b, shapes(x), "shapes")


def test_unsupported_networks_are_recognised_by_what_is_in_the_way():
    """Squeeze-excitation (EfficientNet-B0) is global, SqueezeNet concatenates: both run
    naive under 'auto' and are refused by name under 'incremental'."""
    import timm
    import torchvision

    torch.manual_seed(0)
    b0 = _wrap("efficientnet_b0", timm.create_model("efficientnet_b0", pretrained=False), 64)
    squeeze = _wrap("squeezenet1_1", torchvision.models.squeezenet1_1(weights=None), 64)
    x = torch.rand(1, 3, 64, 64)
    fill = torch.full_like(x, 0.5)
    for net, words in ((b0, "squeeze-excitation"), (squeeze, "SqueezeNet")):
        assert not occ.supports_incremental(net)
        with pytest.raises(ValueError, match=words):
            occ.occluded_logits(net, x, [(0, 0, 8, 8)], fill, method="incremental")
        with pytest.raises(ValueError, match=words):
            occ.OcclusionPlan(net, 64, 16, 8, method="incremental")
        plan = occ.OcclusionPlan(net, 64, 16, 8)
        assert plan.method == "naive" and words in plan.reason
        # auto falls back to the naive forward and still answers.
        with assert_restored(net):
            got = occ.occluded_logits(net, x, [(0, 0, 8, 8), (8, 8, 30, 30)], fill)
        expected = _naive(net, x, fill, [(0, 0, 8, 8), (8, 8, 30, 30)])
        assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


def test_bad_settings_raise(shapes):
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="method"):
        occ.occluded_logits(shapes, x, [(0, 0, 8, 8)], x, method="fast")
    with pytest.raises(ValueError, match="batch_size"):
        occ.occluded_logits(shapes, x, [(0, 0, 8, 8)], x, batch_size=0)
    with pytest.raises(ValueError, match="1x3xHxW"):
        occ.occluded_logits(shapes, torch.rand(2, 3, 64, 64), [(0, 0, 8, 8)], x)


def test_occlusion_maps_agree_on_the_shapes_net(shapes):
    torch.manual_seed(16)
    x = torch.rand(1, 3, 64, 64)
    for target in (2, ClassLogit(2)):
        with assert_restored(shapes):
            fast = occ.occlusion(shapes, x, target, patch=16, stride=8, fill="mean", batch_size=7)
        slow = occ.occlusion(shapes, x, target, patch=16, stride=8, fill="mean", batch_size=7, method="naive")
        assert fast.extra["method"] == "incremental"
        assert np.abs(fast.heat - slow.heat).max() <= 1e-5 * float(np.abs(slow.heat).max())


@pytest.mark.parametrize("fill", ["grey", "blur"])
def test_occlusion_methods_give_the_same_heatmap(alexnet, fill):
    """occlusion(method=...): 'auto' picks the incremental path on AlexNet, and its
    heatmap equals the naive one."""
    torch.manual_seed(17)
    x = torch.rand(1, 3, 224, 224)
    with assert_restored(alexnet):
        auto = occ.occlusion(alexnet, x, ClassLogit(3), patch=48, stride=44, fill=fill, batch_size=8)
    inc = occ.occlusion(alexnet, x, ClassLogit(3), patch=48, stride=44, fill=fill, method="incremental")
    naive = occ.occlusion(alexnet, x, ClassLogit(3), patch=48, stride=44, fill=fill, method="naive")
    scale = float(np.abs(naive.heat).max())
    assert np.ptp(naive.heat) > 1e-2  # the map is not flat
    assert auto.extra["method"] == "incremental"
    assert np.abs(auto.heat - naive.heat).max() <= 1e-5 * scale and np.abs(inc.heat - naive.heat).max() <= 1e-5 * scale


def test_whole_grid_with_merged_groups_matches_naive(alexnet):
    """A full 32/16 grid: the planner merges boxes of different changed-region sizes
    into padded groups (checked), and every logit still equals the naive forward."""
    torch.manual_seed(18)
    x = torch.rand(1, 3, 224, 224)
    fill = occ.fill_image(x, "grey", 32)
    starts = occ.positions(224, 32, 16)
    boxes = np.array([(t, l, t + 32, l + 32) for t in starts for l in starts])
    program = Program(alexnet, (224, 224))
    groups = program.groups(boxes)
    rows = program.axis_profiles(boxes[:, 0], boxes[:, 2], 0)
    cols = program.axis_profiles(boxes[:, 1], boxes[:, 3], 1)
    profiles = np.concatenate([rows, cols], axis=1)
    merged = [g for g in np.unique(groups) if len(np.unique(profiles[groups == g], axis=0)) > 1]
    assert merged, "expected some groups to mix profiles"
    assert 1 < len(np.unique(groups)) < len(np.unique(profiles, axis=0))
    with assert_restored(alexnet):
        got = occ.occluded_logits(alexnet, x, boxes, fill, batch_size=64)
    expected = occ.occluded_logits(alexnet, x, boxes, fill, method="naive")
    with torch.no_grad():
        _assert_agree(got, expected, alexnet(x), "alexnet grid")


def test_both_methods_clip_boxes_and_take_an_empty_list(alexnet, effnet):
    """A box partly outside the image covers its inside part on both paths."""
    torch.manual_seed(19)
    x = torch.rand(1, 3, 224, 224)
    fill = torch.full_like(x, 0.3)
    boxes = [(-8, -8, 24, 24), (200, 210, 240, 260)]
    inc = occ.occluded_logits(alexnet, x, boxes, fill, method="incremental")
    naive = occ.occluded_logits(alexnet, x, boxes, fill, method="naive")
    with torch.no_grad():
        _assert_agree(inc, naive, alexnet(x), "clipped")
    reference = _naive(alexnet, x, fill, [(0, 0, 24, 24), (200, 210, 224, 224)])
    assert torch.allclose(naive, reference, rtol=0, atol=1e-5 * float(reference.abs().max()))
    for net in (alexnet, effnet):
        for method in ("incremental", "naive"):
            assert occ.occluded_logits(net, x, [], fill, method=method).shape == (0, 1000)


def test_boxes_of_many_sizes_plan_quickly_and_agree(shapes):
    """Not a grid: 200 boxes of random sizes (more profiles than the DP takes) are
    grouped in even runs, fast, and still give the naive logits."""
    import time

    rng = np.random.default_rng(0)
    torch.manual_seed(20)
    x = torch.rand(1, 3, 64, 64)
    fill = torch.full_like(x, 0.5)
    tl = rng.integers(0, 60, size=(200, 2))
    hw = rng.integers(1, 40, size=(200, 2))
    boxes = np.concatenate([tl, np.minimum(tl + hw, 64)], axis=1)  # top, left, bottom, right
    program = Program(shapes, (64, 64))
    rows = program.axis_profiles(boxes[:, 0], boxes[:, 2], 0)
    assert len(np.unique(rows, axis=0)) > MAX_DP_PROFILES  # the even-runs path
    t = time.perf_counter()
    groups = program.groups(boxes)
    assert time.perf_counter() - t < 2.0 and len(groups) == len(boxes) and len(np.unique(groups)) <= 16 * 16
    got = occ.occluded_logits(shapes, x, boxes, fill, method="incremental")
    expected = occ.occluded_logits(shapes, x, boxes, fill, method="naive")
    with torch.no_grad():
        _assert_agree(got, expected, shapes(x), "random boxes")


def test_work_fraction_counts_the_changed_regions(effnet):
    """The MAC bound's arithmetic on EfficientNet-Lite0, checked against a count made
    independently: for one box, the changed region of every convolution's output is
    measured (where the occluded output differs from the clean one) and must lie inside
    the region the program charges for."""
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(22))
    box = (96, 64, 128, 96)
    occluded = occ.occluded_image(x, torch.full_like(x, 0.5), box)
    outputs = {"clean": [], "occluded": []}
    convs = [m for m in effnet.modules() if isinstance(m, nn.Conv2d)]
    key = ["clean"]
    hooks = [m.register_forward_hook(lambda _m, _i, o: outputs[key[0]].append(o)) for m in convs]
    try:
        with torch.no_grad():
            effnet(x)
            key[0] = "occluded"
            effnet(occluded)
    finally:
        for h in hooks:
            h.remove()
    program = Program(effnet, (224, 224))
    rows = program.axis_profiles(np.array([box[0]]), np.array([box[2]]), 0)[0, 1:]
    cols = program.axis_profiles(np.array([box[1]]), np.array([box[3]]), 1)[0, 1:]
    charged = dict(zip([op.module for op in program.windows], zip(rows, cols)))
    measured_any = False
    for m, a, b in zip(convs, outputs["clean"], outputs["occluded"]):
        diff = (a - b).abs().amax(dim=(0, 1)) > 0
        if m in charged and diff.any():
            measured_any = True
            ys, xs = torch.nonzero(diff, as_tuple=True)
            h, w = charged[m]
            assert int(ys.max() - ys.min()) + 1 <= h and int(xs.max() - xs.min()) + 1 <= w, m
    assert measured_any
    fraction = program.work_fraction(np.array([box]))
    assert 0 < fraction < 1


@pytest.mark.parametrize("act", [nn.ReLU(), nn.ReLU6(), None])
def test_fused_convolution_and_activation_equal_the_plain_ops(act):
    """`conv_act` runs ReLU/ReLU6 inside oneDNN's convolution where it can (channels-last
    CPU tensors) and falls back to conv2d + activation elsewhere: the same values."""
    from cnnviz_widgets.engine.attribution.occlusion.ops import conv_act

    g = torch.Generator().manual_seed(23)
    x = torch.randn(3, 8, 9, 11, generator=g) * 4
    for groups, w_shape in ((8, (8, 1, 3, 3)), (1, (5, 8, 1, 1)), (2, (6, 4, 5, 5))):
        w = torch.randn(*w_shape, generator=g)
        b = torch.randn(w_shape[0], generator=g)
        expected = nn.functional.conv2d(x, w, b, 2, 1, 1, groups)
        expected = act(expected) if act is not None else expected
        for layout in (torch.channels_last, torch.contiguous_format):
            got = conv_act(x.contiguous(memory_format=layout), (w.contiguous(memory_format=layout), b), (2, 2),
                           (1, 1), (1, 1), groups, act)
            assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max())), (groups, layout)
