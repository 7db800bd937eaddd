"""Pictures laid out: tiles on a grid, side by side at one height, stacked, beside each other."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from .arrays import as_numpy, normalize, resize_to, to_uint8
from .text import label_font

__all__ = ["tile_grid", "side_by_side", "stack", "beside"]


def tile_grid(
    tiles,
    ncols: int | None = None,
    pad: int = 2,
    normalize_mode: str = "per_tile",
    labels: Sequence[str] | None = None,
    scale: int = 1,
    pad_value: int = 255,
    tile_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Lay N images out on a grid: N x H x W (grey), N x H x W x 3 or N x 3 x H x W.

    Tiles of different sizes are allowed when `tile_size` is given (each is resized).
    `labels` are written under the tiles. Returns uint8 H x W x 3.
    """
    if isinstance(tiles, (list, tuple)):
        items = [as_numpy(t) for t in tiles]
        if tile_size is not None:
            items = [resize_to(to_uint8(t, normalize_mode if t.dtype != np.uint8 else "none"), tile_size) for t in items]
            normalize_mode = "none"
        arr = np.stack(items)
    else:
        arr = as_numpy(tiles)
    if arr.ndim == 4 and arr.shape[1] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 1, -1)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.dtype != np.uint8:
        arr = (normalize(arr, normalize_mode) * 255 + 0.5).astype(np.uint8)
    if arr.ndim == 3:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    n, h, w, _ = arr.shape
    if scale > 1:
        arr = np.repeat(np.repeat(arr, scale, axis=1), scale, axis=2)
        h, w = h * scale, w * scale
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    label_h = 12 if labels else 0
    grid = np.full((nrows * (h + pad + label_h) + pad, ncols * (w + pad) + pad, 3), pad_value, np.uint8)
    for i in range(n):
        r, c = divmod(i, ncols)
        y, x = pad + r * (h + pad + label_h), pad + c * (w + pad)
        grid[y:y + h, x:x + w] = arr[i]
    if labels:
        pil = Image.fromarray(grid)
        draw = ImageDraw.Draw(pil)
        for i, text in enumerate(labels[:n]):
            r, c = divmod(i, ncols)
            y, x = pad + r * (h + pad + label_h) + h, pad + c * (w + pad)
            text = str(text)
            max_chars = max(1, w // 6)
            draw.text((x + 1, y), text[:max_chars], fill=(0, 0, 0), font=label_font())
        grid = np.asarray(pil)
    return grid


def side_by_side(images: Sequence, labels: Sequence[str] | None = None, height: int = 224, pad: int = 4) -> np.ndarray:
    """Several pictures resized to one height, left to right, with optional labels."""
    resized = []
    for im in images:
        a = to_uint8(im)
        w = max(1, int(round(a.shape[1] * height / a.shape[0])))
        resized.append(resize_to(a, (height, w)))
    width = max(r.shape[1] for r in resized)
    padded = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in resized]
    return tile_grid(np.stack(padded), ncols=len(padded), pad=pad, normalize_mode="none", labels=labels)


def stack(pictures: Sequence[np.ndarray], gap: int = 8) -> np.ndarray:
    """uint8 pictures one under the other, left-aligned on white."""
    width = max(p.shape[1] for p in pictures)
    rows = []
    for i, p in enumerate(pictures):
        if i:
            rows.append(np.full((gap, width, 3), 255, np.uint8))
        rows.append(np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0)), constant_values=255))
    return np.concatenate(rows, axis=0)


def beside(pictures: Sequence[np.ndarray], gap: int = 8) -> np.ndarray:
    """uint8 pictures left to right at their own sizes, top-aligned on white
    (`side_by_side` resizes them to one height instead)."""
    height = max(p.shape[0] for p in pictures)
    columns = []
    for i, p in enumerate(pictures):
        if i:
            columns.append(np.full((height, gap, 3), 255, np.uint8))
        columns.append(np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0)), constant_values=255))
    return np.concatenate(columns, axis=1)
