"""Arrays -> pictures: tile grids, heatmap overlays, normalisation for display, PNG bytes.

The engine returns tensors and arrays; this package turns them into uint8 RGB arrays
and PNG bytes for the widgets (and for notebooks that want a quick look with
`show`). Grids and overlays are drawn with numpy and Pillow, which is fast enough for
the 100 ms interactions of the apps; matplotlib is used only for figures with axes
(colour bars, scatter plots) and always through its object API, never pyplot's
global state. No module here keeps state of its own.

==================  ============================================================
`arrays`            any tensor or array for display: `normalize`, `to_uint8`,
                    `resize_to`, `upscale`, `at_height`, `fit_tile`
`text`              the one font (`label_font`, loaded once), `with_heading`
`layout`            `tile_grid`, `side_by_side`, `stack`, `beside`
`colour`            `colorize`, `heatmap_overlay`, `gradient_picture`
`output`            `to_png`, `figure_png`, `heatmap_figure`, `show`
`filters`, ...      one module of pictures per lesson that needs its own:
                    `filters`, `activations`, `guided`, `ascent`, `attributions`,
                    `embedding`
==================  ============================================================

The common names are importable from here (``render.tile_grid``, ``render.to_png``).
"""

from __future__ import annotations

from .arrays import at_height, fit_tile, normalize, resize_to, to_uint8, upscale
from .colour import colorize, gradient_picture, heatmap_overlay
from .layout import beside, side_by_side, stack, tile_grid
from .output import figure_png, heatmap_figure, show, to_png
from .text import with_heading

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
