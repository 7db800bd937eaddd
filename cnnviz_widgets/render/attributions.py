"""Pictures for lesson 13: attribution maps side by side, each with its scores under it.

Maps of different methods live on different scales (a gradient, a logit drop, an
integrated gradient), so each is shown on its own: its positive part, divided by its
99th percentile (a few extreme pixels would otherwise leave the rest black).
"""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from .arrays import resize_to, to_uint8
from .colour import colorize
from .text import label_font

__all__ = ["display_map", "mask_outline", "attribution_grid", "curves_figure"]


def display_map(heat, percentile: float = 99.0) -> np.ndarray:
    """A map as [0, 1] for display: max(heat, 0) / its `percentile`-th percentile, clipped."""
    h = np.asarray(heat.detach().cpu().numpy() if hasattr(heat, "detach") else heat, dtype=np.float32)
    h = np.clip(h, 0, None)
    positive = h[h > 0]
    scale = float(np.percentile(positive, percentile)) if positive.size else 0.0
    if scale <= 0:
        return np.zeros_like(h)
    return np.clip(h / scale, 0, 1)


def mask_outline(image, mask, colour=(0, 255, 0)) -> np.ndarray:
    """The image with the mask's border drawn in `colour` (one pixel wide)."""
    img = to_uint8(image).copy()
    m = np.asarray(mask, dtype=bool)
    if m.shape != img.shape[:2]:
        m = resize_to(m.astype(np.uint8) * 255, img.shape[:2], smooth=False) > 127
    inner = m.copy()
    inner[1:, :] &= m[:-1, :]
    inner[:-1, :] &= m[1:, :]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    img[m & ~inner] = colour
    return img


def attribution_grid(image, maps: Sequence, titles: Sequence[str], captions: Sequence[Sequence[str]] | None = None,
                     *, mask=None, size: int = 160, alpha: float = 0.65, ncols: int | None = None,
                     cmap: str = "inferno", image_caption: Sequence[str] = ()) -> np.ndarray:
    """The image (with the mask's outline when given), then one overlay per map, each with
    its title and a few caption lines (the scores) under it. uint8 H x W x 3."""
    base = to_uint8(image)
    shown = mask_outline(base, mask) if mask is not None else base
    tiles = [resize_to(shown, (size, size))]
    texts = [["image"] + list(image_caption)]
    for i, heat in enumerate(maps):
        h = display_map(heat)
        if h.shape != base.shape[:2]:
            h = resize_to(h, base.shape[:2])
        coloured = colorize(h, cmap, 0.0, 1.0).astype(np.float32)
        over = ((1 - alpha) * base.astype(np.float32) + alpha * coloured + 0.5).clip(0, 255).astype(np.uint8)
        tiles.append(resize_to(over, (size, size)))
        texts.append([titles[i]] + list(captions[i] if captions is not None else []))
    n = len(tiles)
    ncols = ncols or min(n, 4)
    nrows = int(np.ceil(n / ncols))
    line_h, pad = 12, 4
    lines = max(len(t) for t in texts)
    cell_h = size + pad + lines * line_h
    grid = Image.new("RGB", (ncols * (size + pad) + pad, nrows * (cell_h + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    max_chars = max(1, size // 6)
    for i, (tile, text) in enumerate(zip(tiles, texts)):
        r, c = divmod(i, ncols)
        x, y = pad + c * (size + pad), pad + r * (cell_h + pad)
        grid.paste(Image.fromarray(tile), (x, y))
        for k, line in enumerate(text):
            draw.text((x + 1, y + size + 2 + k * line_h), str(line)[:max_chars], fill=(0, 0, 0), font=label_font())
    return np.asarray(grid)


def curves_figure(curves: dict, kind: str = "deletion", size: float = 3.2) -> np.ndarray:
    """Deletion or insertion curves of several maps on one set of axes (uint8 RGB):
    `curves` maps a label to an `evaluation.Curve`."""
    from matplotlib.figure import Figure

    from . import figure_png

    fig = Figure(figsize=(size * 1.4, size))
    ax = fig.add_subplot()
    for label, curve in curves.items():
        ax.plot(curve.fractions, curve.probabilities, label=f"{label} ({curve.auc:.2f})")
    ax.set_xlabel(f"fraction of pixels {'deleted' if kind == 'deletion' else 'inserted'}")
    ax.set_ylabel("class probability")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{kind} curves (area in brackets)", fontsize=10)
    ax.legend(fontsize=7)
    return np.asarray(Image.open(io.BytesIO(figure_png(fig))).convert("RGB"))
