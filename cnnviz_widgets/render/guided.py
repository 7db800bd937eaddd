"""Drawing guided backprop pictures of neurons (lesson 08): each neuron's receptive-field
patch next to its guided (or deconvnet, or plain) gradient, cut to the same field and
enlarged in whole pixels, so that which edge of the patch the picture keeps is plain
to see. The engine (`cnnviz_widgets.engine.guided.neuron_pictures`) computes them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import gradient_picture, resize_to, tile_grid, to_uint8, upscale

__all__ = ["enlarge", "neuron_pairs"]


def enlarge(picture, size: int) -> np.ndarray:
    """A uint8 picture as a `size` x `size` tile: enlarged in whole pixels first (each
    input pixel a visible square), then to the exact size; larger ones shrunk smoothly."""
    a = to_uint8(picture)
    if a.shape[0] < size:
        a = upscale(a, max(1, size // a.shape[0]))
    return resize_to(a, (size, size), smooth=a.shape[0] > size)


def neuron_pairs(pictures: Sequence, size: int = 128, per_row: int = 3, rule: str = "guided") -> np.ndarray:
    """For each `NeuronPicture` (see `engine.guided.neuron_pictures`), its receptive-field
    patch and its gradient picture (grey = 0) side by side, both `size` pixels wide;
    `per_row` pairs to a row, each labelled with the neuron's position and activation."""
    if not pictures:
        raise ValueError("neuron_pairs needs at least one neuron picture")
    if int(size) < 8 or int(per_row) < 1:
        raise ValueError(f"size must be at least 8 pixels and per_row at least 1, not {size} and {per_row}")
    tiles, labels = [], []
    for p in pictures:
        tiles += [enlarge(p.crop, size), enlarge(gradient_picture(p.gradient), size)]
        labels += [f"({p.position[0]},{p.position[1]}) act {p.activation:.3g}", rule]
    return tile_grid(tiles, ncols=2 * min(int(per_row), len(pictures)), normalize_mode="none", labels=labels, pad=3)
