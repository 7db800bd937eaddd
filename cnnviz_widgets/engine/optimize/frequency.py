"""How much of an image's variation is fine detail: the measure lessons 09 and 11 check.

Lesson `notebooks/09_gradient_ascent.ipynb` claims that regularisation removes the
fine-grained noise raw gradient ascent produces; `high_frequency_share` is the number
that claim is checked with. It is the share of an image's spectral energy (its
variance, by Parseval's theorem) at spatial frequencies above `cutoff` cycles per
pixel. The highest frequency an image can hold is 0.5 (a pattern that flips every
pixel), so the default 0.25 counts everything finer than a period of 4 pixels.
"""

from __future__ import annotations

import torch

from ..core import checks

__all__ = ["high_frequency_share"]


def high_frequency_share(image, cutoff: float = 0.25) -> float:
    """The share (0..1) of the image's variation at radial frequencies above `cutoff`.

    image: a 1x3xHxW or 3xHxW tensor (any scale: the share does not depend on it);
    each colour's mean is removed first, so a flat image has no share to give and
    raises. cutoff: cycles per pixel, in (0, 0.5].
    """
    cutoff = checks.number(cutoff, "cutoff", low=0.0, low_open=True, high=0.5)
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"the image must be a tensor (1x3xHxW or 3xHxW), not {type(image).__name__}")
    x = image.detach().cpu().double()
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(f"one image at a time: got a batch of {x.shape[0]}")
        x = x[0]
    if x.dim() != 3 or min(x.shape[-2:]) < 4:
        raise ValueError(f"the image must be CxHxW with H, W >= 4, not {tuple(image.shape)}")
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(x).abs().pow(2).sum(0)
    fy = torch.fft.fftfreq(x.shape[-2], dtype=x.dtype)[:, None]
    fx = torch.fft.fftfreq(x.shape[-1], dtype=x.dtype)[None, :]
    total = power.sum()
    if not total > 0:
        raise ValueError("the image is flat (every colour constant): it has no variation to measure")
    return float(power[(fy * fy + fx * fx).sqrt() > cutoff].sum() / total)
