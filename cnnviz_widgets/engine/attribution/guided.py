"""Guided backpropagation (Springenberg et al. 2015), the deconvnet (Zeiler & Fergus
2014) and plain gradients: one mechanism, three backward rules for the rectifiers.
Lesson ``08_guided_backprop``.

Inside ``with backprop_rule(net, rule):`` every ``nn.ReLU`` and ``nn.ReLU6`` (also the
ReLU6 that timm's ``BatchNormAct2d`` applies as its ``act`` module) keeps its forward
value but gets a new backward:

* plain:     the true derivative (ReLU: pass where input > 0; ReLU6: 0 < input < 6)
* deconvnet: pass only where the incoming gradient > 0 (the input is ignored)
* guided:    both: where the true derivative passes AND the incoming gradient > 0

It works by a forward hook on each rectifier that re-applies it through an autograd
Function with that backward; the hooks are removed when the block ends, also on error.

`guided_backprop(net, image, target, rule=...)` is an attribution method like saliency
(an `Attribution`; any target, a `Neuron` included; SmoothGrad over it with
``attribution.smoothgrad(guided_backprop, ...)``); `neuron_gradient(net, image, layer,
channel)` is lesson 08's picture of one unit, at its strongest position by default.

Adebayo et al. (2018)'s model-randomisation sanity check of these maps is
`evaluation.scores.cascading_randomisation` (lesson 08 runs it).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from ..core import checks
from ..core.network import Network, lock_for
from ..core.progress import Progress, StopCheck, run_to_end
from ..core.targets import Neuron, Target
from ..inspect.patches import crop_patch, crop_pixels
from .base import Attribution, batched_iter, input_gradient

__all__ = [
    "RULES",
    "backprop_rule",
    "guided_backprop",
    "guided_backprop_iter",
    "neuron_gradient",
    "top_positions",
    "NeuronPicture",
    "neuron_pictures",
]

RULES = ("guided", "deconvnet", "plain")


class _Rectifier(torch.autograd.Function):
    """clamp(x, 0, upper) forward; the chosen rule backward."""

    @staticmethod
    def forward(ctx, x, upper, rule):
        ctx.save_for_backward(x)
        ctx.upper, ctx.rule = upper, rule
        return x.clamp(0, upper) if upper is not None else x.clamp_min(0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if ctx.rule == "deconvnet":
            return grad.clamp_min(0), None, None
        passes = x > 0
        if ctx.upper is not None:
            passes = passes & (x < ctx.upper)  # ReLU6 is flat above 6 too
        g = grad * passes
        if ctx.rule == "guided":
            g = g.clamp_min(0)
        return g, None, None


def _upper(module: nn.Module) -> float | None:
    if isinstance(module, nn.ReLU6):
        return 6.0
    return None


@contextmanager
def backprop_rule(net: nn.Module, rule: str = "guided") -> Iterator[nn.Module]:
    """Give every ReLU / ReLU6 module of `net` the `rule` backward inside the block."""
    rule = checks.choice(rule, "rule", RULES)
    handles = []

    def hook(module, inputs, _output):
        return _Rectifier.apply(inputs[0], _upper(module), rule)

    with lock_for(net):  # the rule applies to this thread's passes only
        try:
            for m in net.modules():
                if isinstance(m, (nn.ReLU, nn.ReLU6)):
                    handles.append(m.register_forward_hook(hook))
            yield net
        finally:
            for h in handles:
                h.remove()


def _explain(net: Network, x: torch.Tensor, target: Target, rule: str = "guided") -> Attribution:
    # The rule's hooks go on before forward_to's stop hook, so the target sees the rule's output.
    with backprop_rule(net, rule):
        gradient = input_gradient(net, x, target)
    return Attribution(map=gradient.abs().amax(dim=1).cpu(), per_channel=gradient.cpu(),
                       method="guided backprop" if rule == "guided" else rule, extra={"rule": rule})


def guided_backprop_iter(net: Network, image, target: Any, *, rule: str = "guided", batch_size: int | None = None,
                         should_stop: StopCheck = None) -> Iterator[Progress[Attribution]]:
    """`guided_backprop`, `batch_size` images at a time, yielding `Progress` after each batch."""
    return batched_iter(_explain, net, image, target, batch_size=batch_size, should_stop=should_stop,
                        what="guided backprop", rule=checks.choice(rule, "rule", RULES))


def guided_backprop(net: Network, image, target: Any, *, rule: str = "guided", batch_size: int | None = None) -> Attribution:
    """The gradient image of `target` under `rule`: a class score (index, name, one per
    image) or any `Target`, e.g. ``Neuron("conv5", 3, (6, 6))`` for one unit.
    ``.per_channel`` is the gradient image N x 3 x H x W; ``.map`` its max |.| over colours."""
    return run_to_end(guided_backprop_iter(net, image, target, rule=rule, batch_size=batch_size))


def _strongest(net: Network, x: torch.Tensor, layer: str, channel: int, k: int) -> list[tuple[int, int, float]]:
    with net.guard(), torch.no_grad():
        out = net.forward_to(x, layer)
    checks.channel(net, layer, channel, channels=out.shape[1])
    if out.dim() != 4:
        return [(0, 0, float(out.reshape(1, -1)[0, channel]))]
    fmap = out[0, channel]
    values, idx = fmap.flatten().topk(min(k, fmap.numel()))
    return [(int(i) // fmap.shape[1], int(i) % fmap.shape[1], float(v)) for v, i in zip(values, idx)]


def neuron_gradient(net: Network, image, layer: str, channel: int, *, position: tuple[int, int] | None = None,
                    rule: str = "guided") -> Attribution:
    """The gradient image of one neuron of `layer` for one image: its `channel` at
    `position` (default: where that channel is strongest in this image) under `rule`.
    ``.extra``: ``layer``, ``channel`` and ``position`` ((row, col); None for a vector layer)."""
    layer = checks.layer(net, layer)
    x = net.as_batch(image, single=True, what="neuron_gradient")
    with net.guard(), torch.no_grad():
        out = net.forward_to(x, layer)
    channel = checks.channel(net, layer, channel, channels=out.shape[1])
    if out.dim() != 4:
        position = None
    elif position is None:
        position = divmod(int(out[0, channel].argmax()), out.shape[-1])
    else:
        position = checks.position(position, tuple(out.shape[2:]))
    result = guided_backprop(net, x, Neuron(layer, channel, position), rule=rule)
    result.extra.update(layer=layer, channel=channel, position=position)
    return result


def top_positions(net: Network, image, layer: str, channel: int, *, k: int = 4) -> list[tuple[int, int, float]]:
    """The k strongest (row, col, activation) of a channel in this image, strongest first.
    A vector layer (fc) has one position: (0, 0)."""
    layer = checks.layer(net, layer)
    x = net.as_batch(image, single=True, what="top_positions")
    return _strongest(net, x, layer, channel, checks.integer(k, "k", low=1))


@dataclass
class NeuronPicture:
    """One activating position of a channel: where (`position`: row, col), how strongly
    (`activation`), the receptive-field `crop` of the image (uint8 S x S x 3, grey-padded at borders, as
    `patches.crop_patch` gives) and of the `gradient` image (3 x S x S float on the CPU,
    zero-padded)."""

    position: tuple[int, int]
    activation: float
    crop: np.ndarray
    gradient: torch.Tensor


def neuron_pictures(net: Network, image, layer: str, channel: int, *, k: int = 4,
                    rule: str = "guided") -> list[NeuronPicture]:
    """For the k strongest positions of `channel` in this image, the gradient image of
    that neuron under `rule`, cut to its receptive field next to the image's crop
    (the crops reuse lesson 05's `patches.crop_patch` / `crop_pixels`)."""
    x = net.as_batch(image, single=True, what="neuron_pictures")
    rf = net.receptive_field(layer)
    pictures = []
    for r, c, value in top_positions(net, x, layer, channel, k=k):
        grad = neuron_gradient(net, x, layer, channel, position=None if rf.is_global else (r, c),
                               rule=rule).per_channel[0]
        hwc = grad.permute(1, 2, 0).numpy()
        cut = crop_pixels(hwc, rf, r, c, fill=np.float32(0)).transpose(2, 0, 1)
        pictures.append(NeuronPicture((r, c), value, crop_patch(net, x, rf, r, c), torch.from_numpy(cut.copy())))
    return pictures
