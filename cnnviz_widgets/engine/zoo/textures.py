"""The style and texture images bundled with the kit (`assets/textures/`, provenance
and licences in its README.md), for lesson 14 (texture synthesis and style transfer).

``brick`` comes from scikit-image's data (CC0); ``mosaic`` and ``waves`` are drawn by
this module (`draw_texture`), so they are the kit's own work (CC0, like the kit's
pictures); the bundled files are what `draw_texture` gives, a test checks it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.images import load_image

__all__ = ["TEXTURES_DIR", "TEXTURES", "texture_names", "texture_image", "texture_info", "draw_texture"]

#: Folder holding the bundled textures and their README (provenance, licences).
TEXTURES_DIR = Path(__file__).resolve().parents[2] / "assets" / "textures"

#: name -> (file, what it is, where it comes from, licence)
TEXTURES: dict[str, tuple[str, str, str, str]] = {
    "mosaic": ("mosaic.png", "coloured tiles with dark joints (a Voronoi mosaic)",
               "drawn by the kit: cnnviz_widgets.engine.zoo.textures.draw_texture('mosaic')", "CC0"),
    "waves": ("waves.png", "wavy bands of colour",
              "drawn by the kit: cnnviz_widgets.engine.zoo.textures.draw_texture('waves')", "CC0"),
    "brick": ("brick.png", "a brick wall (grey)",
              "scikit-image 0.26.0, skimage.data.brick() (from CC0Textures, Bricks25), resized to 192 px", "CC0"),
}

SIZE = 192


def texture_names() -> list[str]:
    """Names of the bundled textures (``['mosaic', 'waves', 'brick']``)."""
    return list(TEXTURES)


def _check(name: str) -> tuple[str, str, str, str]:
    if name not in TEXTURES:
        raise ValueError(f"there is no texture called {name!r}; the textures are: {', '.join(TEXTURES)}.")
    return TEXTURES[name]


@lru_cache(maxsize=None)
def _cached(name: str) -> Image.Image:
    file = _check(name)[0]
    return load_image(TEXTURES_DIR / file, name=file)


def texture_image(name: str) -> Image.Image:
    """The bundled texture *name* as a fresh RGB PIL image (192 x 192)."""
    return _cached(name).copy()


def texture_info(name: str) -> dict:
    """``file``, ``title``, ``source``, ``licence`` of texture *name*."""
    file, title, source, licence = _check(name)
    return {"name": name, "file": file, "title": title, "source": source, "licence": licence}


def draw_texture(name: str, size: int = SIZE) -> Image.Image:
    """Draw one of the kit's own textures (``"mosaic"`` or ``"waves"``), the same every time."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64) / size
    rng = np.random.default_rng(14)
    if name == "mosaic":
        # Voronoi tiles: each pixel takes its nearest seed's colour; joints where two seeds are nearly as near.
        grid = (np.stack(np.mgrid[0:8, 0:8], axis=-1).reshape(-1, 2) + 0.5) / 8
        seeds = grid + rng.uniform(-0.04, 0.04, grid.shape)  # a jittered grid: no two seeds nearly coincide
        palette = np.array([[0.90, 0.30, 0.15], [0.95, 0.75, 0.20], [0.20, 0.45, 0.80],
                            [0.25, 0.65, 0.35], [0.85, 0.85, 0.80], [0.55, 0.25, 0.60]])
        colours = palette[rng.integers(0, len(palette), len(seeds))]
        d = np.stack([np.hypot(rows - r, cols - c) for r, c in seeds])
        nearest = np.sort(d, axis=0)
        picture = colours[d.argmin(axis=0)]
        picture[(nearest[1] - nearest[0]) < 0.012] = 0.1
    elif name == "waves":
        phase = 2 * np.pi * (6 * rows + 0.6 * np.sin(2 * np.pi * 3 * cols))
        band = 0.5 + 0.5 * np.sin(phase)
        picture = np.stack([0.15 + 0.8 * band, 0.25 + 0.5 * band ** 2, 0.85 - 0.6 * band], axis=-1)
    else:
        raise ValueError(f"the kit draws 'mosaic' and 'waves', not {name!r}")
    return Image.fromarray((picture.clip(0, 1) * 255).round().astype(np.uint8))
