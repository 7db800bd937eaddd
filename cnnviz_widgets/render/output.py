"""Pictures out: PNG bytes (of an array or a matplotlib figure), a figure with a colour bar,
and a quick look in a notebook.

matplotlib is used only for figures with axes (colour bars, scatter plots), always
through its object API (`matplotlib.figure.Figure`), never pyplot's global state; it is
imported when a figure is drawn.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from .arrays import as_numpy, to_uint8
from .colour import heatmap_overlay

__all__ = ["to_png", "figure_png", "heatmap_figure", "show"]


def to_png(image) -> bytes:
    """uint8 (or [0,1] float) HxW / HxWx3 array, tensor or PIL image -> PNG bytes."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(to_uint8(image))
    buf = io.BytesIO()
    pil.save(buf, format="PNG", compress_level=1)  # speed over size: it is sent over a local socket
    return buf.getvalue()


def figure_png(fig, dpi: int = 100) -> bytes:
    """Render a matplotlib Figure (made with `matplotlib.figure.Figure`) to PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # deferred: matplotlib is heavy

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def heatmap_figure(image, heat, alpha: float = 0.5, cmap: str = "inferno", title: str = "",
                   colorbar_label: str = "", vmin: float | None = None, vmax: float | None = None,
                   size: float = 4.0) -> bytes:
    """The image with the heatmap overlaid and a colour bar that gives its scale; PNG bytes."""
    from matplotlib import cm, colors  # deferred: matplotlib is heavy
    from matplotlib.figure import Figure

    h = as_numpy(heat).astype(np.float32)
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


def show(image):
    """Display an array as a picture in a notebook (a convenience for lessons)."""
    from IPython.display import Image as IPyImage  # deferred: only in a notebook

    return IPyImage(data=to_png(image))
