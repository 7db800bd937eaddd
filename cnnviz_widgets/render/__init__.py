"""Arrays -> pictures: tile grids, heatmap overlays, normalisation for display, PNG bytes.

The engine returns tensors and arrays; this module turns them into uint8 RGB arrays
and PNG bytes for the widgets (and for notebooks that want a quick look with
`show`). Grids and overlays are drawn with numpy and Pillow, which is fast enough for
the 100 ms interactions of the apps; matplotlib is used only for figures with axes
(colour bars, scatter plots) and always through its object API, never pyplot's
global state.
"""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "normalize",
    "to_uint8",
    "tile_grid",
    "colorize",
    "heatmap_overlay",
    "heatmap_figure",
    "figure_png",
    "to_png",
    "upscale",
    "resize_to",
    "side_by_side",
    "stack",
    "beside",
    "with_heading",
    "at_height",
    "fit_tile",
    "gradient_picture",
    "show",
]


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x)


def normalize(x, mode: str = "global", eps: float = 1e-8) -> np.ndarray:
    """Scale to [0, 1] for display.

    mode: ``"global"`` (one min/max for the whole array), ``"per_tile"`` (each item
    of the first axis on its own), ``"symmetric"`` (0 maps to 0.5; for signed
    weights and gradients), or ``"none"`` (clip only).
    """
    a = _to_numpy(x).astype(np.float32)
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
    a = _to_numpy(x)
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
    a = _to_numpy(image)
    if a.dtype != np.uint8:
        mode = "F"
        pil = Image.fromarray(a.astype(np.float32)) if a.ndim == 2 else None
        if pil is None:
            return np.stack([resize_to(a[..., c], size, smooth) for c in range(a.shape[-1])], -1)
    else:
        pil = Image.fromarray(a)
    pil = pil.resize((size[1], size[0]), Image.BILINEAR if smooth else Image.NEAREST)
    return np.asarray(pil)


_FONT = None


def _font():
    global _FONT
    if _FONT is None:
        _FONT = ImageFont.load_default()
    return _FONT


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
        items = [_to_numpy(t) for t in tiles]
        if tile_size is not None:
            items = [resize_to(to_uint8(t, normalize_mode if t.dtype != np.uint8 else "none"), tile_size) for t in items]
            normalize_mode = "none"
        arr = np.stack(items)
    else:
        arr = _to_numpy(tiles)
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
            draw.text((x + 1, y), text[:max_chars], fill=(0, 0, 0), font=_font())
        grid = np.asarray(pil)
    return grid


def colorize(heat, cmap: str = "inferno", vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """2-D scalar map -> uint8 RGB through a matplotlib colour map."""
    import matplotlib

    h = _to_numpy(heat).astype(np.float32)
    lo = float(h.min()) if vmin is None else vmin
    hi = float(h.max()) if vmax is None else vmax
    t = np.clip((h - lo) / max(hi - lo, 1e-12), 0, 1)
    rgba = matplotlib.colormaps[cmap](t)
    return (rgba[..., :3] * 255 + 0.5).astype(np.uint8)


def heatmap_overlay(image, heat, alpha: float = 0.5, cmap: str = "inferno",
                    vmin: float | None = None, vmax: float | None = None, smooth: bool = True) -> np.ndarray:
    """Blend a heatmap (any resolution; resized to the image) over an RGB image."""
    img = to_uint8(image)
    h = _to_numpy(heat).astype(np.float32)
    if h.shape != img.shape[:2]:
        h = resize_to(h, img.shape[:2], smooth=smooth)
    colored = colorize(h, cmap, vmin, vmax).astype(np.float32)
    out = (1 - alpha) * img.astype(np.float32) + alpha * colored
    return (out + 0.5).clip(0, 255).astype(np.uint8)


def figure_png(fig, dpi: int = 100) -> bytes:
    """Render a matplotlib Figure (made with `matplotlib.figure.Figure`) to PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def heatmap_figure(image, heat, alpha: float = 0.5, cmap: str = "inferno", title: str = "",
                   colorbar_label: str = "", vmin: float | None = None, vmax: float | None = None,
                   size: float = 4.0) -> bytes:
    """The image with the heatmap overlaid and a colour bar that gives its scale; PNG bytes."""
    from matplotlib import cm, colors
    from matplotlib.figure import Figure

    h = _to_numpy(heat).astype(np.float32)
    lo = float(h.min()) if vmin is None else vmin
    hi = float(h.max()) if vmax is None else vmax
    fig = Figure(figsize=(size * 1.25, size))
    ax = fig.add_subplot()
    ax.imshow(heatmap_overlay(image, h, alpha, cmap, lo, hi))
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    mappable = cm.ScalarMappable(norm=colors.Normalize(lo, hi), cmap=cmap)
    bar = fig.colorbar(mappable, ax=ax, fraction=0.046, pad=0.04)
    if colorbar_label:
        bar.set_label(colorbar_label, fontsize=9)
    return figure_png(fig)


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


def with_heading(picture: np.ndarray, text: str, height: int = 16) -> np.ndarray:
    """A picture under a one-line heading on white."""
    strip = Image.new("RGB", (picture.shape[1], height), (255, 255, 255))
    ImageDraw.Draw(strip).text((4, 2), text, fill=(0, 0, 0), font=_font())
    return np.concatenate([np.asarray(strip), to_uint8(picture)], axis=0)


def at_height(image, height: int | None = None) -> np.ndarray:
    """An image (uint8 array, [0, 1] array or tensor, 3 x H x W or 1 x 3 x H x W) as
    uint8 H x W x 3, resized to `height` (keeping its aspect) when given."""
    a = _to_numpy(image)
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


def gradient_picture(gradient) -> np.ndarray:
    """A 3 x H x W gradient as the papers show it: grey = 0, contrast set by the 99th
    percentile of |gradient| (the few largest values would otherwise wash out the rest)."""
    g = _to_numpy(gradient).astype(np.float32)
    scale = float(np.percentile(np.abs(g), 99)) or float(np.abs(g).max()) or 1.0
    return to_uint8(np.clip(g / (2 * scale) + 0.5, 0, 1))


def to_png(image) -> bytes:
    """uint8 (or [0,1] float) HxW / HxWx3 array, tensor or PIL image -> PNG bytes."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(to_uint8(image))
    buf = io.BytesIO()
    pil.save(buf, format="PNG", compress_level=1)  # speed over size: it is sent over a local socket
    return buf.getvalue()


def show(image):
    """Display an array as a picture in a notebook (a convenience for lessons)."""
    from IPython.display import Image as IPyImage

    return IPyImage(data=to_png(image))
