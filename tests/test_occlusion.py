"""Lesson 06, occlusion: positions, fills, batching, restoring the model, bad input,
and ground truth from the shapes masks."""

from __future__ import annotations

import html

import numpy as np
import pytest
import torch

from cnnviz_widgets.engine import occlusion as occ
from cnnviz_widgets.engine.shapes_net import WEIGHTS_PATH
from tests.helpers import assert_restored

needs_shapes_weights = pytest.mark.skipif(not WEIGHTS_PATH.is_file(), reason="shapes weights not committed yet")


@pytest.fixture(scope="module")
def image64():
    torch.manual_seed(0)
    return torch.rand(1, 3, 64, 64)


def test_positions_cover_the_far_border():
    assert occ.positions(64, 16, 8) == [0, 8, 16, 24, 32, 40, 48]
    # 64 - 20 = 44 is not a multiple of 16: the last window is moved to end at the border.
    starts = occ.positions(64, 20, 16)
    assert starts[0] == 0 and starts[-1] == 44 and starts[-1] + 20 == 64
    assert occ.positions(10, 10, 3) == [0]


def test_heat_is_the_target_output_with_the_patch_in_place(random_alexnet):
    net = random_alexnet
    torch.manual_seed(1)
    x = torch.rand(1, 3, 224, 224)
    m = occ.occlusion(net, x, 7, patch=112, stride=112, output="logit", batch_size=3)
    assert m.heat.shape == (2, 2) and m.boxes.shape == (2, 2, 4)
    for r in range(2):
        for c in range(2):
            one = occ.occluded_image(x, torch.full_like(x, 0.5), m.box(r, c))
            with torch.no_grad():
                expected = float(net(one)[0, 7])
            assert m.heat[r, c] == pytest.approx(expected, rel=1e-4, abs=1e-5)
    with torch.no_grad():
        assert m.clean == pytest.approx(float(net(x)[0, 7]), rel=1e-5)


def test_fills(image64):
    x = image64
    grey = occ.fill_image(x, "grey", 16)
    assert torch.all(grey == 0.5)
    mean = occ.fill_image(x, "mean", 16)
    assert torch.allclose(mean[0, :, 5, 7], x[0].mean(dim=(1, 2)))
    blur = occ.fill_image(x, "blur", 16)
    assert blur.shape == x.shape and blur.std() < 0.5 * x.std()  # the detail is gone
    assert torch.all(occ.fill_image(x, 0.2, 16) == 0.2)
    with pytest.raises(ValueError, match="fill"):
        occ.fill_image(x, "purple", 16)
    with pytest.raises(ValueError, match="grey level"):
        occ.fill_image(x, 3.0, 16)


@pytest.mark.parametrize("method", ["naive", "auto"])
def test_progress_then_map_and_grad_mode_is_left_alone(random_alexnet, method):
    x = torch.rand(1, 3, 224, 224)
    steps = []
    patch, stride = (112, 56) if method == "naive" else (32, 16)
    for item in occ.occlusion_iter(random_alexnet, x, 0, patch=patch, stride=stride, batch_size=4, method=method):
        assert torch.is_grad_enabled()  # no_grad never leaks out across a yield
        steps.append(item)
    assert isinstance(steps[-1], occ.OcclusionMap)
    progress = steps[:-1]
    if method == "naive":  # one report per batch
        assert [p.step for p in progress] == [4, 8, 9] and all(p.total == 9 for p in progress)
        assert np.isnan(progress[0].heat).sum() == 5
    else:  # incremental: at least 64 positions per report, so its grouping pays off
        assert [p.step for p in progress] == [64, 128, 169] and all(p.total == 169 for p in progress)
    assert not np.isnan(progress[-1].heat).any()


def test_model_restored_also_on_error(random_alexnet):
    net = random_alexnet
    x = torch.rand(1, 3, 224, 224)
    with assert_restored(net):
        occ.occlusion(net, x, 1, patch=112, stride=112)
    with assert_restored(net):
        with pytest.raises(ValueError, match="larger than the image"):
            occ.occlusion(net, x, 1, patch=300)

    def failing(*args):  # a scorer that dies mid-run
        raise RuntimeError("scorer failed")

    with assert_restored(net):
        with pytest.raises(RuntimeError):
            occ.occlusion(net, x, 1, patch=112, stride=112, scorer=failing)


@pytest.mark.parametrize("kwargs, words", [
    (dict(patch=65), "patch size 65 is larger than the image"),
    (dict(patch=0), "patch size"),
    (dict(stride=0), "stride"),
    (dict(stride=-4), "stride"),
    (dict(target=99999), "class index 99999 is out of range"),
    (dict(output="softmax"), "output"),
    (dict(batch_size=0), "batch_size"),
])
def test_bad_settings_name_the_problem(random_alexnet, kwargs, words):
    x = torch.rand(1, 3, 64, 64)
    args = dict(target=0, patch=16, stride=8)
    args.update(kwargs)
    target = args.pop("target")
    with pytest.raises(ValueError, match=words):
        occ.occlusion(random_alexnet, x, target, **args)


def test_pixels_form_averages_the_drop_over_covering_windows():
    heat = np.array([[0.2, 0.5], [0.5, 0.5]], dtype=np.float32)
    boxes = np.array([[(0, 0, 4, 4), (0, 2, 4, 6)], [(2, 0, 6, 4), (2, 2, 6, 6)]])
    m = occ.OcclusionMap(heat=heat, boxes=boxes, clean=0.5, target=0, output="prob", patch=4, stride=2,
                         fill="grey", image_size=(6, 6))
    px = occ.occlusion_to_pixels(m)
    assert px[0, 0] == pytest.approx(0.3)       # covered by the first window only
    assert px[2, 2] == pytest.approx(0.3 / 4)   # covered by all four
    assert px[5, 5] == pytest.approx(0.0)


@needs_shapes_weights
def test_lowest_position_is_on_the_object(shapes_net, shapes_data):
    """Ground truth: hiding the object should hurt its class most."""
    images, labels, masks = shapes_data.arrays()
    n, hits = 30, 0
    for i in range(n):
        x = torch.from_numpy(images[i]).permute(2, 0, 1)[None].float() / 255
        m = occ.occlusion(shapes_net, x, int(labels[i]), patch=16, stride=4)
        top, left, bottom, right = m.box(*m.lowest())
        hits += bool(masks[i][top:bottom, left:right].mean() > 0.25) or bool(masks[i][(top + bottom) // 2, (left + right) // 2])
    assert hits / n >= 0.8, f"lowest position on the object in only {hits}/{n} images"


@needs_shapes_weights
def test_coarse_to_fine_is_exact_where_scored_and_close_elsewhere(shapes_net, shapes_data):
    """The approximate mode: scored cells equal the exact map, fewer cells are scored,
    the lowest position still lands on the object (mask ground truth), and the
    interpolated rest stays close (median relative error)."""
    images, labels, masks = shapes_data.arrays()
    n, hits, errors = 12, 0, []
    for i in range(n):
        x = torch.from_numpy(images[i]).permute(2, 0, 1)[None].float() / 255
        exact = occ.occlusion(shapes_net, x, int(labels[i]), patch=12, stride=4)
        approx = occ.occlusion(shapes_net, x, int(labels[i]), patch=12, stride=4, coarse_to_fine=0.2)
        assert approx.extra["approximate"] and approx.extra["positions"] == exact.heat.size
        assert approx.extra["scored"] < 0.75 * exact.heat.size
        err = occ.occlusion_error(approx, exact)
        errors.append(err["relative_error"])
        assert err["scored_fraction"] == pytest.approx(approx.extra["scored"] / exact.heat.size)
        # Every coarse cell (every second row and column) is scored, so exact there.
        assert np.allclose(approx.heat[::2, ::2], exact.heat[::2, ::2], atol=1e-5)
        top, left, bottom, right = approx.box(*approx.lowest())
        hits += bool(masks[i][top:bottom, left:right].mean() > 0.25) or bool(masks[i][(top + bottom) // 2, (left + right) // 2])
    assert hits / n >= 0.8, f"approximate lowest position on the object in only {hits}/{n} images"
    assert float(np.median(errors)) < 0.1, errors


def test_coarse_to_fine_of_one_scores_everything_and_bad_values_raise(random_alexnet):
    x = torch.rand(1, 3, 224, 224)
    exact = occ.occlusion(random_alexnet, x, 3, patch=64, stride=32, output="logit")
    steps = list(occ.occlusion_iter(random_alexnet, x, 3, patch=64, stride=32, output="logit", coarse_to_fine=1.0))
    full = steps[-1]
    assert full.extra["scored"] == full.heat.size == exact.heat.size
    assert np.allclose(full.heat, exact.heat, atol=1e-4)
    # Progress: the coarse pass (4 x 4 of the 6 x 6 grid) first, then the rest; the
    # fraction done never goes back.
    assert steps[0].step == 16 and steps[-2].step == steps[-2].total == 36
    fractions = [p.step / p.total for p in steps[:-1]]
    assert fractions == sorted(fractions)
    assert occ.occlusion_error(full, exact)["max_abs_error"] < 1e-4
    half = occ.occlusion(random_alexnet, x, 3, patch=64, stride=32, output="logit", coarse_to_fine=np.float32(0.5))
    assert half.extra["approximate"]
    for bad in (0, -0.5, 1.5, "half", True):
        with pytest.raises(ValueError, match="coarse_to_fine"):
            occ.occlusion(random_alexnet, x, 3, patch=64, stride=32, coarse_to_fine=bad)
    with pytest.raises(ValueError, match="different grids"):
        occ.occlusion_error(occ.occlusion(random_alexnet, x, 3, patch=112, stride=56), exact)


# --- the app (headless) ---------------------------------------------------------------

def test_occlusion_app_maps_browses_and_survives_bad_input(random_alexnet):
    from cnnviz_widgets.widgets import OcclusionApp
    from tests.helpers import png_to_array

    app = OcclusionApp(random_alexnet, image="cat", patch=112, stride=56)
    app.runner.wait()
    assert app.error == "" and app.omap is not None and app.omap.heat.shape == (3, 3)
    assert (app.row.value, app.col.value) == app.omap.lowest()
    assert "Dark = the patch mattered" in app.info.value
    first = app.view.value
    cached = app.omap
    app.opacity.value = 0.1          # answers from the cache: same map object, new picture
    assert app.omap is cached and app.view.value != first
    app.row.value, app.col.value = 0, 2
    assert "row 0, col 2" in app.info.value and app.omap is cached
    app.runner.wait()  # what the network predicts with the patch there: a forward pass, in the Runner
    hidden = occ.occluded_image(app.x, occ.fill_image(app.x, cached.fill, cached.patch), cached.box(0, 2))
    best, p = random_alexnet.predict(hidden)[0]
    assert f"the top 5:<ol><li>{html.escape(best)}: {p:.1%}</li>" in app.info.value
    assert png_to_array(app.view.value).shape[1] > png_to_array(app.view.value).shape[0]  # map and occluded image
    app.class_picker.value = "no such class"
    app.runner.wait()
    assert "no class named" in app.error and "no such class" in app.message.value
    app.class_picker.value = "tabby"
    app.runner.wait()
    assert app.error == "" and app.omap.target == random_alexnet.class_index("tabby")
    app.fill.value = "blur"
    app.runner.wait()
    assert app.error == "" and app.omap.fill == "blur"
    app.stride.value = 28            # a 5 x 5 grid, where a coarse pass saves work
    app.runner.wait()
    exact = app.omap.heat.copy()
    app.approximate.value = True     # coarse to fine: fewer positions scored, same grid
    app.runner.wait()
    assert app.error == "" and app.omap.extra["approximate"]
    assert app.omap.heat.shape == exact.shape and app.omap.extra["scored"] < exact.size
    assert "positions scored" in app.info.value
    assert np.allclose(app.omap.heat[::2, ::2], exact[::2, ::2], atol=1e-5)
