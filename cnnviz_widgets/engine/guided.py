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

Also here: Adebayo et al. (2018)'s model-randomisation sanity check.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple, Sequence

import numpy as np
import torch
from torch import nn

from .models import Network, _lock_for
from .saliency import saliency, targets_for

__all__ = [
    "RULES",
    "backprop_rule",
    "guided_backprop",
    "guided_backprop_class",
    "GuidedResult",
    "top_positions",
    "NeuronPicture",
    "neuron_pictures",
    "randomisation_test",
    "RandomisationResult",
    "reinitialise",
    "layer_parameters",
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
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, not {rule!r}")
    handles = []

    def hook(module, inputs, _output):
        return _Rectifier.apply(inputs[0], _upper(module), rule)

    with _lock_for(net):  # the rule applies to this thread's passes only
        try:
            for m in net.modules():
                if isinstance(m, (nn.ReLU, nn.ReLU6)):
                    handles.append(m.register_forward_hook(hook))
            yield net
        finally:
            for h in handles:
                h.remove()


class GuidedResult(NamedTuple):
    """The gradient image (3 x H x W) and the neuron's (row, col), None for a vector layer."""

    gradient: torch.Tensor
    position: tuple[int, int] | None


def _one_image(net: Network, x) -> torch.Tensor:
    x = net.as_batch(x, what="guided backprop")
    if x.shape[0] != 1:
        raise ValueError(f"guided_backprop explains one image at a time, not {x.shape[0]}")
    return x


def _check_channel(layer: str, out: torch.Tensor, channel: int) -> None:
    n = out.shape[1]
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or not 0 <= int(channel) < n:
        raise ValueError(f"channel {channel!r} is out of range: layer {layer} has channels 0..{n - 1}")


def guided_backprop(net: Network, x, layer: str, channel: int, position: tuple[int, int] | None = None,
                    rule: str = "guided") -> GuidedResult:
    """The gradient image of one neuron of `layer`: its `channel` at `position`
    (default: where that channel is strongest in this image) under `rule`."""
    net.check_layer(layer)
    x = _one_image(net, x)
    with net.guard(), torch.enable_grad(), backprop_rule(net, rule):
        x = net.gradient_input(x)
        # forward_to's stop hook goes on after the rule hooks, so it sees the rule's output.
        out = net.forward_to(x, layer)
        _check_channel(layer, out, channel)
        if out.dim() == 4:
            if position is None:
                flat = int(out[0, channel].argmax())
                position = divmod(flat, out.shape[-1])
            r, c = (int(v) for v in position)
            if not (0 <= r < out.shape[2] and 0 <= c < out.shape[3]):
                raise ValueError(f"position {position} is outside layer {layer}'s {out.shape[2]}x{out.shape[3]} map")
            position = (r, c)
            neuron = out[0, channel, r, c]
        else:
            position = None
            neuron = out.reshape(1, -1)[0, channel]
        (grad,) = torch.autograd.grad(neuron, x)
    return GuidedResult(grad[0].detach().contiguous(), position)


def guided_backprop_class(net: Network, x, target, rule: str = "guided") -> torch.Tensor:
    """The gradient image of a class score (logit) under `rule`: N x 3 x H x W."""
    x = net.as_batch(x, what="guided backprop")
    targets = targets_for(net, target, x.shape[0])
    with net.guard(), torch.enable_grad(), backprop_rule(net, rule):
        x = net.gradient_input(x)
        score = net(x).gather(1, targets.view(-1, 1)).sum()
        (grad,) = torch.autograd.grad(score, x)
    return grad.detach().contiguous()


def top_positions(net: Network, x, layer: str, channel: int, k: int = 4) -> list[tuple[int, int, float]]:
    """The k strongest (row, col, activation) of a channel in this image, strongest first.
    A vector layer (fc) has one position: (0, 0)."""
    net.check_layer(layer)
    x = _one_image(net, x)
    with net.guard(), torch.no_grad():
        out = net.forward_to(x, layer)
    _check_channel(layer, out, channel)
    if out.dim() != 4:
        return [(0, 0, float(out.reshape(1, -1)[0, channel]))]
    fmap = out[0, channel]
    values, idx = fmap.flatten().topk(min(int(k), fmap.numel()))
    return [(int(i) // fmap.shape[1], int(i) % fmap.shape[1], float(v)) for v, i in zip(values, idx)]


class NeuronPicture(NamedTuple):
    """One activating position of a channel: where, how strongly, the receptive-field
    crop of the image (uint8, grey-padded at borders) and of the gradient image (3 x S x S
    float, zero-padded)."""

    position: tuple[int, int]
    activation: float
    crop: np.ndarray
    gradient: np.ndarray


def neuron_pictures(net: Network, x, layer: str, channel: int, k: int = 4, rule: str = "guided") -> list[NeuronPicture]:
    """For the k strongest positions of `channel` in this image, the gradient image of
    that neuron under `rule`, cut to its receptive field next to the image's crop
    (the crops reuse lesson 05's `patches.crop_patch` / `crop_pixels`)."""
    from .patches import crop_patch, crop_pixels

    x = _one_image(net, x)
    rf = net.receptive_field(layer)
    pictures = []
    for r, c, value in top_positions(net, x, layer, channel, k):
        grad = guided_backprop(net, x, layer, channel, position=None if rf.is_global else (r, c), rule=rule).gradient
        hwc = grad.permute(1, 2, 0).cpu().numpy()
        pictures.append(NeuronPicture((r, c), value, crop_patch(net, x, rf, r, c),
                                      crop_pixels(hwc, rf, r, c, fill=np.float32(0)).transpose(2, 0, 1)))
    return pictures


# --- the sanity check ----------------------------------------------------------------

def layer_parameters(net: Network) -> dict[str, list[nn.Module]]:
    """For each readable layer, the modules with parameters that run after the previous
    layer and up to it (so AlexNet's conv1 owns features.0, its ReLU having none)."""
    from .models import _executed_leaves

    owned, seen = {}, set()
    for layer in net.layers:
        leaves, _ = _executed_leaves(net, layer)
        mods = []
        for _name, m in leaves:
            if id(m) not in seen and any(True for _ in m.parameters(recurse=False)):
                mods.append(m)
            seen.add(id(m))
        owned[layer] = mods
    return owned


def reinitialise(modules: Sequence[nn.Module], generator: torch.Generator) -> None:
    """Replace every parameter by Gaussian noise with that tensor's own mean and spread:
    the layer forgets what it learnt but keeps its scale (activations neither vanish nor blow up)."""
    with torch.no_grad():
        for m in modules:
            for p in m.parameters(recurse=False):
                mean, std = p.mean(), (p.std() if p.numel() > 1 else p.abs().mean())
                noise = torch.randn(p.shape, generator=generator, dtype=p.dtype, device="cpu").to(p.device)
                p.copy_(mean + std * noise)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    rho = spearmanr(a.ravel(), b.ravel()).statistic
    return float(0.0 if np.isnan(rho) else rho)


def _as_map(m: torch.Tensor) -> np.ndarray:
    """Any method's output for one image -> H x W importance (|.| max over channels, as saliency)."""
    m = m.detach().float().cpu()
    if m.dim() == 4:
        m = m[0]
    if m.dim() == 3:
        m = m.abs().amax(0)
    return m.numpy()


METHODS: dict[str, Callable[[Network, torch.Tensor, int], torch.Tensor]] = {
    "saliency": lambda net, x, t: saliency(net, x, t),
    "guided": lambda net, x, t: guided_backprop_class(net, x, t, "guided"),
    "deconvnet": lambda net, x, t: guided_backprop_class(net, x, t, "deconvnet"),
}


@dataclass
class RandomisationResult:
    """stages[i] names the layers re-initialised so far ("original" first); for each
    method, its Spearman correlation with the original map at each stage, and the maps."""

    stages: list[str]
    correlations: dict[str, list[float]]
    maps: dict[str, list[np.ndarray]]


def randomisation_test(net: Network, x, target, methods: Sequence[str] | dict = ("saliency", "guided"),
                       layers_top_down: Sequence[str] | None = None, seed: int = 0) -> RandomisationResult:
    """Adebayo et al. (2018): re-initialise layers cumulatively from the top down on a COPY
    of the network and measure how much each method's map changes (Spearman rank
    correlation with the original map). A method that explains the model should change
    when the model is destroyed. `net` itself is never modified."""
    x = _one_image(net, x)
    target = net.class_index(target)
    chosen = {m: METHODS[m] for m in methods} if not isinstance(methods, dict) else dict(methods)
    for name in chosen:
        if not callable(chosen[name]):
            raise ValueError(f"method {name!r} is not callable")
    layers = list(layers_top_down) if layers_top_down is not None else list(reversed(net.layers))
    for layer in layers:
        net.check_layer(layer)
    probe = copy.deepcopy(net)
    owned = layer_parameters(probe)
    generator = torch.Generator().manual_seed(int(seed))
    maps = {name: [_as_map(fn(probe, x, target))] for name, fn in chosen.items()}
    stages = ["original"]
    for layer in layers:
        reinitialise(owned[layer], generator)
        stages.append(layer)
        for name, fn in chosen.items():
            maps[name].append(_as_map(fn(probe, x, target)))
    correlations = {name: [_spearman(ms[0], m) for m in ms] for name, ms in maps.items()}
    return RandomisationResult(stages, correlations, maps)
