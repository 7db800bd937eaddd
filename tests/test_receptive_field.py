"""Receptive fields: the analytic `Network.receptive_field` against gradient probes.

The field depends on the architecture only, so untrained copies (of AlexNet, ResNet-18,
and of the shapes CNN for the box checks) serve as well as trained ones and need no
internet.
"""

from __future__ import annotations

import pytest
import torch

from cnnviz_widgets.engine.zoo import models
from cnnviz_widgets.engine.core.receptive_field import empirical_receptive_field, linearised_copy
from cnnviz_widgets.engine.zoo.shapes_net import build_shapes_net
from tests.conftest import make_random_alexnet
from tests.helpers import assert_restored


def make_untrained_shapes() -> models.Network:
    return models.build_network("shapes", build_shapes_net(pretrained=False))


def make_random_resnet18(seed: int = 0) -> models.Network:
    import torchvision

    torch.manual_seed(seed)
    m = torchvision.models.resnet18(weights=None)
    return models.build_network("resnet18", m)


def spatial_layers(net: models.Network) -> list[str]:
    return [l for l in net.layers if not net.receptive_field(l).is_global]


def probe_size(net: models.Network, layer: str) -> int:
    """An input large enough that the central unit's whole field lies inside it."""
    rf = net.receptive_field(layer)
    need = rf.size + 2 * rf.stride + 2 * int(abs(rf.offset)) + 2
    return max(net.input_size, -(-need // 32) * 32)


NETWORKS = {
    "shapes": lambda: models.load_model("shapes"),  # the shipped network
    "alexnet": make_random_alexnet,
    "resnet18": make_random_resnet18,
}


@pytest.fixture(scope="module", params=["shapes", "alexnet", "resnet18", "efficientnet_lite0"])
def any_net(request, effnet):
    return effnet if request.param == "efficientnet_lite0" else NETWORKS[request.param]()


def test_alexnet_fields_are_the_known_figures(random_alexnet):
    sizes = [random_alexnet.receptive_field(f"conv{i}").size for i in range(1, 6)]
    assert sizes == [11, 51, 99, 131, 163]
    assert [random_alexnet.receptive_field(f"conv{i}").stride for i in range(1, 6)] == [4, 8, 16, 16, 16]
    assert random_alexnet.receptive_field("fc6").is_global


def test_analytic_equals_empirical_for_every_spatial_layer(any_net):
    layers = spatial_layers(any_net)
    assert len(layers) >= 5
    for layer in layers:
        rf = any_net.receptive_field(layer)
        s = probe_size(any_net, layer)
        measured = empirical_receptive_field(any_net, layer, image_size=s)
        assert measured == (rf.size, rf.size), f"{any_net.name} {layer}: analytic {rf.size}, measured {measured} at {s} px"
        assert measured[0] < s, "the probe touched both borders: the measurement was clipped"


def test_fields_grow_layer_by_layer(any_net):
    sizes = [any_net.receptive_field(l).size for l in spatial_layers(any_net)]
    assert all(b >= a for a, b in zip(sizes, sizes[1:])), sizes
    assert sizes[-1] > 5 * sizes[0]
    if any_net.name in ("shapes", "alexnet"):  # every conv layer adds to the field
        assert all(b > a for a, b in zip(sizes, sizes[1:])), sizes


def _gradient_support(model: torch.nn.Module, path: str, size: int, row: int, col: int, pre=None) -> torch.Tensor:
    """Pixels whose change moves unit (row, col) of the module at `path` (summed over channels)."""
    x = torch.rand(1, 3, size, size, requires_grad=True)
    box = {}
    handle = dict(model.named_modules())[path].register_forward_hook(lambda m, i, o: box.setdefault("out", o))
    try:
        try:
            model(pre(x) if pre else x)
        except Exception:
            if "out" not in box:
                raise
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(box["out"][0, :, row, col].sum(), x)
    return grad[0].abs().sum(0) > 0


def _bounds(support: torch.Tensor) -> tuple[int, int, int, int]:
    rows = torch.nonzero(support.any(1)).flatten()
    cols = torch.nonzero(support.any(0)).flatten()
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


@pytest.mark.parametrize("make,layer,units", [
    (make_random_alexnet, "conv3", [(2, 9), (12, 0), (5, 5)]),
    (make_random_alexnet, "conv5", [(1, 11)]),
    (make_untrained_shapes, "conv2", [(0, 3), (10, 5)]),
    (make_untrained_shapes, "conv5", [(1, 5)]),
    (make_random_resnet18, "layer2.1", [(3, 20)]),
])
def test_box_is_where_the_unit_looks(make, layer, units):
    net = make()
    rf = net.receptive_field(layer)
    s = net.input_size
    path = net.layer_path(layer)
    # On the linearised copy the gradient reaches exactly the field (clipped to the image).
    probe = linearised_copy(net.model)
    for row, col in units:
        top, left, bottom, right = rf.box(row, col)
        clipped = (max(top, 0), max(left, 0), min(bottom, s), min(right, s))
        assert _bounds(_gradient_support(probe, path, s, row, col)) == clipped, (layer, row, col)
    # The real network (ReLUs, max-pools) sees a subset of it, never more.
    with assert_restored(net):
        with net.guard():
            for row, col in units:
                support = _gradient_support(net, "model." + path, s, row, col)
                if support.any():
                    t, l, b, r = _bounds(support)
                    top, left, bottom, right = rf.box(row, col)
                    assert top <= t and left <= l and b <= bottom and r <= right, (layer, row, col)
