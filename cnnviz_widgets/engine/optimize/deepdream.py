"""DeepDream: amplify what a layer already sees in a photo.

Lesson `notebooks/11_deepdream.ipynb`. Mordvintsev, Olah & Tyka 2015 ("Inceptionism:
Going Deeper into Neural Networks", Google Research blog): maximise the L2 norm of a
layer's activations, starting from the photo, with gradient steps normalised by
their mean absolute value, a random jitter at each step, and octaves: dream on a
small copy first, then carry the added detail up to the next scale, so patterns
grow at several sizes. Each octave is one run of the shared loop
(``optimizer="normalized"``, `Jitter`, `activation_norm`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import torch
import torch.nn.functional as F

from ..core import checks
from ..core.progress import Progress, StopCheck, run_to_end
from . import Jitter, OptimizeResult, PixelParam
from . import objectives as O
from . import optimize_iter

__all__ = ["DreamResult", "deepdream_iter", "deepdream", "activation_energy", "octave_sizes"]


@dataclass(kw_only=True)
class DreamResult(OptimizeResult):
    """An `OptimizeResult` (`image`: the dream so far) and:

    layer: the layer dreamt at; original: the photo at the dream's size (CPU).
    octave: the octave running (1-based; the last one when done); octaves: how many.
    dreams: the finished image of each octave so far, smallest first (CPU).
    energy: per finished octave, the layer's mean squared activation (before, after)
        at that octave's scale.
    """

    layer: str
    original: torch.Tensor
    octave: int
    octaves: int
    dreams: list[torch.Tensor] = field(default_factory=list)
    energy: list[tuple[float, float]] = field(default_factory=list)


def activation_energy(net, image: torch.Tensor, layer: str) -> float:
    """Mean squared activation of `layer` for `image` (what DeepDream raises)."""
    # an octave's copy may be smaller than a map at the last spatial layer needs; this reads `layer`
    x = net.as_batch(image, what="activation_energy", map_size=False)
    with torch.no_grad(), net.guard():
        return float(net.forward_to(x, checks.layer(net, layer)).pow(2).mean())


def octave_sizes(height: int, width: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """Image sizes from the smallest octave to the full size."""
    return [(max(16, round(height / scale ** i)), max(16, round(width / scale ** i)))
            for i in reversed(range(octaves))]


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return x if tuple(x.shape[-2:]) == size else F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def deepdream_iter(net, image, layer: str, *, octaves: int = 3, octave_scale: float = 1.4, steps: int = 10,
                   step_size: float = 0.01, jitter: int = 8, size: int | None = None, every: int = 1,
                   seed: int = 0, should_stop: StopCheck = None) -> Iterator[Progress[DreamResult]]:
    """Dream on `image` (PIL, array or [0, 1] tensor) at `layer`; yield `Progress`.

    steps: steps per octave (the run takes ``octaves * steps``); `step_size`: the mean
    change of a pixel per step ([0, 1] scale: 0.01 is 2.5 levels); size: dream at
    size x size pixels (default: the model's input size). Checks its settings at once.
    """
    layer = checks.layer(net, layer)
    octaves = checks.integer(octaves, "octaves", low=1)
    octave_scale = checks.number(octave_scale, "octave_scale", low=1.0, low_open=True)
    steps = checks.integer(steps, "steps", low=0)
    step_size = checks.number(step_size, "step_size", low=0.0, low_open=True)
    jitter = checks.integer(jitter, "jitter", low=0)
    every = checks.integer(every, "every", low=1)
    seed = checks.integer(seed, "seed")
    x = checks.pixels(net.as_batch(image, single=True, size=size, what="DeepDream"), "image")
    return _dream(net, x, layer, octaves, octave_scale, steps, step_size, jitter, every, seed, should_stop)


def _dream(net, x, layer, octaves, octave_scale, steps, step_size, jitter, every, seed,
           should_stop) -> Iterator[Progress[DreamResult]]:
    sizes = octave_sizes(x.shape[-2], x.shape[-1], octaves, octave_scale)
    objective = O.activation_norm(layer)
    total = octaves * steps
    original = x.detach().cpu()
    dreams: list[torch.Tensor] = []
    energy: list[tuple[float, float]] = []
    detail = torch.zeros_like(_resize(x, sizes[0]))

    def report(p: Progress, o: int, ended: str) -> Progress[DreamResult]:
        r = p.result
        result = DreamResult(image=r.image, losses=r.losses, steps_taken=o * steps + r.steps_taken, ended=ended,
                             layer=layer, original=original, octave=o + 1, octaves=octaves, dreams=list(dreams),
                             energy=list(energy))
        return Progress(o * steps + p.step, total, result, done=bool(ended))

    for o, shape in enumerate(sizes):
        base = _resize(x, shape)
        start = (base + _resize(detail, shape)).clamp(0, 1)
        before = activation_energy(net, start, layer)
        last = None
        for last in optimize_iter(net, objective, PixelParam(start), steps=steps, step_size=step_size,
                                  optimizer="normalized", transforms=[Jitter(jitter)], every=every,
                                  seed=seed + o, should_stop=should_stop):
            if last.result.ended == "stopped":
                dreams.append(last.result.image)
                yield report(last, o, "stopped")
                return
            if not last.done:
                yield report(last, o, "")
        dream = last.result.image.to(x.device)
        energy.append((before, activation_energy(net, dream, layer)))
        dreams.append(last.result.image)
        detail = dream - base  # what the dream added, carried up to the next scale
        yield report(last, o, "done" if o == octaves - 1 else "")


def deepdream(net, image, layer: str, *, octaves: int = 3, octave_scale: float = 1.4, steps: int = 10,
              step_size: float = 0.01, jitter: int = 8, size: int | None = None, every: int = 1,
              seed: int = 0) -> DreamResult:
    """`deepdream_iter` run to the end: ``.image`` is the dream, ``.dreams`` one per octave."""
    return run_to_end(deepdream_iter(net, image, layer, octaves=octaves, octave_scale=octave_scale, steps=steps,
                                     step_size=step_size, jitter=jitter, size=size, every=every, seed=seed))
