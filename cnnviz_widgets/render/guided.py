"""Drawing guided backprop pictures of neurons (lesson 08): each neuron's receptive-field
patch next to its guided (or deconvnet, or plain) gradient, cut to the same field and
enlarged in whole pixels, so that which edge of the patch the picture keeps is plain
to see. The engine (`cnnviz_widgets.engine.attribution.guided.neuron_pictures`) computes them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .arrays import fit_tile
from .colour import gradient_picture
from .layout import tile_grid

__all__ = ["neuron_pairs"]


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
        tiles += [fit_tile(p.crop, size), fit_tile(gradient_picture(p.gradient), size)]
        labels += [f"({p.position[0]},{p.position[1]}) act {p.activation:.3g}", rule]
    return tile_grid(tiles, ncols=2 * min(int(per_row), len(pictures)), normalize_mode="none", labels=labels, pad=3)
