"""Drawing activations (lesson 04): feature maps as grey tiles, one map over the image.

The engine (`cnnviz_widgets.engine.inspect.activations`) computes the maps; this turns
them into pictures.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .arrays import normalize as _normalize
from .colour import heatmap_overlay
from .layout import tile_grid as _tile_grid
from .filters import frame_tile

__all__ = ["activation_grid", "channel_overlay"]


def activation_grid(acts: torch.Tensor, channels: Sequence[int] | None = None, normalize: str = "layer",
                    scale: int | None = None, ncols: int | None = None, highlight: int | None = None,
                    labels: bool | None = None, max_tile: int = 56) -> np.ndarray:
    """Feature maps as a grid of grey tiles (bright = strong), uint8 H x W x 3.

    `channels`: which to show (default all, in order). `normalize`: ``"layer"``
    puts all tiles on one scale, so strong channels stand out and silent ones are
    black; ``"channel"`` stretches each tile to its own range, to see the pattern
    of weak ones. `highlight` (a channel index) is framed in red. `labels` writes
    each tile's channel index under it (default: when a subset is shown and tiles
    are wide enough). Maps larger than `max_tile` pixels are averaged down by a
    whole factor (an overview: `channel_overlay` shows one map at full resolution).
    """
    acts = torch.as_tensor(acts)
    if acts.dim() != 3:
        raise ValueError(f"activation_grid needs maps of shape channels x height x width, not {tuple(acts.shape)}")
    c = acts.shape[0]
    chosen = list(range(c)) if channels is None else [int(i) for i in channels]
    if not chosen:
        raise ValueError("activation_grid needs at least one channel")
    bad = [i for i in chosen if not 0 <= i < c]
    if bad:
        raise ValueError(f"channel {bad[0]} is out of range: this layer has channels 0..{c - 1}")
    modes = {"layer": "global", "channel": "per_tile"}
    if normalize not in modes:
        raise ValueError(f"normalize must be 'layer' or 'channel', not {normalize!r}")
    maps = acts[chosen].float().cpu()
    factor = -(-max(maps.shape[1:]) // max(1, int(max_tile)))
    if factor > 1:  # 32 maps of 112 x 112 make a PNG too big to redraw in 100 ms
        maps = F.avg_pool2d(maps[None], factor, ceil_mode=True)[0]
    maps = maps.numpy()
    pixels = (_normalize(maps, modes[normalize]) * 255 + 0.5).astype(np.uint8)
    h, w = maps.shape[1:]
    # About 48 px per tile for conv maps; vector layers (1 x 1) become a mosaic of cells.
    ncols = ncols or int(np.ceil(np.sqrt(len(chosen))))
    if scale is None:
        scale = max(1, int(round(48 / max(h, w)))) if max(h, w) > 1 else 6
        # Keep big layers (1280 channels) near 900 px wide: fast to draw and to send.
        scale = max(1, min(scale, (900 // ncols - 2) // w))
    if labels is None:
        labels = channels is not None and w * scale >= 24
    pad = 1 if max(h, w) == 1 else 2
    text = [str(i) for i in chosen] if labels else None
    grid = _tile_grid(pixels, ncols=ncols, pad=pad, normalize_mode="none", scale=scale,
                            labels=text, pad_value=255)
    if highlight is not None and int(highlight) in chosen:
        grid = frame_tile(grid, chosen.index(int(highlight)), ncols, (h * scale, w * scale), pad, 12 if text else 0)
    return grid


def channel_overlay(image, act_map, alpha: float = 0.55, cmap: str = "inferno") -> np.ndarray:
    """One channel's map, upsampled to the image, blended over it (uint8 H x W x 3).

    The colour scale starts at 0 (post-ReLU maps are never negative), so a weak
    channel stays dark instead of being stretched to look strong.
    """
    heat = torch.as_tensor(act_map).detach().float().cpu().numpy() if not isinstance(act_map, np.ndarray) else act_map
    heat = np.asarray(heat, np.float32)
    if heat.ndim != 2:
        raise ValueError(f"channel_overlay needs one channel's H x W map, not shape {heat.shape}")
    lo = min(0.0, float(heat.min()))
    hi = max(float(heat.max()), lo + 1e-6)
    return heatmap_overlay(image, heat, alpha=alpha, cmap=cmap, vmin=lo, vmax=hi)
