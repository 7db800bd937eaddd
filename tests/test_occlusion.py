"""Lesson 06, occlusion: positions, fills, batching, restoring the model, bad input,
and ground truth from the shapes masks."""

from __future__ import annotations

import html

import numpy as np
import pytest
import torch

from cnnviz_widgets.engine.attribution import occlusion as occ
from cnnviz_widgets.engine.core.progress import Progress
from cnnviz_widgets.engine.zoo.shapes_net import WEIGHTS_PATH
from cnnviz_widgets.engine.core.targets import ClassLogit, ClassProbability, Neuron, Target
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
    m = occ.occlusion(net, x, ClassLogit(7), patch=112, stride=112, batch_size=3)
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
    assert all(isinstance(p, Progress) for p in steps)
    assert [p.done for p in steps] == [False] * (len(steps) - 1) + [True]
    final = steps[-1].result
    assert isinstance(final, occ.OcclusionMap) and final.ended == "done" and not np.isnan(final.heat).any()
    progress = steps[:-1]
    if method == "naive":  # one report per batch, the map so far as the result
        assert final.extra["method"] == "naive"
        assert [p.step for p in progress] == [4, 8, 9] and all(p.total == 9 for p in progress)
        assert np.isnan(progress[0].result.heat).sum() == 5 and progress[0].result.ended == ""
    else:  # incremental: whole groups of at least 64 positions per report, so its grouping pays off
        assert final.extra["method"] == "incremental"
        sizes = np.diff([0] + [p.step for p in progress])
        assert progress[-1].step == 169 and all(p.total == 169 for p in progress)
        assert len(progress) >= 2 and (sizes[:-1] >= 64).all()
        assert [int((~np.isnan(p.result.heat)).sum()) for p in progress] == [p.step for p in progress]


@pytest.mark.parametrize("method", ["naive", "auto"])
def test_should_stop_ends_with_a_stopped_partial_map(random_alexnet, method):
    x = torch.rand(1, 3, 224, 224)
    asked = []

    def stop_after_first_piece():
        asked.append(1)
        return len(asked) > 1

    steps = list(occ.occlusion_iter(random_alexnet, x, 0, patch=32, stride=16, batch_size=4, method=method,
                                    should_stop=stop_after_first_piece))
    assert len(steps) == 2 and steps[-1].done
    stopped = steps[-1].result
    assert stopped.ended == "stopped" and steps[-1].step == steps[0].step < steps[-1].total == 169
    scored = ~np.isnan(stopped.heat)
    assert scored.sum() == steps[0].step
    # What was scored is the exact map's value there.
    full = occ.occlusion(random_alexnet, x, 0, patch=32, stride=16)
    assert np.allclose(stopped.heat[scored], full.heat[scored], rtol=1e-4, atol=1e-6)
    assert stopped.lowest() in {tuple(int(v) for v in rc) for rc in np.argwhere(scored)}


def test_targets_probability_logit_and_a_neuron(random_alexnet):
    """A class (index or name) maps its probability, `ClassLogit` its logit; a `Neuron`
    target reads its layer (naive path); incremental insists on logits."""
    torch.manual_seed(3)
    x = torch.rand(1, 3, 224, 224)
    settings = dict(patch=112, stride=56)
    by_index = occ.occlusion(random_alexnet, x, 281, **settings)
    by_name = occ.occlusion(random_alexnet, x, random_alexnet.classes[281], **settings)
    logit = occ.occlusion(random_alexnet, x, ClassLogit(281), **settings)
    assert by_index.target == ClassProbability(281) and by_name.target == ClassProbability(281)
    assert np.array_equal(by_index.heat, by_name.heat)
    box = by_index.box(1, 2)
    with torch.no_grad():
        out = random_alexnet(occ.occluded_image(x, torch.full_like(x, 0.5), box))
    assert by_index.heat[1, 2] == pytest.approx(float(out.softmax(-1)[0, 281]), rel=1e-4)
    assert logit.heat[1, 2] == pytest.approx(float(out[0, 281]), rel=1e-4, abs=1e-5)
    neuron = Neuron("conv5", 3, (6, 6))
    nmap = occ.occlusion(random_alexnet, x, neuron, **settings)
    assert nmap.extra["method"] == "naive"
    with torch.no_grad():
        expected = float(random_alexnet.forward_to(occ.occluded_image(x, torch.full_like(x, 0.5), box), "conv5")
                         [0, 3, 6, 6])
    assert nmap.heat[1, 2] == pytest.approx(expected, rel=1e-4, abs=1e-5)
    with pytest.raises(ValueError, match="conv5"):
        occ.occlusion(random_alexnet, x, neuron, method="incremental", **settings)
    with pytest.raises(ValueError, match="channel 999 is out of range"):
        occ.occlusion(random_alexnet, x, Neuron("conv5", 999), **settings)


def test_model_restored_also_on_error(random_alexnet):
    net = random_alexnet
    x = torch.rand(1, 3, 224, 224)
    with assert_restored(net):
        occ.occlusion(net, x, 1, patch=112, stride=112)
    with assert_restored(net):
        with pytest.raises(ValueError, match="larger than the image"):
            occ.occlusion(net, x, 1, patch=300)

    class FailsMidRun(Target):
        """Scores the clean image, then fails on the first batch of patches."""
        layer = None
        calls = 0

        def __call__(self, output):
            self.calls += 1
            if self.calls > 1:
                raise RuntimeError("target failed")
            return output[:, 0]

    for method in ("naive", "incremental"):
        with assert_restored(net):
            with pytest.raises(RuntimeError, match="target failed"):
                occ.occlusion(net, x, FailsMidRun(), patch=112, stride=112, method=method)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(patch=65), ValueError, "patch 65 is larger than the image"),
    (dict(patch=0), ValueError, "patch 0 is out of range"),
    (dict(patch=16.0), TypeError, "patch is a whole number"),
    (dict(stride=0), ValueError, "stride 0 is out of range"),
    (dict(stride=-4), ValueError, "stride -4 is out of range"),
    (dict(target=99999), ValueError, "class index 99999 is out of range"),
    (dict(target="no such class"), ValueError, "no class named"),
    (dict(fill="purple"), ValueError, "fill must be"),
    (dict(fill=1.5), ValueError, "fill 1.5 is out of range"),
    (dict(batch_size=0), ValueError, "batch_size 0 is out of range"),
    (dict(method="quick"), ValueError, "method must be one of"),
    (dict(coarse_to_fine=2), ValueError, "coarse_to_fine 2 is out of range"),
])
def test_bad_settings_name_the_problem(random_alexnet, kwargs, error, words):
    x = torch.rand(1, 3, 64, 64)
    args = dict(target=0, patch=16, stride=8)
    args.update(kwargs)
    target = args.pop("target")
    with pytest.raises(error, match=words):
        occ.occlusion(random_alexnet, x, target, **args)


def test_the_iter_twin_checks_its_settings_when_called(random_alexnet):
    """A bad setting raises at the call, before the generator is started (an app checks in
    its own thread, then hands the generator to its worker)."""
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="patch 0 is out of range"):
        occ.occlusion_iter(random_alexnet, x, 0, patch=0)
    with pytest.raises(ValueError, match="fill must be"):
        occ.occlusion_iter(random_alexnet, x, 0, patch=16, fill="purple")
    steps = occ.occlusion_iter(random_alexnet, x, 0, patch=32, stride=32)
    assert [p.done for p in steps] == [False, True]


def test_numpy_integers_are_settings_too(random_alexnet):
    x = torch.rand(1, 3, 64, 64)
    a = occ.occlusion(random_alexnet, x, np.int64(3), patch=np.int32(32), stride=np.int64(16), batch_size=np.int16(4))
    b = occ.occlusion(random_alexnet, x, 3, patch=32, stride=16, batch_size=4)
    assert a.patch == 32 and type(a.patch) is int and np.array_equal(a.heat, b.heat)


def test_a_kept_plan_is_reused_and_checked(random_alexnet):
    """A plan belongs to (network, image size, patch, stride), not to an image: reused
    for other images, fills and targets it gives the same maps as a fresh one; another
    setting is refused by name."""
    torch.manual_seed(4)
    x1, x2 = torch.rand(1, 3, 224, 224), torch.rand(1, 3, 224, 224)
    plan = occ.OcclusionPlan(random_alexnet, (224, 224), 48, 44)
    assert plan.method == "incremental" and plan.shape == (5, 5) and 0 < plan.work_fraction() < 1
    for x, fill, target in ((x1, "grey", 1), (x2, "blur", ClassLogit(9)), (x1, 0.3, 5)):
        kept = occ.occlusion(random_alexnet, x, target, patch=48, stride=44, fill=fill, plan=plan)
        fresh = occ.occlusion(random_alexnet, x, target, patch=48, stride=44, fill=fill)
        assert np.allclose(kept.heat, fresh.heat, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="plan is for another setting"):
        occ.occlusion(random_alexnet, x1, 1, patch=48, stride=40, plan=plan)
    with pytest.raises(ValueError, match="plan is for another setting"):
        occ.occlusion(random_alexnet, torch.rand(1, 3, 200, 224), 1, patch=48, stride=44, plan=plan)


def test_runs_own_their_state_two_at_once_on_one_plan(random_alexnet):
    """Two maps computed interleaved on one plan (as two apps or threads might) each
    equal the map computed alone: a run's clean activations are its own."""
    torch.manual_seed(5)
    x1, x2 = torch.rand(1, 3, 224, 224), torch.rand(1, 3, 224, 224)
    plan = occ.OcclusionPlan(random_alexnet, 224, 32, 16)
    a = occ.occlusion_iter(random_alexnet, x1, ClassLogit(2), patch=32, stride=16, plan=plan)
    b = occ.occlusion_iter(random_alexnet, x2, ClassLogit(2), patch=32, stride=16, fill="mean", plan=plan)
    last_a = last_b = None
    for pa, pb in zip(a, b):
        last_a, last_b = pa, pb
    alone_a = occ.occlusion(random_alexnet, x1, ClassLogit(2), patch=32, stride=16)
    alone_b = occ.occlusion(random_alexnet, x2, ClassLogit(2), patch=32, stride=16, fill="mean")
    assert last_a.done and last_b.done
    scale = float(np.abs(alone_a.heat).max())
    assert np.abs(last_a.result.heat - alone_a.heat).max() <= 1e-5 * scale
    assert np.abs(last_b.result.heat - alone_b.heat).max() <= 1e-5 * scale
    assert np.abs(alone_a.heat - alone_b.heat).max() > 1e-3 * scale  # different images, different maps


def test_attribution_form_is_the_per_pixel_drop_per_image(random_alexnet):
    """`occlusion_attribution` (lesson 13): one per-pixel map per image, each the
    per-pixel form of that image's map for its own target."""
    torch.manual_seed(6)
    x = torch.rand(2, 3, 224, 224)
    att = occ.occlusion_attribution(random_alexnet, x, [3, 7], patch=112, stride=56)
    assert att.method == "occlusion" and att.map.shape == (2, 224, 224) and att.per_channel is None
    for i, cls in enumerate((3, 7)):
        one = occ.occlusion(random_alexnet, x[i:i + 1], cls, patch=112, stride=56)
        assert np.allclose(att.map[i].numpy(), occ.occlusion_to_pixels(one), rtol=1e-5, atol=1e-8)
    logit = occ.occlusion_attribution(random_alexnet, x[:1], ClassLogit(3), patch=112, stride=56)
    one = occ.occlusion(random_alexnet, x[:1], ClassLogit(3), patch=112, stride=56)
    assert np.allclose(logit.map[0].numpy(), occ.occlusion_to_pixels(one), rtol=1e-5, atol=1e-7)


def test_pixels_form_averages_the_drop_over_covering_windows():
    heat = np.array([[0.2, 0.5], [0.5, 0.5]], dtype=np.float32)
    boxes = np.array([[(0, 0, 4, 4), (0, 2, 4, 6)], [(2, 0, 6, 4), (2, 2, 6, 6)]])
    m = occ.OcclusionMap(heat=heat, boxes=boxes, clean=0.5, target=ClassProbability(0), patch=4, stride=2,
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
        x = torch.as_tensor(np.array(images[i])).permute(2, 0, 1)[None].float() / 255
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
    exact = occ.occlusion(random_alexnet, x, ClassLogit(3), patch=64, stride=32)
    steps = list(occ.occlusion_iter(random_alexnet, x, ClassLogit(3), patch=64, stride=32, coarse_to_fine=1.0))
    full = steps[-1].result
    assert full.extra["scored"] == full.heat.size == exact.heat.size
    assert np.allclose(full.heat, exact.heat, atol=1e-4)
    # Progress: the coarse pass (4 x 4 of the 6 x 6 grid) first, then the rest; the
    # fraction done never goes back.
    assert steps[0].step == 16 and steps[-2].step == steps[-2].total == 36
    fractions = [p.step / p.total for p in steps[:-1]]
    assert fractions == sorted(fractions)
    assert occ.occlusion_error(full, exact)["max_abs_error"] < 1e-4
    half = occ.occlusion(random_alexnet, x, ClassLogit(3), patch=64, stride=32, coarse_to_fine=np.float32(0.5))
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
    assert (app.row.value, app.col.value) == app.omap.lowest() and app.omap.target == ClassProbability(
        random_alexnet.class_index(app.omap.target.index))
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
    assert app.error == "" and app.omap.target == ClassProbability(random_alexnet.class_index("tabby"))
    plan = app.plan
    app.output.value = "logit"       # another target: the same plan, logits mapped
    app.runner.wait()
    assert app.error == "" and app.omap.target == ClassLogit(random_alexnet.class_index("tabby"))
    assert app.plan is plan and app.omap.clean == pytest.approx(
        float(random_alexnet(app.x)[0, app.omap.target.index]), rel=1e-4)
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
