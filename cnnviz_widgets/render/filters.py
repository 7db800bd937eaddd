"""Drawing convolution weights (lesson 01): filters as colour tiles, 0 as mid-grey.

The engine (`cnnviz_widgets.engine.inspect.filters`) picks the weights; this turns them
into pictures. Weights are signed, so they are drawn with 0 as mid-grey: a
filter's positive and negative lobes look like light and dark (or like a colour
and its opposite).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .layout import tile_grid as _tile_grid

__all__ = ["filter_grid", "filter_zoom", "frame_tile", "NORMALIZATIONS"]

NORMALIZATIONS = ("per_filter", "global")


def _as_numpy(weights) -> np.ndarray:
    a = weights.detach().float().cpu().numpy() if isinstance(weights, torch.Tensor) else np.asarray(weights, np.float32)
    return a.astype(np.float32)


def _symmetric(a: np.ndarray, normalize: str) -> np.ndarray:
    """Signed weights -> [0, 1] with 0 at 0.5; one scale per tile or for all."""
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be 'per_filter' or 'global', not {normalize!r}")
    axes = tuple(range(1, a.ndim))
    if normalize == "per_filter":
        m = np.abs(a).max(axis=axes, keepdims=True)
    else:
        m = np.abs(a).max()
    return np.clip(a / (2 * np.maximum(m, 1e-12)) + 0.5, 0, 1)


def _tiles(weights) -> np.ndarray:
    """N x 3 x k x k (RGB filters) -> N x k x k x 3; N x k x k (grey kernels) as is."""
    a = _as_numpy(weights)
    if a.ndim == 4 and a.shape[1] == 3:
        return np.moveaxis(a, 1, -1)
    if a.ndim == 3:
        return a
    raise ValueError(
        f"filter_grid draws N x 3 x k x k RGB filters or N x k x k grey kernels, not shape {tuple(a.shape)}; "
        "for a deeper convolution take one filter with deeper_filters(net, layer, channel)."
    )


def _default_scale(k: int) -> int:
    return max(1, 36 // max(1, k))  # tiles of about 36 px: AlexNet 11 -> 33, shapes 9 -> 36, 3 -> 36


def filter_grid(weights, normalize: str = "per_filter", scale: int | None = None, ncols: int | None = None,
                pad: int = 2, highlight: int | None = None, labels: Sequence[str] | None = None) -> np.ndarray:
    """Filters as a grid of tiles, uint8 H x W x 3, 0 drawn as mid-grey.

    `weights`: N x 3 x k x k (first-layer filters, drawn in colour) or N x k x k
    (the kernels of one deeper filter, drawn in grey). `normalize`:
    ``"per_filter"`` stretches each tile to its own largest weight (shapes are
    easy to see); ``"global"`` uses one scale for all (strong and weak filters
    can be compared). `highlight` frames one tile in red.
    """
    tiles = _tiles(weights)
    if len(tiles) == 0:
        raise ValueError("filter_grid needs at least one filter")
    pixels = (_symmetric(tiles, normalize) * 255 + 0.5).astype(np.uint8)
    k = tiles.shape[1]
    scale = scale or _default_scale(k)
    ncols = ncols or int(np.ceil(np.sqrt(len(tiles))))
    grid = _tile_grid(pixels, ncols=ncols, pad=pad, normalize_mode="none", labels=labels, scale=scale)
    if highlight is not None:
        if not 0 <= int(highlight) < len(tiles):
            raise ValueError(f"highlight {highlight} is out of range 0..{len(tiles) - 1}")
        grid = _frame(grid, int(highlight), ncols, (k * scale, k * scale), pad, 12 if labels else 0)
    return grid


def _frame(grid: np.ndarray, i: int, ncols: int, tile: tuple[int, int], pad: int, label_h: int) -> np.ndarray:
    """The grid with the padding around tile `i` painted red (render.tile_grid's layout)."""
    if not grid.flags.writeable:  # grids with labels come back from Pillow read-only
        grid = grid.copy()
    h, w = tile
    r, c = divmod(i, ncols)
    y, x = pad + r * (h + pad + label_h), pad + c * (w + pad)
    t = max(1, pad)
    y0, x0 = max(0, y - t), max(0, x - t)
    red = np.array([220, 20, 60], np.uint8)
    grid[y0:y, x0:x + w + t] = red
    grid[y + h:y + h + t, x0:x + w + t] = red
    grid[y0:y + h + t, x0:x] = red
    grid[y0:y + h + t, x + w:x + w + t] = red
    return grid


def filter_zoom(weights, index: int, normalize: str = "per_filter", size: int = 120) -> np.ndarray:
    """One first-layer filter big, then its R, G and B weights as grey images.

    All four share one symmetric scale (the filter's own, or the whole bank's
    with ``normalize="global"``), so a channel that barely matters looks flat grey.
    """
    tiles = _tiles(weights)
    if tiles.ndim != 4:
        raise ValueError("filter_zoom shows an RGB first-layer filter (N x 3 x k x k weights)")
    if not 0 <= int(index) < len(tiles):
        raise ValueError(f"filter {index} is out of range: there are filters 0..{len(tiles) - 1}")
    scaled = _symmetric(tiles, normalize)[int(index)]  # k x k x 3, 0.5 = zero weight
    parts = [scaled] + [np.repeat(scaled[..., c:c + 1], 3, axis=-1) for c in range(3)]
    pixels = (np.stack(parts) * 255 + 0.5).astype(np.uint8)
    scale = max(1, size // tiles.shape[1])
    return _tile_grid(pixels, ncols=4, pad=4, normalize_mode="none", scale=scale,
                            labels=[f"filter {int(index)}", "red", "green", "blue"])


frame_tile = _frame  # used by render.activations to frame the chosen channel
