"""What the patch shows, and occluded copies of an image."""

from __future__ import annotations

import numbers

import numpy as np
import torch

from ...core import checks
from ...core.blur import gaussian_blur

__all__ = ["FILLS", "fill_image", "check_fill", "occluded_image", "occluded_batch"]

FILLS = ("grey", "mean", "blur")

Box = tuple[int, int, int, int]  # (top, left, bottom, right), bottom/right exclusive


def check_fill(fill) -> str | float:
    """'grey' (or 'gray'), 'mean', 'blur', or a grey level in [0, 1]."""
    if isinstance(fill, (numbers.Real, np.floating, np.integer)) and not isinstance(fill, (bool, np.bool_)):
        level = checks.number(fill, "fill")
        if not 0.0 <= level <= 1.0:
            raise ValueError(f"fill {level:g} is out of range: it must be in [0, 1] (a grey level)")
        return level
    if fill == "gray":
        return "grey"
    if isinstance(fill, str) and fill in FILLS:
        return fill
    raise ValueError(f"fill must be 'grey', 'mean', 'blur' or a grey level in [0, 1], not {fill!r}")


def fill_image(x: torch.Tensor, fill: str | float, patch: int) -> torch.Tensor:
    """What the patch shows, as a full image (1x3xHxW) to copy the occluded square from.

    grey: 0.5 everywhere (the mid-grey of Zeiler & Fergus); mean: the image's own mean
    colour, so the patch adds no new colour; blur: a Gaussian-blurred copy, so only the
    detail is removed; a number in [0, 1]: that grey level.
    """
    fill = check_fill(fill)
    if not isinstance(fill, str):
        return torch.full_like(x, float(fill))
    if fill == "grey":
        return torch.full_like(x, 0.5)
    if fill == "mean":
        return x.mean(dim=(-2, -1), keepdim=True).expand_as(x).clone()
    # Blur on the patch's scale: a sigma of a quarter patch wipes out what fits inside it.
    sigma = max(1.0, patch / 4.0)
    return gaussian_blur(x, sigma, radius=int(2 * sigma))


def occluded_image(x: torch.Tensor, filler: torch.Tensor, box: Box) -> torch.Tensor:
    """x with the box replaced by the filler's pixels (a new 1x3xHxW tensor)."""
    top, left, bottom, right = (int(v) for v in box)
    out = x.clone()
    out[..., top:bottom, left:right] = filler[..., top:bottom, left:right]
    return out


def occluded_batch(x: torch.Tensor, fill: torch.Tensor, boxes) -> torch.Tensor:
    """Copies of `x` with each box replaced by `fill`'s pixels, channels-last.

    Channels-last lets oneDNN pick faster convolution kernels on a CPU (1.3-1.7x for
    EfficientNet); the arithmetic is the same up to summation order. Boxes are inside
    the image (clip them first).
    """
    batch = x.expand(len(boxes), -1, -1, -1).clone()
    for i, (t, l, b, r) in enumerate(boxes):
        batch[i, :, t:b, l:r] = fill[0, :, t:b, l:r]
    return batch.contiguous(memory_format=torch.channels_last)
