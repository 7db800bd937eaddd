"""Transforms: random changes applied to the image before each forward pass.

A transform is ``t(image, generator) -> image``, drawing its randomness from the
loop's own seeded `torch.Generator` (never the global RNG, so one lesson's
randomness never leaks into another's), as in Lucent's ``transform`` module. An
image that stays good when shifted, scaled and turned a little cannot be made of
single-pixel tricks: the transforms regularise without a penalty term.

`Jitter` comes from DeepDream (Mordvintsev, Olah & Tyka 2015, "Inceptionism: Going
Deeper into Neural Networks"); `Pad`, `RandomScale`, `RandomRotate` and the stack of
`standard_transforms` from Lucid (Olah, Mordvintsev & Schubert 2017, "Feature
Visualization", Distill, https://distill.pub/2017/feature-visualization/).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from ..core import checks

__all__ = ["Pad", "Jitter", "RandomScale", "RandomRotate", "RandomCrop", "standard_transforms"]


class Pad:
    """Pad every side with `pixels` of a constant grey (Lucid pads before jittering, so
    the image's own border moves about inside the frame and is not a fixed edge)."""

    def __init__(self, pixels: int = 12, value: float = 0.5):
        self.pixels = checks.integer(pixels, "pad", low=0)
        self.value = checks.fraction(value, "pad value")

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.pixels == 0:
            return x
        return F.pad(x, (self.pixels,) * 4, mode="constant", value=self.value)


class Jitter:
    """Shift the image by up to `pixels` in each direction. ``mode="roll"``: a circular
    roll, as the original DeepDream does (no border to learn from; same size);
    ``mode="crop"``: Lucid's jitter, a random crop `pixels` smaller in each dimension."""

    def __init__(self, pixels: int = 4, mode: str = "roll"):
        self.pixels = checks.integer(pixels, "jitter", low=0)
        self.mode = checks.choice(mode, "jitter mode", ("roll", "crop"))

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.pixels == 0:
            return x
        if self.mode == "crop":
            h, w = x.shape[-2:]
            if min(h, w) <= self.pixels:
                raise ValueError(f"jitter {self.pixels} crops away all of a {h}x{w} image")
            dy, dx = torch.randint(0, self.pixels + 1, (2,), generator=gen).tolist()
            return x[..., dy:dy + h - self.pixels, dx:dx + w - self.pixels]
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
                             dtype=x.dtype, device=x.device)[None].expand(x.shape[0], -1, -1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


class RandomCrop:
    """Look at a random square of the image, its side `smallest`..1 of the shorter side,
    resized back to the image's shorter side (bilinear): a random zoom that keeps the
    network's input size fixed. A picture optimised through it must show its subject in
    every large crop, not only in one framing; it is how `engine.judge` looks at a
    picture, and how a classifier's training data is usually augmented."""

    def __init__(self, smallest: float = 0.6):
        self.smallest = checks.number(smallest, "crop", low=0.05, high=1.0)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        h, w = x.shape[-2:]
        short = min(h, w)
        side = max(8, int(round(short * (self.smallest + (1 - self.smallest) * float(torch.rand((), generator=gen))))))
        top = int(torch.randint(0, h - side + 1, (), generator=gen))
        left = int(torch.randint(0, w - side + 1, (), generator=gen))
        x = x[..., top:top + side, left:left + side]
        if side == short:
            return x
        return F.interpolate(x, size=(short, short), mode="bilinear", align_corners=False)


def standard_transforms(pad: int = 12, jitter: int = 8, scale: float = 0.1, rotate: float = 10.0,
                        final_jitter: int = 4) -> list:
    """Lucid's transformation-robustness stack: pad with grey, jitter, scale by up to
    +-`scale`, rotate by up to +-`rotate` degrees, jitter again (Lucid uses pad 12,
    jitter 8, scale 0.9-1.1, rotate +-10, jitter 4). An image that still excites the
    unit after all of these cannot rely on single-pixel patterns."""
    stack = [Pad(pad), Jitter(jitter, mode="crop")]
    if checks.number(scale, "scale", low=0.0, high=0.9):
        stack.append(RandomScale((1 - scale, 1 + scale)))
    if checks.number(rotate, "rotate"):
        stack.append(RandomRotate(rotate))
    stack.append(Jitter(final_jitter, mode="crop"))
    return stack
