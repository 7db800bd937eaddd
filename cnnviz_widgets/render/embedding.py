"""Drawing a 2-D map of a feature space (lesson 03): the points of a PCA or t-SNE
embedding coloured by class, with thumbnails, as the lecture shows it.

The engine (`cnnviz_widgets.engine.inspect.embedding`) computes the coordinates; this turns
them into a picture.
"""

from __future__ import annotations

import numpy as np

from .output import figure_png

__all__ = ["map_figure"]


def map_figure(coords: np.ndarray, labels: np.ndarray, classes: list[str],
               thumbs: list[tuple[int, np.ndarray]] = (), selected: tuple[int, np.ndarray] | None = None,
               title: str = "") -> bytes:
    """The lecture's picture as PNG bytes: points coloured by class with a legend,
    thumbnails at some points (framed in their class colour), and the selected item
    circled on the map and shown at full size beside it."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    colours = colormaps["tab10" if len(classes) <= 10 else "tab20"]
    fig = Figure(figsize=(9.5, 6.2))
    grid = fig.add_gridspec(2, 2, width_ratios=(3.2, 1), height_ratios=(1.1, 1))
    ax = fig.add_subplot(grid[:, 0])
    for c, name in enumerate(classes):
        on = labels == c
        if on.any():
            ax.scatter(coords[on, 0], coords[on, 1], s=9, color=colours(c % colours.N), label=name, alpha=0.8)
    for i, picture in thumbs:
        box = AnnotationBbox(OffsetImage(picture, zoom=1.0), tuple(coords[i]), frameon=True, pad=0.1,
                             bboxprops={"edgecolor": colours(int(labels[i]) % colours.N), "linewidth": 1.5})
        ax.add_artist(box)
    if selected is not None:
        i = selected[0]
        ax.scatter([coords[i, 0]], [coords[i, 1]], s=260, facecolors="none", edgecolors="black", linewidths=2.0, zorder=5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    legend = fig.add_subplot(grid[0, 1])
    legend.set_axis_off()
    legend.legend(*ax.get_legend_handles_labels(), loc="upper left", fontsize=9, markerscale=2, frameon=False)
    side = fig.add_subplot(grid[1, 1])
    side.set_axis_off()
    if selected is not None:
        i, picture = selected
        side.imshow(picture)
        side.set_title(f"item {i}: {classes[int(labels[i])]}", fontsize=10)
    return figure_png(fig, dpi=80)
