"""First-layer filters: a convolution's weights drawn as pictures (lesson 01).

The first convolution of a network looks straight at RGB pixels, so each of its
filters (3 x k x k) can be drawn as a small colour image: the lecture's AlexNet
conv1 grid of 64 filters of 11 x 11, full of oriented edges and colour blobs.
A deeper filter looks at the previous layer's feature maps instead (Cin x k x k),
so it can only be drawn as Cin grey kernels, and those say little by themselves.

Weights are signed: they are drawn with 0 as mid-grey, so a filter's positive
and negative lobes look like light and dark (or like a colour and its opposite).

Lesson notebook: ``notebooks/01_first_layer_filters.ipynb``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..core import checks
from ..core.network import Network
from ..zoo.shapes_net import SNAPSHOTS_PATH, filter_smoothness, load_conv1_snapshots

__all__ = [
    "Filters",
    "conv_layers",
    "conv_module",
    "first_layer_filters",
    "deeper_filters",
    "filter_snapshots",
    "filter_smoothness",
    "NORMALIZATIONS",
]

NORMALIZATIONS = ("per_filter", "global")


@dataclass
class Filters:
    """The weights of one convolution, as pictures are drawn from them.

    weights: a detached CPU copy, Cout x 3 x k x k for the first convolution (one RGB
        image per filter), Cin x k x k for one filter of a deeper one (one grey kernel
        per input channel); module: the convolution's path in ``net.model``.
    """

    weights: torch.Tensor
    module: str


def conv_layers(net: Network) -> list[str]:
    """Module paths of the network's convolutions, in the order they are defined."""
    return [name for name, m in net.model.named_modules() if isinstance(m, nn.Conv2d)]


def _first_conv(net: Network) -> tuple[str, nn.Conv2d]:
    for name, m in checks.network(net, "first_layer_filters").model.named_modules():
        if isinstance(m, nn.Conv2d) and m.in_channels == 3 and m.groups == 1:
            return name, m
    raise ValueError(f"{net.name} has no convolution that reads the RGB image")


def first_layer_filters(net: Network) -> Filters:
    """The weights of the convolution that reads the RGB pixels: ``.weights`` Cout x 3 x k x k.

    AlexNet-shaped nets (``shapes``, ``alexnet``): conv1; ``efficientnet_lite0``:
    its 3 x 3 stem. A detached CPU copy, so drawing it can never touch the model
    (on a `models.architecture` network, a meta tensor: its shape only).
    """
    name, conv = _first_conv(net)
    weight = conv.weight.detach()
    return Filters(weight if weight.is_meta else weight.float().cpu().clone(), name)


def conv_module(net: Network, layer_or_conv_index: str | int) -> tuple[str, nn.Conv2d]:
    """(module path, convolution), by readable layer name (the last conv that runs before that
    layer's output is ready) or by its index in `conv_layers(net)`."""
    convs = conv_layers(net)
    modules = dict(net.model.named_modules())
    if checks.is_integer(layer_or_conv_index):
        i = checks.index(layer_or_conv_index, "conv index", len(convs), f"{net.name} has convolutions")
        return convs[i], modules[convs[i]]
    layer = checks.layer(net, layer_or_conv_index)
    path = net.layer_path(layer)
    order = [name for name, _ in net.model.named_modules()]
    # The layer's output exists once its last sub-module has run.
    end = max(i for i, name in enumerate(order) if name == path or name.startswith(path + "."))
    before = [name for name in convs if order.index(name) <= end]
    if not before:
        raise ValueError(f"{net.name}: no convolution runs before layer {layer!r}.")
    return before[-1], modules[before[-1]]


def deeper_filters(net: Network, layer: str | int, channel: int) -> Filters:
    """Filter `channel` of any convolution, as its Cin x k x k kernels (one per input
    channel): ``.weights``.

    `layer` is a readable layer name (``"conv2"``: the convolution that feeds it) or an
    index into `conv_layers(net)`. Grouped convolutions (EfficientNet's depthwise ones)
    give Cin/groups kernels.
    """
    name, conv = conv_module(net, layer)
    where = layer if isinstance(layer, str) else name
    channel = checks.channel(None, where, channel, channels=conv.out_channels)
    return Filters(conv.weight[channel].detach().float().cpu().clone(), name)


# --- drawing ---------------------------------------------------------------------------


def filter_snapshots(path=None) -> list[tuple[int, torch.Tensor]]:
    """The ``shapes`` network's conv1 during training: [(step, 32 x 3 x 9 x 9 weights)].

    The first is the random initialisation, the last the shipped filters.
    """
    path = path or SNAPSHOTS_PATH
    try:
        snaps = load_conv1_snapshots(path)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"the conv1 training snapshots are missing ({path}); "
            "recreate them with `python -m cnnviz_widgets.engine.zoo.train_shapes`."
        ) from None
    return [(s["step"], s["weight"]) for s in snaps]
