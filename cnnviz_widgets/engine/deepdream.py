"""DeepDream: amplify what a layer already sees in a photo.

Lesson `notebooks/11_deepdream.ipynb`. Mordvintsev, Olah & Tyka 2015: maximise the
L2 norm of a layer's activations, starting from the photo, with gradient steps
normalised by their mean absolute value, a random jitter at each step, and
octaves: dream on a small copy first, then carry the added detail up to the next
scale, so patterns grow at several sizes. Each octave is one run of the shared
loop (``optimizer="normalized"``, `Jitter`, `activation_norm`).
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F

from . import objectives as O
from .optimize import Jitter, PixelParam, Progress, optimize_iter, start_image

__all__ = ["deepdream_iter", "deepdream", "activation_energy", "octave_sizes"]


def activation_energy(net, x: torch.Tensor, layer: str) -> float:
    """Mean squared activation of `layer` for image `x` (what DeepDream raises)."""
    with torch.no_grad(), net.guard():
        return float(net.forward_to(x, layer).pow(2).mean())


def octave_sizes(height: int, width: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """Image sizes from the smallest octave to the full size."""
    return [(max(16, round(height / scale ** i)), max(16, round(width / scale ** i)))
            for i in reversed(range(octaves))]


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return x if tuple(x.shape[-2:]) == size else F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def deepdream_iter(net, image, layer: str, octaves: int = 3, octave_scale: float = 1.4,
                   steps_per_octave: int = 10, step_size: float = 0.01, jitter: int = 8,
                   size: int | None = None, every: int = 1, seed: int = 0,
                   should_stop=None) -> Iterator[Progress]:
    """Dream on `image` (PIL, array or 1x3xHxW tensor) at `layer`; yield `Progress`.

    `step_size` is the mean change of a pixel per step ([0, 1] scale: 0.01 is 2.5
    levels). Each progress carries ``info``: ``octave`` (1-based), ``octaves``,
    ``dreams`` (the finished image of each octave so far) and ``energy`` (per
    finished octave, the layer's mean squared activation before and after, at that
    octave's scale).
    """
    net.check_layer(layer)
    if isinstance(octaves, bool) or not isinstance(octaves, int) or octaves < 1:
        raise ValueError(f"octaves must be a whole number >= 1, not {octaves!r}")
    if not octave_scale > 1:
        raise ValueError(f"octave scale must be > 1 (each octave larger than the last), not {octave_scale}")
    if not step_size > 0:
        raise ValueError(f"the step size must be > 0, not {step_size}")
    if isinstance(steps_per_octave, bool) or not isinstance(steps_per_octave, int) or steps_per_octave < 0:
        raise ValueError(f"steps per octave must be a whole number >= 0, not {steps_per_octave!r}")
    x = start_image(net, image, size)
    sizes = octave_sizes(x.shape[-2], x.shape[-1], octaves, octave_scale)
    objective = O.activation_norm(layer)
    total = octaves * steps_per_octave
    dreams: list[torch.Tensor] = []
    energy: list[tuple[float, float]] = []
    detail = torch.zeros_like(_resize(x, sizes[0]))
    for o, shape in enumerate(sizes):
        base = _resize(x, shape)
        start = (base + _resize(detail, shape)).clamp(0, 1)
        before = activation_energy(net, start, layer)
        param = PixelParam(start)
        last = None
        for last in optimize_iter(net, objective, param, steps=steps_per_octave, lr=step_size,
                                  optimizer="normalized", transforms=[Jitter(jitter)], every=every,
                                  seed=seed + o, should_stop=should_stop):
            if last.ended == "stopped":
                break
            if last.ended == "done":
                continue  # reported below, with the octave's energy
            yield _octave_progress(last, o, octaves, steps_per_octave, total, dreams, energy)
        dream = param.image().detach().clone()
        if last is not None and last.ended == "stopped":
            dreams.append(dream)
            p = _octave_progress(last, o, octaves, steps_per_octave, total, dreams, energy)
            p.ended = "stopped"
            yield p
            return
        energy.append((before, activation_energy(net, dream, layer)))
        dreams.append(dream)
        detail = dream - base  # what the dream added, carried up to the next scale
        p = _octave_progress(last, o, octaves, steps_per_octave, total, dreams, energy)
        p.ended = "done" if o == octaves - 1 else ""
        yield p


def _octave_progress(p: Progress, o, octaves, per, total, dreams, energy) -> Progress:
    return Progress(o * per + p.step, total, p.losses, p.image, "",
                    {"octave": o + 1, "octaves": octaves, "dreams": list(dreams), "energy": list(energy)})


def deepdream(net, image, layer: str, **kwargs) -> Progress:
    """`deepdream_iter` run to the end: ``.image`` is the dream, ``.info`` as there."""
    last = None
    for last in deepdream_iter(net, image, layer, **kwargs):
        pass
    return last
