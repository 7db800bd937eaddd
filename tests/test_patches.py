"""Lesson 05: maximally activating patches (engine, then app)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnviz_widgets.engine.core.cache import clear_caches
from cnnviz_widgets.engine.inspect import patches as P
from cnnviz_widgets.engine.zoo.data import Item, ListDataset, load_dataset
from tests.helpers import assert_restored, close_to_scale


@pytest.fixture(scope="module")
def small_data():
    return load_dataset("shapes", n=14, seed=7)


def _all_activations(net, dataset, layer):
    """The brute-force reference: every image's whole activation tensor at `layer`."""
    with torch.no_grad(), net.guard():
        x = torch.cat([net.preprocess(dataset[i].image) for i in range(len(dataset))])
        a = net.forward_to(x, layer)
    return a if a.dim() == 4 else a[:, :, None, None]


@pytest.mark.parametrize("layer", ["conv2", "conv5", "fc6"])
def test_top_k_matches_brute_force(random_alexnet, small_data, layer):
    clear_caches()
    # batch_size 4 over 14 images: the running top-k is merged across four batches.
    scan = P.max_activating_patches(random_alexnet, small_data, layer, k=5, batch_size=4, cache=False)
    acts = _all_activations(random_alexnet, small_data, layer)
    n, c, h, w = acts.shape
    expected = acts.permute(1, 0, 2, 3).reshape(c, -1).topk(5, dim=1).values
    assert scan.values.shape == (c, 5)
    close_to_scale(scan.values, expected, 1e-5)
    # Each position holds the value reported for it, in the full tensor.
    at = acts[scan.image, torch.arange(c)[:, None], scan.row, scan.col]
    close_to_scale(at, scan.values, 1e-5)
    assert bool((scan.values[:, :-1] >= scan.values[:, 1:]).all()), "top-k not sorted strongest first"
    if layer == "fc6":
        assert int(scan.row.abs().max()) == 0 and int(scan.col.abs().max()) == 0


def test_each_patch_activation_recomputed_on_its_image(effnet, small_data):
    layer = "stage3"
    scan = P.max_activating_patches(effnet, small_data, layer, k=3, batch_size=8, cache=False)
    for channel in (0, 7, scan.channels - 1):
        for i, r, c, value in scan.top(np.int64(channel)):
            with torch.no_grad(), effnet.guard():
                a = effnet.forward_to(effnet.preprocess(small_data[i].image), layer)[0, channel]
            tol = 1e-5 * float(scan.values.abs().max())  # relative to the layer's scale
            assert abs(float(a[r, c]) - value) <= tol
            # nothing in that image beats the channel's overall strongest unit
            assert float(a.max()) <= scan.top(channel)[0][3] + tol


def test_batch_size_does_not_change_the_answer(random_alexnet, small_data):
    a = P.max_activating_patches(random_alexnet, small_data, "conv3", k=4, batch_size=3, cache=False)
    b = P.max_activating_patches(random_alexnet, small_data, "conv3", k=4, batch_size=64, cache=False)
    close_to_scale(a.values, b.values, 1e-5)


def test_memory_is_bounded_to_k_per_channel(random_alexnet, small_data):
    scan = P.max_activating_patches(random_alexnet, small_data, "conv2", k=3, batch_size=5, cache=False)
    c = random_alexnet.layer_shape("conv2")[0]
    tensors = {name: v for name, v in vars(scan).items() if isinstance(v, torch.Tensor)}
    assert set(tensors) == {"values", "image", "row", "col"}
    for name, t in tensors.items():
        assert tuple(t.shape) == (c, 3), name
    # the activation grid (N x C x 27 x 27) is far larger than what is kept
    assert sum(t.numel() for t in tensors.values()) == 4 * c * 3


def test_progress_then_result_and_cache(random_alexnet, small_data):
    clear_caches()
    steps = list(P.max_activating_patches_iter(random_alexnet, small_data, "conv1", k=2, batch_size=5))
    assert [(p.step, p.total, p.done) for p in steps] == [(5, 14, False), (10, 14, False), (14, 14, True)]
    preview, result = steps[0].result, steps[-1].result
    assert preview.n_images == 5 and preview.ended == "" and int(preview.image.max()) < 5  # the scan so far
    assert isinstance(result, P.PatchScan) and result.complete and result.n_images == 14
    again = list(P.max_activating_patches_iter(random_alexnet, small_data, "conv1", k=2))
    assert len(again) == 1 and again[0].done and again[0].result.values is result.values, \
        "second scan of the same (model, data, layer) should be cached"
    fewer = P.max_activating_patches(random_alexnet, small_data, "conv1", k=1)
    assert torch.equal(fewer.values, result.values[:, :1])


def test_stop_gives_partial_uncached_scan(random_alexnet, small_data):
    clear_caches()
    calls = []

    def stop_after_first_batch():
        calls.append(1)
        return len(calls) > 1

    steps = list(P.max_activating_patches_iter(random_alexnet, small_data, "conv1", k=2, batch_size=5,
                                               should_stop=stop_after_first_batch))
    scan = steps[-1].result
    assert [p.done for p in steps] == [False, True] and scan.ended == "stopped"
    assert isinstance(scan, P.PatchScan) and not scan.complete and scan.n_images == 10
    assert int(scan.image.max()) < 10
    assert P.cached_scan(random_alexnet, small_data, "conv1", 2) is None


def test_crop_patch_pads_at_the_border(random_alexnet, small_data):
    rf = random_alexnet.receptive_field("conv5")
    x = random_alexnet.preprocess(small_data[0].image)
    pixels = random_alexnet.deprocess(x)
    corner = P.crop_patch(random_alexnet, small_data[0].image, rf, 0, 0)
    assert corner.shape == (163, 163, 3) and corner.dtype == np.uint8
    top, left, _, _ = rf.box(0, 0)
    assert top < 0 and left < 0, "the corner unit's field should leave the image"
    assert (corner[: -top, :] == P.PAD_VALUE).all() and (corner[:, : -left] == P.PAD_VALUE).all()
    np.testing.assert_array_equal(corner[-top:, -left:], pixels[: 163 + top, : 163 + left])
    # the same via a layer name and a preprocessed tensor
    np.testing.assert_array_equal(P.crop_patch(random_alexnet, x, "conv5", 0, 0), corner)
    whole = P.crop_patch(random_alexnet, small_data[0].image, "fc6", 0, 0)
    np.testing.assert_array_equal(whole, pixels)


def test_patches_have_the_field_size(random_alexnet, small_data):
    scan = P.max_activating_patches(random_alexnet, small_data, "conv3", k=4)
    crops = scan.patches(5, small_data)
    assert len(crops) == 4
    assert all(c.shape == (99, 99, 3) for c in crops)
    i, r, c, value = scan.top(5)[0]
    np.testing.assert_array_equal(crops[0], P.crop_patch(random_alexnet, small_data[i].image, "conv3", r, c))


def test_bad_settings_raise_clear_errors_and_restore_state(random_alexnet, small_data):
    with assert_restored(random_alexnet):
        with pytest.raises(ValueError, match="no layer 'conv9'"):
            P.max_activating_patches(random_alexnet, small_data, "conv9")
    with pytest.raises(ValueError, match="k 0 is out of range"):
        P.max_activating_patches(random_alexnet, small_data, "conv1", k=0)
    with pytest.raises(ValueError, match="empty"):
        P.max_activating_patches(random_alexnet, ListDataset([], ["a"], "empty"), "conv1")
    scan = P.max_activating_patches(random_alexnet, small_data, "conv1", k=2)
    with pytest.raises(ValueError, match="channel 64 is out of range: conv1 has channels 0..63"):
        scan.patches(64, small_data)
    with pytest.raises(TypeError, match="channel is a whole number"):
        scan.top(1.5)


def test_state_restored_when_the_scan_fails_midway(random_alexnet, small_data):
    items = [small_data[i] for i in range(6)] + [Item("not an image", 0, None, "broken")]
    broken = ListDataset(items, small_data.classes, "broken-set")
    random_alexnet.train()  # the guard must restore training mode too, after the error
    try:
        with assert_restored(random_alexnet):
            with pytest.raises(ValueError, match=r"image 6 \(broken\) of broken-set"):
                P.max_activating_patches(random_alexnet, broken, "conv2", batch_size=3, cache=False)
            P.max_activating_patches(random_alexnet, small_data, "conv2", k=2, cache=False)
        assert random_alexnet.training
    finally:
        random_alexnet.eval()


# --- the app -----------------------------------------------------------------------

from cnnviz_widgets.widgets.patches import PatchesApp  # noqa: E402
from cnnviz_widgets import render  # noqa: E402
from tests.helpers import png_to_array  # noqa: E402


@pytest.fixture()
def app(random_alexnet, small_data):
    clear_caches()
    return PatchesApp(dataset=small_data, model=random_alexnet, layer="conv3", rows=3, k=4, threaded=False)


def test_app_shows_k_patches_per_channel_row(app, random_alexnet, small_data):
    assert app.error == "" and app.scan is not None and app.scan.layer == "conv3"
    shown = png_to_array(app.view.value)
    np.testing.assert_array_equal(shown, app.grid)
    # 3 rows of 4 tiles (64 px + labels + padding)
    assert shown.shape[1] == 4 * (64 + 2) + 2 and shown.shape[0] == 3 * (64 + 2 + 12) + 2
    assert "99×99 px" in app.info.value  # conv3's field on AlexNet
    # The first tile is channel 0's strongest patch, cropped by the engine.
    i, r, c, value = app.scan.top(0)[0]
    expected = render.fit_tile(P.crop_patch(random_alexnet, small_data[i].image, "conv3", r, c), 64)
    np.testing.assert_array_equal(shown[2:66, 2:66], expected)


def test_app_channels_answer_from_the_cached_scan(app, monkeypatch):
    def no_scan(*a, **k):
        raise AssertionError("browsing channels must not rescan")

    monkeypatch.setattr(P, "max_activating_patches_iter", no_scan)
    before = app.view.value
    app.channel.value = 10
    assert app.error == "" and app.view.value != before
    assert "channels 10–12" in app.info.value
    app.rows.value = 1
    assert png_to_array(app.view.value).shape[0] == 64 + 2 + 12 + 2


def test_app_scans_each_layer_once(app, monkeypatch):
    calls = []
    real = P.max_activating_patches_iter
    monkeypatch.setattr(P, "max_activating_patches_iter", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    app.layer.value = "conv1"
    assert app.scan.layer == "conv1" and "11×11 px" in app.info.value
    app.layer.value = "conv3"
    app.layer.value = "conv1"
    assert calls == ["conv1"]
    app.layer.value = "fc6"
    assert "whole 224×224 image" in app.info.value


def test_app_bad_layer_and_channel_show_a_message_and_keep_working(app, random_alexnet, small_data):
    with assert_restored(random_alexnet):
        app.select(layer="conv9")
        assert "no layer 'conv9'" in app.error and "conv9" in app.message.value
        app.select(channel=999)
        assert "channel 999 is out of range" in app.error and "0..383" in app.error
        app.select(channel=5)
        assert app.error == "" and app.channel.value == 5 and app.scan.layer == "conv3"
    other = PatchesApp(dataset=small_data, model=random_alexnet, layer="conv9", threaded=False)
    assert "no layer 'conv9'" in other.error
    assert other.layer.value == "conv5" and other.grid is not None


def test_app_scans_in_a_worker_thread(random_alexnet, small_data):
    clear_caches()
    app = PatchesApp(dataset=small_data, model=random_alexnet, layer="conv2", rows=2, k=3, batch_size=5)
    app.runner.wait()
    assert app.runner.status.value == "done" and app.runner.progress.value == 1.0
    assert app.error == "" and app.scan is not None and app.scan.layer == "conv2"
    assert png_to_array(app.view.value).shape == app.grid.shape


def test_app_stop_keeps_the_partial_scan_and_scan_runs_it_again(random_alexnet, small_data):
    clear_caches()
    holder = []

    class StopsOnce(ListDataset):
        def __getitem__(self, i):
            if i == 6 and holder and not holder[0]:
                holder[0] = True
                self.app.runner.stop()  # as if the learner pressed Stop during the second batch
            return super().__getitem__(i)

    data = StopsOnce(small_data.items if hasattr(small_data, "items") else [small_data[i] for i in range(len(small_data))],
                     small_data.classes, "stops-once")
    holder.append(False)

    class Probe(PatchesApp):
        def __init__(self, **kw):
            data.app = self
            super().__init__(**kw)

    app = Probe(dataset=data, model=random_alexnet, layer="conv1", k=2, batch_size=5, threaded=False)
    assert app.runner.status.value == "stopped"
    assert not app.scan.complete and app.scan.n_images == 10
    assert "only the first 10 images" in app.info.value
    app.runner.run_button.click()
    assert app.scan.complete and app.scan.n_images == 14 and "stopped" not in app.info.value


def test_the_cache_does_not_keep_a_network_alive(small_data):
    import gc
    import weakref

    from tests.test_receptive_field import make_untrained_shapes

    net = make_untrained_shapes()
    scan = P.max_activating_patches(net, small_data, "conv2", k=2)
    assert P.cached_scan(net, small_data, "conv2", 2).net is net
    alive = weakref.ref(net)
    del net, scan
    gc.collect()
    assert alive() is None


# --- the shapes: ground truth from the masks ------------------------------------------


@pytest.mark.parametrize("layer", ["conv1", "conv2", "conv5"])
def test_shapes_strongest_units_sit_on_the_objects(shapes_net, shapes_data, layer):
    with assert_restored(shapes_net):
        scan = P.max_activating_patches(shapes_net, shapes_data, layer, k=9)
        share, baseline = P.centre_object_share(scan, shapes_data)
    # A channel blind to objects would score the baseline (about 0.18 here); the
    # strongest units of a trained net sit on the shapes, not on the clutter.
    assert share.mean() > 1.8 * baseline
    assert (share > baseline).mean() > 0.6


def test_shapes_patch_values_and_crops(shapes_net, shapes_data):
    scan = P.max_activating_patches(shapes_net, shapes_data, "conv2", k=4)
    rf = shapes_net.receptive_field("conv2")
    images, _labels, masks = shapes_data.arrays()
    for channel in (0, 31, 63):
        crops, mask_crops = scan.patches(channel, shapes_data), scan.mask_patches(channel, shapes_data)
        for (i, r, c, value), crop, mcrop in zip(scan.top(channel), crops, mask_crops):
            assert crop.shape == (rf.size, rf.size, 3) and mcrop.shape == (rf.size, rf.size)
            with torch.no_grad(), shapes_net.guard():
                again = shapes_net.forward_to(shapes_net.preprocess(images[i]), "conv2")[0, channel, r, c]
            assert abs(float(again) - value) <= 1e-5 * float(scan.values.abs().max())  # the layer's scale
            # the crop is the same window of the image and of its mask
            top, left, bottom, right = rf.box(r, c)
            t, l = max(top, 0), max(left, 0)
            b, rr = min(bottom, 64), min(right, 64)
            np.testing.assert_array_equal(crop[t - top:b - top, l - left:rr - left], images[i][t:b, l:rr])
            np.testing.assert_array_equal(mcrop[t - top:b - top, l - left:rr - left], masks[i][t:b, l:rr])
    with pytest.raises(ValueError, match="no object masks"):
        P.centre_object_share(scan, ListDataset([Item(shapes_data[0].image, 0, None, "x")], ["a"], "nomask"))


def test_default_app_is_the_shapes_lesson():
    clear_caches()
    app = PatchesApp(threaded=False)
    assert app.net.name == "shapes" and app.dataset.name.startswith("shapes")
    assert app.layer.value == "conv5" and app.error == ""
    assert f"{app.net.receptive_field('conv5').size}×" in app.info.value
    app.layer.value = "conv1"
    conv1 = app.net.receptive_field("conv1").size
    assert f"{conv1}×{conv1} px" in app.info.value and app.scan.layer == "conv1"


def test_shapes_fast_path_gives_the_same_scan_as_preprocess(shapes_net):
    # The shapes set hands its uint8 arrays to the network directly; the same items in a
    # plain list go through preprocess one by one. Both scans must be identical.
    fast_data = load_dataset("shapes", n=9, seed=4242)
    slow_data = ListDataset([fast_data[i] for i in range(9)], fast_data.classes, "the same, slowly")
    fast = P.max_activating_patches(shapes_net, fast_data, "conv2", k=3, batch_size=4, cache=False)
    slow = P.max_activating_patches(shapes_net, slow_data, "conv2", k=3, batch_size=4, cache=False)
    # the same units; the values to float summation order (the two batches' memory layouts differ)
    for name in ("image", "row", "col"):
        assert torch.equal(getattr(fast, name), getattr(slow, name)), name
    close_to_scale(fast.values, slow.values, 1e-6)


def test_between_steps_the_caller_keeps_its_grad_mode_and_model_state(random_alexnet, small_data):
    random_alexnet.train()
    try:
        with assert_restored(random_alexnet):
            steps = P.max_activating_patches_iter(random_alexnet, small_data, "conv1", k=2, batch_size=5,
                                                  cache=False)
            first = next(steps)
            assert not first.done and first.result.n_images == 5
            assert torch.is_grad_enabled(), "the scan left grad mode off while paused"
            assert random_alexnet.training
            steps.close()  # abandoned midway
        assert random_alexnet.training
    finally:
        random_alexnet.eval()
