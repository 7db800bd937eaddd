"""Arrays for display: any tensor or array to numpy, scaled to [0, 1] or uint8 RGB, resized.

Every other module of `render` takes its input through these, so a picture may be a
tensor (CPU or not, with or without a gradient), a float array in [0, 1] or uint8.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["as_numpy", "normalize", "to_uint8", "upscale", "resize_to", "at_height", "fit_tile"]


def as_numpy(x) -> np.ndarray:
    """A tensor (detached, on the CPU, as float) or anything array-like -> a numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x)


def normalize(x, mode: str = "global", eps: float = 1e-8) -> np.ndarray:
    """Scale to [0, 1] for display.

    mode: ``"global"`` (one min/max for the whole array), ``"per_tile"`` (each item
    of the first axis on its own), ``"symmetric"`` (0 maps to 0.5; for signed
    weights and gradients), or ``"none"`` (clip only).
    """
    a = as_numpy(x).astype(np.float32)
    if mode == "none":
        return np.clip(a, 0, 1)
    if mode == "per_tile":
        axes = tuple(range(1, a.ndim))
        lo, hi = a.min(axis=axes, keepdims=True), a.max(axis=axes, keepdims=True)
    elif mode == "global":
        lo, hi = a.min(), a.max()
    elif mode == "symmetric":
        m = np.abs(a).max()
        return np.clip(a / (2 * m + eps) + 0.5, 0, 1)
    else:
        raise ValueError(f"normalize mode must be global, per_tile, symmetric or none, not {mode!r}")
    return (a - lo) / np.maximum(hi - lo, eps)


def to_uint8(x, mode: str = "none") -> np.ndarray:
    """Float array in [0,1] (after `normalize(mode)`) -> uint8; channel-first tensors
    (CxHxW with C in 1 or 3) are moved to channel-last; grey becomes RGB."""
    a = as_numpy(x)
    if a.dtype == np.uint8:
        out = a
    else:
        out = (normalize(a, mode) * 255 + 0.5).astype(np.uint8)
    if out.ndim == 3 and out.shape[0] in (1, 3) and out.shape[-1] not in (1, 3):
        out = np.moveaxis(out, 0, -1)
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=-1)
    if out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=-1)
    return np.ascontiguousarray(out)


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling: keeps pixels of small filters visible as squares."""
    if factor <= 1:
        return image
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def resize_to(image: np.ndarray, size: tuple[int, int], smooth: bool = True) -> np.ndarray:
    """Resize an HxW or HxWx3 array to (height, width)."""
    a = as_numpy(image)
    if a.dtype != np.uint8:
        pil = Image.fromarray(a.astype(np.float32)) if a.ndim == 2 else None
        if pil is None:
            return np.stack([resize_to(a[..., c], size, smooth) for c in range(a.shape[-1])], -1)
    else:
        pil = Image.fromarray(a)
    pil = pil.resize((size[1], size[0]), Image.BILINEAR if smooth else Image.NEAREST)
    return np.asarray(pil)


_FONT = None


def at_height(image, height: int | None = None) -> np.ndarray:
    """An image (uint8 array, [0, 1] array or tensor, 3 x H x W or 1 x 3 x H x W) as
    uint8 H x W x 3, resized to `height` (keeping its aspect) when given."""
    a = as_numpy(image)
    if a.ndim == 4:
        a = a[0]
    a = to_uint8(a)
    if height and a.shape[0] != height:
        a = resize_to(a, (height, max(1, int(round(a.shape[1] * height / a.shape[0])))))
    return a


def fit_tile(patch: np.ndarray, size: int = 64) -> np.ndarray:
    """A patch as a `size` x `size` tile: small ones are enlarged in whole pixels first,
    so their pixels stay visible as squares; large ones are shrunk smoothly."""
    h = patch.shape[0]
    if h < size:
        patch = upscale(patch, max(1, size // h))
    return resize_to(patch, (size, size), smooth=h > size)
