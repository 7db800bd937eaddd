"""The engine's one Gaussian blur.

Used by the `Blur` regulariser of the optimisation loop (Yosinski et al. 2015 blur
the image every few steps) and by occlusion's "blur" fill, which uses
``radius = int(2 * sigma)``: at that radius it equals torchvision's blur (a test
checks it).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import checks

__all__ = ["gaussian_blur", "gaussian_kernel", "blurred_copy"]


def gaussian_kernel(sigma: float, radius: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """The 1-D kernel exp(-t^2 / 2 sigma^2) for t in -radius..radius, summing to 1."""
    t = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    k = torch.exp(-(t * t) / (2 * sigma * sigma))
    return k / k.sum()


def gaussian_blur(x: torch.Tensor, sigma: float, radius: int | None = None) -> torch.Tensor:
    """Blur N x C x H x W images with a Gaussian of standard deviation `sigma` pixels.

    radius: the kernel's half-width (default ceil(2 sigma)). Borders are reflected, so
    the blur adds no dark frame; the radius is cut to what the image allows. Separable:
    one horizontal and one vertical pass.
    """
    sigma = checks.number(sigma, "sigma", low=0.0, low_open=True)
    radius = max(1, math.ceil(2 * sigma)) if radius is None else checks.integer(radius, "radius", low=0)
    if x.dim() != 4:
        raise ValueError(f"gaussian_blur takes N x C x H x W images, not a tensor of shape {tuple(x.shape)}")
    radius = min(radius, x.shape[-2] - 1, x.shape[-1] - 1)
    if radius <= 0:
        return x.clone()
    k = gaussian_kernel(sigma, radius, x.dtype, x.device)
    c = x.shape[1]
    padded = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(padded, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def blurred_copy(x: torch.Tensor) -> torch.Tensor:
    """The images with little detail left and their colours kept: a Gaussian of sigma 1/16
    of the longer side, radius 3 sigma. Integrated Gradients' "blur" baseline and the
    fill of deletion and insertion (lesson 13; RISE starts insertion from a blurred copy)."""
    sigma = max(x.shape[-2], x.shape[-1]) / 16
    return gaussian_blur(x, sigma, radius=int(round(3 * sigma)))
