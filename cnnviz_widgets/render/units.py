"""A unit in Distill's form (lesson 09, Olah et al. 2017, "Feature Visualization"): the
images optimised to excite it beside the dataset patches that excite it most, so what
the unit "wants" and what it actually fires on can be compared at a glance. The engine
makes both (`engine.ascent.visualize_channel`, `engine.patches.max_activating_patches`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import at_height, beside, fit_tile, tile_grid, with_heading

__all__ = ["wants_and_fires"]


def wants_and_fires(optimised, patches: Sequence, *, size: int = 112, optimised_labels: Sequence[str] | None = None,
                    patch_labels: Sequence[str] | None = None, gap: int = 16) -> np.ndarray:
    """Optimised images (N x 3 x H x W in [0, 1], or a list of pictures) on the left,
    dataset patches (uint8 crops of any size) on the right, every tile `size` pixels
    square, each block under its heading; optional labels under the tiles. uint8 RGB."""
    size = int(size)
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, not {size}")
    wanted = [fit_tile(at_height(image), size) for image in optimised]
    if not wanted or not len(patches):
        raise ValueError("wants_and_fires needs at least one optimised image and one dataset patch")
    fired = [fit_tile(np.asarray(p), size) for p in patches]
    left = tile_grid(wanted, ncols=len(wanted), normalize_mode="none", labels=optimised_labels, pad=3)
    right = tile_grid(fired, ncols=len(fired), normalize_mode="none", labels=patch_labels, pad=3)
    return beside([with_heading(left, "optimised: what it wants"),
                   with_heading(right, "top dataset patches: what it fires on")], gap=gap)
