"""Transforms: random changes applied to the image before each forward pass.

A transform is ``t(image, generator) -> image``, drawing its randomness from the
loop's own seeded `torch.Generator` (never the global RNG, so one lesson's
randomness never leaks into another's), as in Lucent's ``transform`` module. An
image that stays good when shifted, scaled and turned a little cannot be made of
single-pixel tricks: the transforms regularise without a penalty term.

`Jitter` comes from DeepDream (Mordvintsev, Olah & Tyka 2015, "Inceptionism: Going
Deeper into Neural Networks"); `RandomScale` and `RandomRotate` from Lucid
(Olah, Mordvintsev & Schubert 2017, "Feature Visualization", Distill).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from .. import checks

__all__ = ["Jitter", "RandomScale", "RandomRotate"]


class Jitter:
    """Shift the image by up to `pixels` in each direction (a circular roll, as the
    original DeepDream does: no border to learn from)."""

    def __init__(self, pixels: int = 4):
        self.pixels = checks.integer(pixels, "jitter", low=0)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.pixels == 0:
            return x
        dy, dx = (torch.randint(-self.pixels, self.pixels + 1, (2,), generator=gen)).tolist()
        return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


class RandomScale:
    """Rescale by a factor drawn uniformly from `scales` (bilinear)."""

    def __init__(self, scales: Sequence[float] = (0.95, 1.05)):
        lo, hi = (checks.number(s, "scale", low=0.0, low_open=True) for s in (min(scales), max(scales)))
        self.lo, self.hi = lo, hi

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        s = self.lo + (self.hi - self.lo) * float(torch.rand((), generator=gen))
        h, w = x.shape[-2:]
        size = (max(8, int(round(h * s))), max(8, int(round(w * s))))
        if size == (h, w):
            return x
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class RandomRotate:
    """Rotate by an angle drawn uniformly from [-degrees, degrees] (borders reflected)."""

    def __init__(self, degrees: float = 5.0):
        self.degrees = abs(checks.number(degrees, "rotation degrees"))

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.degrees == 0:
            return x
        a = math.radians(self.degrees * (2 * float(torch.rand((), generator=gen)) - 1))
        theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]],
                             dtype=x.dtype, device=x.device)[None]
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
