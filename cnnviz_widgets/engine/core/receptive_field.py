"""Receptive fields: where a unit of a layer looks in the input.

`analytic_receptive_field` composes the convolutions and poolings that run up to a
layer (`Network.executed_leaves`); `empirical_receptive_field` measures the field with
a gradient probe on a linearised copy of the network (`linearised_copy`), which the
tests hold the analytic one to. `Network.receptive_field(layer)` caches the analytic
field. Lessons 05 and 08 crop patches with `ReceptiveField.box`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["ReceptiveField", "analytic_receptive_field", "empirical_receptive_field", "linearised_copy"]


@dataclass(frozen=True)
class ReceptiveField:
    """Where one unit of a layer looks in the input, in input pixels.

    The unit at output position (row, col) sees the square of side `size` centred
    on ``(offset + row * stride, offset + col * stride)``. Global layers (after
    pooling to a vector) see the whole image: `is_global` is True.
    """

    size: int
    stride: int
    offset: float
    is_global: bool = False

    def center(self, row: int, col: int) -> tuple[float, float]:
        return (self.offset + row * self.stride, self.offset + col * self.stride)

    def box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right), bottom/right exclusive; may leave the image."""
        cy, cx = self.center(row, col)
        half = (self.size - 1) / 2
        top, left = int(round(cy - half)), int(round(cx - half))
        return top, left, top + self.size, left + self.size


def _pair(v) -> int:
    return int(v[0] if isinstance(v, (tuple, list)) else v)


def analytic_receptive_field(net, layer: str) -> ReceptiveField:
    """Size, stride and offset of `layer`'s units: the convolutions and poolings executed
    up to the layer, composed in order (residual shortcuts and `downsample` branches do
    not widen the field and are skipped)."""
    leaves, is_global = net.executed_leaves(layer)
    size, jump, start = 1, 1, 0.0
    for name, m in leaves:
        if "downsample" in name.split("."):
            continue  # a shortcut branch: parallel to the main path
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k, s = _pair(m.kernel_size), _pair(m.stride)
            p, d = _pair(m.padding), _pair(getattr(m, "dilation", 1))
            start += ((k - 1) * d / 2 - p) * jump
            size += (k - 1) * d * jump
            jump *= s
        elif isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Linear)) or type(m).__name__ == "SelectAdaptivePool2d":
            is_global = True
    if is_global:
        return ReceptiveField(size=net.input_size, stride=net.input_size, offset=(net.input_size - 1) / 2, is_global=True)
    return ReceptiveField(size=size, stride=jump, offset=start)


def empirical_receptive_field(net, layer: str, image_size: int | None = None) -> tuple[int, int]:
    """Measure the receptive field with a gradient probe: (height, width) in pixels.

    On a copy of the network whose convolutions are all-ones, activations and norms
    are identities and max-pools are average-pools, the gradient of one central unit
    reaches exactly the pixels that unit can see; its support is the field.
    """
    probe = linearised_copy(net.model).cpu().float()
    s = image_size or net.input_size
    x = torch.zeros(1, 3, s, s, requires_grad=True)
    out_holder = {}
    module = dict(probe.named_modules())[net.layer_path(layer)]
    handle = module.register_forward_hook(lambda m, i, o: out_holder.setdefault("out", o))
    try:
        try:
            probe(x)
        except Exception:
            if "out" not in out_holder:
                raise
    finally:
        handle.remove()
    out = out_holder["out"]
    if out.dim() == 4:
        unit = out[0, :, out.shape[2] // 2, out.shape[3] // 2].sum()
    else:
        unit = out.reshape(1, -1)[0].sum()
    (grad,) = torch.autograd.grad(unit, x)
    support = grad[0].abs().sum(0) > 0
    rows = torch.nonzero(support.any(1)).flatten()
    cols = torch.nonzero(support.any(0)).flatten()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def linearised_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` whose convolutions and linear layers are all-ones, activations,
    norms and dropout identities, and max-pools average-pools: the gradient of a unit
    reaches exactly the pixels the unit can see. `model` itself is not changed."""
    model = copy.deepcopy(model)
    for name, m in list(model.named_modules()):
        for child_name, child in list(m.named_children()):
            kind = type(child).__name__
            if isinstance(child, nn.MaxPool2d):
                setattr(m, child_name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding, ceil_mode=child.ceil_mode))
            elif isinstance(child, (nn.ReLU, nn.ReLU6, nn.Dropout, nn.BatchNorm2d)) or kind in ("BatchNormAct2d",):
                setattr(m, child_name, nn.Identity())
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.fill_(1.0)
                if m.bias is not None:
                    m.bias.zero_()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
