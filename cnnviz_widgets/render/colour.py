"""Scalar maps as colour: a colour map, a heatmap over an image, a gradient as the papers show it."""

from __future__ import annotations

import numpy as np

from .arrays import as_numpy, resize_to, to_uint8

__all__ = ["colorize", "heatmap_overlay", "gradient_picture"]


def colorize(heat, cmap: str = "inferno", vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """2-D scalar map -> uint8 RGB through a matplotlib colour map."""
    import matplotlib  # deferred: matplotlib is heavy, and most pictures need no colour map

    h = as_numpy(heat).astype(np.float32)
    lo = float(h.min()) if vmin is None else vmin
    hi = float(h.max()) if vmax is None else vmax
    t = np.clip((h - lo) / max(hi - lo, 1e-12), 0, 1)
    rgba = matplotlib.colormaps[cmap](t)
    return (rgba[..., :3] * 255 + 0.5).astype(np.uint8)


def heatmap_overlay(image, heat, alpha: float = 0.5, cmap: str = "inferno",
                    vmin: float | None = None, vmax: float | None = None, smooth: bool = True) -> np.ndarray:
    """Blend a heatmap (any resolution; resized to the image) over an RGB image."""
    img = to_uint8(image)
    h = as_numpy(heat).astype(np.float32)
    if h.shape != img.shape[:2]:
        h = resize_to(h, img.shape[:2], smooth=smooth)
    colored = colorize(h, cmap, vmin, vmax).astype(np.float32)
    out = (1 - alpha) * img.astype(np.float32) + alpha * colored
    return (out + 0.5).clip(0, 255).astype(np.uint8)


def gradient_picture(gradient) -> np.ndarray:
    """A 3 x H x W gradient as the papers show it: grey = 0, contrast set by the 99th
    percentile of |gradient| (the few largest values would otherwise wash out the rest)."""
    g = as_numpy(gradient).astype(np.float32)
    scale = float(np.percentile(np.abs(g), 99)) or float(np.abs(g).max()) or 1.0
    return to_uint8(np.clip(g / (2 * scale) + 0.5, 0, 1))
