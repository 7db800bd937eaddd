"""Guided backpropagation (Springenberg et al. 2015), the deconvnet (Zeiler & Fergus
2014) and plain gradients: one mechanism, three backward rules for the rectifiers.
Lesson ``08_guided_backprop``.

Inside ``with backprop_rule(net, rule):`` every rectifier the forward pass runs, as a
module or a functional call (``nn.ReLU``, ``F.relu``, ``nn.ReLU6``, also the ReLU6 that
timm's ``BatchNormAct2d`` applies, GELU, SiLU, Hardswish, ...), keeps its forward value
but gets a new backward:

* plain:     the true derivative (ReLU: pass where input > 0; ReLU6: 0 < input < 6)
* deconvnet: pass only where the incoming gradient > 0 (the input is ignored)
* guided:    both: where the true derivative passes AND the incoming gradient > 0;
  at a smooth rectifier (GELU, SiLU) the true slope f'(x) where x > 0 and the incoming
  gradient > 0, else 0 (`backprop_rule` says why)

It works by a PyTorch function mode that re-applies each rectifier through an autograd
Function with that backward; the mode ends with the block, also on error, and the model
is never touched. A network in which the rule meets no rectifier is refused with a
message, never given the plain gradient under the guided name.

`guided_backprop(net, image, target, rule=...)` is an attribution method like saliency
(an `Attribution`; any target, a `Neuron` included; SmoothGrad over it with
``attribution.smoothgrad(guided_backprop, ...)``); `neuron_gradient(net, image, layer,
channel)` is lesson 08's picture of one unit, at its strongest position by default.

Adebayo et al. (2018)'s model-randomisation sanity check of these maps is
`evaluation.scores.cascading_randomisation` (lesson 08 runs it).
"""

from __future__ import annotations

import inspect
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..core import checks
from ..core.network import Network, lock_for
from ..core.progress import Progress, StopCheck, run_to_end
from ..core.targets import Neuron, Target
from ..inspect.patches import crop_patch, crop_pixels
from .base import Attribution, batched_iter, input_gradient

__all__ = [
    "RULES",
    "RECTIFIERS",
    "backprop_rule",
    "rectifier_calls",
    "guided_backprop",
    "guided_backprop_iter",
    "neuron_gradient",
    "top_positions",
    "NeuronPicture",
    "neuron_pictures",
]

RULES = ("guided", "deconvnet", "plain")


class _Rectifier(torch.autograd.Function):
    """The rectifier's own forward value; the chosen rule backward, from the gate saved
    in the forward: f'(x) where x > 0 (a bool mask for ReLU and ReLU6), else 0."""

    @staticmethod
    def forward(ctx, x, compute, rule):
        value, gate = compute(x)
        ctx.rule = rule
        if rule == "guided":
            ctx.save_for_backward(gate)
        return value

    @staticmethod
    def backward(ctx, grad):
        if ctx.rule == "deconvnet":
            return grad.clamp_min(0), None, None
        (gate,) = ctx.saved_tensors
        return grad.clamp_min(0) * gate, None, None


def _inplace_off(fn, args, kwargs):
    """The call's arguments with `inplace` switched off (positional or keyword)."""
    kwargs = {k: v for k, v in kwargs.items() if k != "inplace"}
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # a builtin without a signature takes no inplace flag
        return args, kwargs
    if "inplace" in names and len(args) > names.index("inplace"):
        args = args[:names.index("inplace")]
    return args, kwargs


def _clamp_rule(upper):
    def compute(x):
        value = x.clamp(0, upper) if upper is not None else x.clamp_min(0)
        gate = (x > 0) & (x < upper) if upper is not None else x > 0
        return value, gate
    return compute


def _smooth_rule(fn, args, kwargs):
    """GELU, SiLU, Hardswish, Mish, ELU, LeakyReLU: the value and the derivative f'(x) by
    autograd on a detached copy (the function is elementwise), gated by x > 0."""
    args, kwargs = _inplace_off(fn, args, kwargs)

    def compute(x):
        with torch.enable_grad():
            xd = x.detach().requires_grad_(True)
            y = fn(xd, *args, **kwargs)
            (derivative,) = torch.autograd.grad(y.sum(), xd)
        return y.detach(), derivative * (x > 0)
    return compute


_RELUS = {F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_}
_SMOOTH = {F.gelu, F.silu, F.hardswish, F.mish, F.elu, F.leaky_relu, F.celu, F.selu}
#: The non-linearities the rules apply at, as modules or functional calls.
RECTIFIERS = ("ReLU", "ReLU6", "GELU", "SiLU (Swish)", "Hardswish", "Mish", "ELU", "CELU", "SELU", "LeakyReLU")


class _RuleMode(TorchFunctionMode):
    """Every rectifier call of the forward passes in the block goes through `_Rectifier`."""

    def __init__(self, rule: str):
        super().__init__()
        self.rule = rule
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        compute = None
        x = args[0] if args else kwargs.get("input")
        if isinstance(x, torch.Tensor) and x.is_floating_point():
            rest = args[1:]
            if func in _RELUS:
                compute = _clamp_rule(None)
            elif func is F.relu6:
                compute = _clamp_rule(6.0)
            elif func is F.hardtanh:
                low = rest[0] if rest else kwargs.get("min_val", -1.0)
                high = rest[1] if len(rest) > 1 else kwargs.get("max_val", 1.0)
                if low == 0:  # nn.ReLU6 is hardtanh(x, 0, 6); other clamps are not rectifiers
                    compute = _clamp_rule(float(high))
            elif func in _SMOOTH:
                compute = _smooth_rule(func, rest, {k: v for k, v in kwargs.items() if k != "input"})
        if compute is None:
            return func(*args, **kwargs)
        self.count += 1
        return _Rectifier.apply(x, compute, self.rule)


@contextmanager
def backprop_rule(net: nn.Module, rule: str = "guided") -> Iterator[nn.Module]:
    """Give every rectifier of `net`'s forward passes in the block the `rule` backward.

    The rectifiers are found as they run, modules and functional calls alike (``nn.ReLU``,
    ``F.relu``, timm's ``BatchNormAct2d`` ReLU6, ConvNeXt's GELU, MobileViT's SiLU, ...;
    `RECTIFIERS`), by a PyTorch function mode: nothing is hooked and the model is not
    touched. The rule at a rectifier f with input x and incoming gradient g:

    * plain:     f'(x) g, the true gradient (no rule is applied)
    * deconvnet: max(g, 0), the input ignored (Zeiler & Fergus 2014)
    * guided:    f'(x) max(g, 0) where x > 0, else 0. For ReLU (f' = 1 where x > 0) and
      ReLU6 this is Springenberg et al. 2015's rule exactly; for the smooth rectifiers
      (GELU, SiLU, ...) it keeps the rule's two gates (the unit fired, the signal is
      positive) and the true slope between them, so every guided signal stays >= 0 as
      with ReLU.

    Yields `net`. A forward pass outside the block is untouched; the mode is this
    thread's only. `guided_backprop` counts the rectifier calls the rule met, and refuses
    a network where it met none.
    """
    rule = checks.choice(rule, "rule", RULES)
    mode = _RuleMode(rule)
    with lock_for(net):  # the rule applies to this thread's passes only
        if rule == "plain":
            yield net
            return
        with mode:
            yield net
        _LAST.count = mode.count


_LAST = threading.local()


def rectifier_calls(net: nn.Module, x: torch.Tensor) -> int:
    """How many rectifier calls (`RECTIFIERS`, modules and functional alike) one forward
    pass of `x` through `net` makes: the places where guided backprop's rule applies."""
    mode = _RuleMode("guided")
    with lock_for(net), torch.no_grad(), mode:
        net(x)
    return mode.count


def _explain(net: Network, x: torch.Tensor, target: Target, rule: str = "guided") -> Attribution:
    with backprop_rule(net, rule):
        gradient = input_gradient(net, x, target)
    if rule != "plain" and not _LAST.count:
        raise ValueError(
            f"{rule} backprop met no rectifier ({', '.join(RECTIFIERS[:5])}, ...) between the image and the "
            f"target in {net.name}: its result would be the plain gradient under another name. Use "
            f"saliency(...) (or rule='plain') for this network")
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
