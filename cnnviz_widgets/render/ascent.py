"""Drawing a unit as Distill's "Feature Visualization" (Olah, Mordvintsev & Schubert 2017)
shows it (lesson 09): the images optimised for the unit beside the dataset patches that
excite it most (lesson 05's scan), so that what the unit "wants" can be compared with
what it actually fires on. The engine computes both (`engine.ascent.visualize_channel`,
`engine.patches.max_activating_patches` and `crop_patch`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .arrays import fit_tile, to_uint8
from .layout import beside, tile_grid
from .text import with_heading

__all__ = ["channel_comparison"]


def channel_comparison(images, patches: Sequence[np.ndarray], values: Sequence[float] | None = None,
                       size: int = 112, per_row: int = 3, headings: tuple[str, str] = ("optimised",
                                                                                    "dataset patches")) -> np.ndarray:
    """The optimised `images` (a [0, 1] tensor or array N x 3 x H x W or 3 x H x W, or a
    list of pictures) on the left, the dataset `patches` (uint8 crops, any sizes) on the
    right, each shown as a `size` x `size` tile, `per_row` tiles to a row, each block under
    its heading; `values` (one per patch, e.g. the unit's activation) label the patches.
    Returns uint8 H x W x 3."""
    size, per_row = int(size), int(per_row)
    if size < 16 or per_row < 1:
        raise ValueError(f"size must be at least 16 pixels and per_row at least 1, not {size} and {per_row}")
    pictures = _pictures(images)
    if not pictures:
        raise ValueError("channel_comparison needs at least one optimised image")
    if not len(patches):
        raise ValueError("channel_comparison needs at least one dataset patch")
    if values is not None and len(values) != len(patches):
        raise ValueError(f"{len(values)} values for {len(patches)} patches: give one value per patch or none")
    wanted = tile_grid([fit_tile(p, size) for p in pictures], ncols=min(per_row, len(pictures)),
                       normalize_mode="none", pad=3)
    labels = None if values is None else [f"{float(v):.3g}" for v in values]
    fired = tile_grid([fit_tile(to_uint8(p), size) for p in patches], ncols=min(per_row, len(patches)),
                      normalize_mode="none", labels=labels, pad=3)
    return beside([with_heading(wanted, headings[0]), with_heading(fired, headings[1])], gap=16)


def _pictures(images) -> list[np.ndarray]:
    if isinstance(images, (list, tuple)):
        return [to_uint8(im) for im in images]
    shape = tuple(getattr(images, "shape", ()))
    if len(shape) == 3:
        return [to_uint8(images)]
    if len(shape) != 4:
        raise ValueError(f"images must be N x 3 x H x W or 3 x H x W, not of shape {shape}")
    return [to_uint8(images[i]) for i in range(shape[0])]
