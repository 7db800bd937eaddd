"""The picture code that moved from the apps to `render`: layouts, headings, image and
gradient pictures, the embedding map."""

from __future__ import annotations

import numpy as np
import torch

from cnnviz_widgets import render
from cnnviz_widgets.render.embedding import map_figure

from .helpers import png_to_array


def _solid(h, w, value):
    return np.full((h, w, 3), value, np.uint8)


def test_stack_and_beside_keep_sizes_and_pad_with_white():
    a, b = _solid(10, 30, 0), _solid(20, 12, 100)
    tall = render.stack([a, b], gap=4)
    assert tall.shape == (10 + 4 + 20, 30, 3)
    assert (tall[:10] == 0).all() and (tall[10:14] == 255).all() and (tall[14:, :12] == 100).all()
    assert (tall[14:, 12:] == 255).all()  # the narrower picture is padded on the right
    wide = render.beside([a, b], gap=4)
    assert wide.shape == (20, 30 + 4 + 12, 3)
    assert (wide[:10, :30] == 0).all() and (wide[10:, :30] == 255).all()  # top-aligned
    assert (wide[:, 34:] == 100).all()


def test_with_heading_adds_a_strip_of_text_above():
    picture = _solid(20, 120, 50)
    out = render.with_heading(picture, "pixel space", height=16)
    assert out.shape == (36, 120, 3) and (out[16:] == 50).all()
    strip = out[:16]
    assert (strip < 128).any() and (strip == 255).mean() > 0.7  # dark text on white


def test_at_height_reads_tensors_and_keeps_the_aspect():
    x = torch.rand(1, 3, 20, 30, generator=torch.Generator().manual_seed(0))
    same = render.at_height(x)
    np.testing.assert_array_equal(same, (x[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))
    assert render.at_height(x, 40).shape == (40, 60, 3)
    assert render.at_height(x[0] * 3 - 1).max() == 255 and render.at_height(x[0] * 3 - 1).min() == 0  # clipped


def test_fit_tile_enlarges_small_patches_in_whole_pixels():
    patch = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(render.fit_tile(patch, 64), np.repeat(np.repeat(patch, 4, 0), 4, 1))
    assert render.fit_tile(_solid(100, 100, 7), 64).shape == (64, 64, 3)


def test_gradient_picture_is_grey_at_zero_and_symmetric():
    g = np.zeros((3, 8, 8), np.float32)
    g[0, 0, 0], g[0, 0, 1] = 1.0, -1.0
    g[1, 1:, :] = np.linspace(-0.5, 0.5, 56).reshape(7, 8)
    picture = render.gradient_picture(torch.from_numpy(g))
    assert picture.shape == (8, 8, 3) and picture.dtype == np.uint8
    assert picture[0, 3, 2] in (127, 128)  # a zero gradient is mid-grey
    assert int(picture[0, 0, 0]) + int(picture[0, 1, 0]) in (254, 255, 256)  # +g and -g mirror around grey
    # contrast from the 99th percentile of |g|: the few largest values saturate
    assert picture[0, 0, 0] == 255 and picture[0, 1, 0] == 0


def test_map_figure_draws_points_thumbnails_and_the_selected_item():
    rng = np.random.default_rng(1)
    coords = rng.normal(size=(30, 2))
    labels = np.arange(30) % 3
    thumb = _solid(28, 28, 200)
    png = map_figure(coords, labels, ["a", "b", "c"], thumbs=[(0, thumb)], selected=(4, _solid(40, 40, 10)),
                     title="test map")
    picture = png_to_array(png)
    assert picture.shape[1] > picture.shape[0] > 200
    plain = png_to_array(map_figure(coords, labels, ["a", "b", "c"]))
    assert plain.shape != picture.shape or (plain != picture).any()
