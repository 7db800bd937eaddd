"""Arrays -> pictures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnviz_widgets import render

from .helpers import png_to_array


def test_tile_grid_layout_and_padding():
    tiles = np.stack([np.full((4, 5), v, np.float32) for v in range(6)])
    grid = render.tile_grid(tiles, ncols=3, pad=1, normalize_mode="global")
    assert grid.shape == (2 * (4 + 1) + 1, 3 * (5 + 1) + 1, 3)
    assert (grid[0] == 255).all() and (grid[:, 0] == 255).all()  # padding
    assert grid[1, 1, 0] == 0 and grid[1 + 5, 1 + 2 * 6, 0] == 255  # first tile dark, last bright


def test_per_tile_normalisation_stretches_each_tile():
    tiles = np.stack([np.linspace(0, 1, 16).reshape(4, 4), np.linspace(0, 0.01, 16).reshape(4, 4)])
    per = render.tile_grid(tiles, ncols=2, pad=0, normalize_mode="per_tile")
    glob = render.tile_grid(tiles, ncols=2, pad=0, normalize_mode="global")
    assert per[:, 4:].max() == 255  # the faint tile is stretched
    assert glob[:, 4:].max() <= 4  # ... but not under one global scale


def test_tile_grid_accepts_channel_first_tensors_and_labels():
    t = torch.rand(3, 3, 8, 8)
    grid = render.tile_grid(t, labels=["a", "b", "c"], ncols=3)
    plain = render.tile_grid(t, ncols=3)
    assert grid.shape[1] == plain.shape[1] and grid.shape[0] == plain.shape[0] + 12


def test_symmetric_normalisation_maps_zero_to_grey():
    out = render.normalize(np.array([-2.0, 0.0, 1.0]), "symmetric")
    assert out[1] == pytest.approx(0.5) and out[0] == pytest.approx(0.0, abs=1e-6)


def test_heatmap_overlay_resizes_and_blends():
    img = np.zeros((32, 32, 3), np.uint8)
    heat = np.zeros((4, 4)); heat[0, 0] = 1
    out = render.heatmap_overlay(img, heat, alpha=1.0, cmap="gray", smooth=False)
    assert out.shape == (32, 32, 3)
    assert out[:8, :8].min() == 255 and out[8:, 8:].max() == 0
    half = render.heatmap_overlay(np.full((32, 32, 3), 200, np.uint8), heat, alpha=0.0)
    assert (half == 200).all()


def test_heatmap_figure_has_a_colour_bar():
    png = render.heatmap_figure(np.zeros((32, 32, 3), np.uint8), np.random.rand(8, 8), colorbar_label="p")
    arr = png_to_array(png)
    assert arr.shape[1] > arr.shape[0]  # the bar makes it wider than tall


def test_to_png_round_trip():
    a = (np.random.rand(9, 7, 3) * 255).astype(np.uint8)
    assert (png_to_array(render.to_png(a)) == a).all()


def test_bad_normalize_mode():
    with pytest.raises(ValueError, match="normalize mode"):
        render.normalize(np.zeros(3), "loud")


def test_channel_comparison_puts_the_optimised_images_beside_the_patches():
    # Distill's form for lesson 09's channel mode: each optimised image and each patch is a
    # tile of `size` pixels; the images' block comes first, then the patches' block.
    from cnnviz_widgets.render.ascent import channel_comparison

    images = torch.zeros(2, 3, 20, 20)
    images[0, 0] = 1.0  # red
    images[1, 2] = 1.0  # blue
    patches = [np.full((9, 9, 3), (0, 200, 0), np.uint8) for _ in range(4)]  # green, any size
    size = 32
    picture = channel_comparison(images, patches, values=[4.0, 3.0, 2.5, 1.0], size=size, per_row=3)
    assert picture.dtype == np.uint8 and picture.ndim == 3
    width = picture.shape[1]
    red = (picture[..., 0] > 200) & (picture[..., 1] < 50) & (picture[..., 2] < 50)
    blue = (picture[..., 2] > 200) & (picture[..., 0] < 50) & (picture[..., 1] < 50)
    green = (picture[..., 1] == 200) & (picture[..., 0] == 0) & (picture[..., 2] == 0)
    assert red.sum() == size * size and blue.sum() == size * size  # one tile each
    assert green.sum() == 4 * size * size  # every patch, enlarged to a tile
    # left to right: the two optimised images, then every patch
    assert np.nonzero(red)[1].max() < np.nonzero(blue)[1].min() < np.nonzero(green)[1].min()
    assert np.nonzero(green)[1].max() < width
    # three patches to a row: the fourth starts a second row
    ys = np.unique(np.nonzero(green)[0])
    bands = 1 + int((np.diff(ys) > 1).sum())
    assert bands == 2 and len(ys) == 2 * size
    # a single 3 x H x W image and a list of pictures work too
    one = channel_comparison(images[0], patches[:1], size=size)
    assert ((one[..., 0] > 200) & (one[..., 1] < 50)).sum() == size * size
    with pytest.raises(ValueError, match="at least one dataset patch"):
        channel_comparison(images, [], size=size)
    with pytest.raises(ValueError, match="one value per patch"):
        channel_comparison(images, patches, values=[1.0], size=size)


def test_render_keeps_no_module_level_state_and_keeps_its_names():
    """Every module of `render` holds only functions and constants (no `global`, no
    mutable value at module level); the names notebooks and apps use stay on `render`."""
    import ast
    from pathlib import Path

    from cnnviz_widgets import render

    folder = Path(render.__file__).parent
    found = []
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [f"{path.name}:{n.lineno} global" for n in ast.walk(tree) if isinstance(n, ast.Global)]
        for node in tree.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if names == ["__all__"]:
                    continue
                if isinstance(node.value, ast.Name):
                    continue  # another name for a function
                if not isinstance(node.value, (ast.Constant, ast.Tuple)) or not all(n.isupper() for n in names):
                    found.append(f"{path.name}:{node.lineno} {', '.join(names)}")
    assert not found, f"module-level state in render: {found}"
    for name in render.__all__:
        assert callable(getattr(render, name)), name
    assert render.text.label_font() is render.text.label_font()  # loaded once, cached
