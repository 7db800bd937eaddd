"""Lesson 02: feature extraction (with its cache), exact nearest neighbours, NeighborsApp."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cnnviz_widgets.engine.core.cache import clear_caches
from cnnviz_widgets.engine.inspect import features as F
from cnnviz_widgets.engine.zoo.data import ListDataset, load_dataset
from cnnviz_widgets.engine.inspect.neighbors import (all_nearest_neighbors, nearest_neighbors, neighbor_agreement,
                                             pairwise_distances)

from .helpers import assert_restored, close_to_scale, png_to_array, simulate_upload


def make_random_shapes_net(seed: int = 0):
    """The shapes architecture, untrained: 64-px inputs keep app tests fast, and the app's
    behaviour (not the weights) is what they check."""
    from cnnviz_widgets.engine.zoo import models, shapes, shapes_net

    torch.manual_seed(seed)
    return models.Network("shapes-random", shapes_net.ShapesNet(), dict(models.ALEXNET_LAYERS),
                          list(shapes.SHAPE_CLASSES), shapes_net.MEAN, shapes_net.STD, 64, 64)


@pytest.fixture(scope="module")
def small_net():
    return make_random_shapes_net()


@pytest.fixture(scope="module")
def tiny_shapes():
    return load_dataset("shapes", n=12, seed=77)


# --- nearest_neighbors on hand-made features -------------------------------------------

def _brute_force(rows, q, metric):
    out = []
    for r in rows:
        if metric == "l2":
            out.append(math.sqrt(sum((a - b) ** 2 for a, b in zip(r, q))))
        else:
            dot = sum(a * b for a, b in zip(r, q))
            out.append(1 - dot / (math.sqrt(sum(a * a for a in r)) * math.sqrt(sum(b * b for b in q))))
    return out


def test_cosine_and_l2_disagree_on_a_constructed_set():
    # `far` points the query's way but is long; `near` is short and 45 degrees off:
    # L2 prefers near, cosine prefers far.
    query = [1.0, 0.0]
    rows = [[10.0, 1.0], [0.5, 0.5], [-1.0, 0.2], [0.0, 3.0]]
    feats = torch.tensor(rows)
    for metric in ("l2", "cosine"):
        idx, dist = nearest_neighbors(feats, torch.tensor(query), k=4, metric=metric)
        expected = _brute_force(rows, query, metric)
        assert idx.tolist() == sorted(range(4), key=lambda i: expected[i])
        close_to_scale(dist.numpy(), np.array([expected[i] for i in idx.tolist()]), 1e-6)
    l2_first = nearest_neighbors(feats, torch.tensor(query), k=1, metric="l2")[0].item()
    cos_first = nearest_neighbors(feats, torch.tensor(query), k=1, metric="cosine")[0].item()
    assert (l2_first, cos_first) == (1, 0)


def test_index_query_leaves_itself_out_and_exclude_and_ties():
    feats = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [1.0, 0.0]])
    idx, dist = nearest_neighbors(feats, 1, k=4, metric="l2")
    assert 1 not in idx.tolist()
    # item 4 equals the query (distance 0); 0 and 3 tie at distance 1: lower index first
    assert idx.tolist()[:3] == [4, 0, 3]
    assert dist[0].item() == 0.0
    idx2, _ = nearest_neighbors(feats, 1, k=2, metric="l2", exclude=[4])
    assert idx2.tolist() == [0, 3]
    # numpy integers are indices too
    assert nearest_neighbors(feats, np.int64(1), k=1, metric="l2")[0].tolist() == [4]


def test_zero_vector_has_cosine_distance_one():
    d = pairwise_distances(torch.tensor([[0.0, 0.0]]).double(), torch.tensor([[1.0, 2.0]]).double(), metric="cosine")
    assert d.item() == pytest.approx(1.0)


@pytest.mark.parametrize("call, words", [
    (lambda f: nearest_neighbors(f, 0, k=4), "k 4 is out of range: it must be 1..3"),
    (lambda f: nearest_neighbors(f, 0, k=0), "k 0 is out of range"),
    (lambda f: nearest_neighbors(f, 9, k=1), "query index 9 is out of range: the set has items 0..3"),
    (lambda f: nearest_neighbors(f, torch.zeros(3), k=1), "3 features"),
    (lambda f: nearest_neighbors(f, 0, k=1, metric="manhattan"), "metric must be one of"),
    (lambda f: nearest_neighbors(f, 0, k=1, exclude=[7]), "exclude index 7 is out of range"),
    (lambda f: neighbor_agreement(f, [0, 1], k=1), "labels"),
])
def test_bad_settings_are_one_clear_value_error(call, words):
    feats = torch.rand(4, 2)
    with pytest.raises(ValueError, match=words):
        call(feats)


def test_neighbor_agreement_matches_brute_force():
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(30, 5, generator=gen)
    labels = torch.randint(0, 3, (30,), generator=gen)
    total = 0.0
    for i in range(30):
        idx, _ = nearest_neighbors(feats, i, k=4, metric="l2")
        total += float((labels[idx] == labels[i]).float().mean())
    assert neighbor_agreement(feats, labels, k=4, metric="l2") == pytest.approx(total / 30)
    for i in (0, 13, 29):
        assert all_nearest_neighbors(feats, k=4, metric="l2")[i].tolist() == nearest_neighbors(feats, i, k=4, metric="l2")[0].tolist()
    # two well separated clusters agree perfectly
    clusters = torch.cat([torch.randn(10, 3, generator=gen), torch.randn(10, 3, generator=gen) + 50])
    assert neighbor_agreement(clusters, [0] * 10 + [1] * 10, k=5, metric="l2") == 1.0


# --- feature extraction ------------------------------------------------------------------

def test_features_equal_a_direct_forward_to(random_alexnet, tiny_shapes):
    result = F.extract_features(random_alexnet, tiny_shapes, "fc7", batch_size=np.int64(5))
    feats = result.vectors
    assert feats.shape == (len(tiny_shapes), 4096) and len(result) == len(tiny_shapes)
    assert result.layer == "fc7" and result.dataset == tiny_shapes.name and result.ended == "done"
    for i in (0, 7, 11):
        with torch.no_grad():
            direct = random_alexnet.forward_to(random_alexnet.preprocess(tiny_shapes[i].image), "fc7")[0]
        close_to_scale(feats[i], direct.flatten(), 1e-5)
        one = F.image_features(random_alexnet, tiny_shapes[i].image, "fc7")
        close_to_scale(feats[i], one, 1e-5)
    pixels = F.pixel_features(random_alexnet, tiny_shapes).vectors
    assert torch.equal(pixels[3], random_alexnet.preprocess(tiny_shapes[3].image).flatten().cpu())


def _count_forwards(net):
    calls = []
    handle = net.model.register_forward_pre_hook(lambda m, inp: calls.append(inp[0].shape[0]))
    return calls, handle


def test_cache_hit_returns_the_same_tensor_without_recomputing(small_net, tiny_shapes):
    clear_caches()
    calls, handle = _count_forwards(small_net)
    try:
        first = F.extract_features(small_net, tiny_shapes, "conv5", batch_size=4)
        assert sum(calls) == len(tiny_shapes) and len(calls) == 3  # three batches of 4
        calls.clear()
        again = F.extract_features(small_net, tiny_shapes, "conv5", batch_size=4)
        assert again.vectors is first.vectors and calls == []
        # another layer is another scan
        F.extract_features(small_net, tiny_shapes, "fc6", batch_size=4)
        assert sum(calls) == len(tiny_shapes)
    finally:
        handle.remove()
    assert F.feature_cache_info(small_net)["hits"] >= 1


def test_same_name_different_weights_never_share_a_scan(tiny_shapes):
    a, b = make_random_shapes_net(seed=1), make_random_shapes_net(seed=2)
    assert a.name == b.name
    fa = F.extract_features(a, tiny_shapes, "fc8")
    fb = F.extract_features(b, tiny_shapes, "fc8")
    assert not torch.allclose(fa.vectors, fb.vectors)


def test_progress_is_reported_per_batch(small_net, tiny_shapes):
    clear_caches()
    steps = list(F.extract_features_iter(small_net, tiny_shapes, "conv3", batch_size=5))
    assert [(s.step, s.total, s.done) for s in steps] == [(5, 12, False), (10, 12, False), (12, 12, True)]
    # a preview holds the rows done so far; the last, all of them
    assert [len(s.result) for s in steps] == [5, 10, 12] and steps[-1].result.ended == "done"
    assert torch.equal(steps[0].result.vectors, steps[-1].result.vectors[:5])
    asked = iter(range(10))
    stopped = list(F.extract_features_iter(small_net, tiny_shapes, "conv2", batch_size=5,
                                         should_stop=lambda: next(asked) >= 1))
    assert stopped[-1].done and stopped[-1].result.ended == "stopped" and len(stopped[-1].result) == 10


class _Broken(ListDataset):
    def __getitem__(self, i):
        if i == 6:
            raise ValueError("item 6 is broken")
        return super().__getitem__(i)


def test_state_restored_also_when_a_scan_raises(small_net, tiny_shapes):
    small_net.train()  # the scan must run in eval mode and put training back
    try:
        with assert_restored(small_net):
            F.extract_features(small_net, tiny_shapes, "fc6", batch_size=4)
        with assert_restored(small_net), pytest.raises(ValueError, match="no layer 'fc9'"):
            F.extract_features(small_net, tiny_shapes, "fc9")
        with assert_restored(small_net), pytest.raises(ValueError):
            F.image_features(small_net, b"definitely not an image", "fc7")
        broken = _Broken(list(tiny_shapes), tiny_shapes.classes, "broken-set")
        with assert_restored(small_net), pytest.raises(ValueError, match="item 6"):
            F.extract_features(small_net, broken, "conv2", batch_size=4)
        # a scan stopped half way leaves nothing in the cache
        before = F.feature_cache_info(small_net)["entries"]
        with assert_restored(small_net):
            gen = F.extract_features_iter(small_net, tiny_shapes, "conv1", batch_size=4)
            next(gen)
            gen.close()
        assert F.feature_cache_info(small_net)["entries"] == before
    finally:
        small_net.eval()


def test_bad_scan_settings(small_net, tiny_shapes):
    with pytest.raises(ValueError, match="batch_size 0 is out of range"):
        F.extract_features(small_net, tiny_shapes, "fc7", batch_size=0)
    with pytest.raises(ValueError, match="empty"):
        F.extract_features(small_net, ListDataset([], [], "empty"), "fc7")
    per_image = F.feature_size(small_net, "conv1")
    too_many = F.MAX_FEATURE_BYTES // (4 * per_image) + 1
    big = load_dataset("shapes", n=too_many, seed=1)  # images are drawn lazily: only one batch is made
    with pytest.raises(ValueError, match="GiB"):
        F.extract_features(small_net, big, "conv1")


# --- the app ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def app_data():
    return load_dataset("shapes", n=24, seed=31)


def _png_array(app):
    return png_to_array(app.view.value)


def _upload(app, name, data):
    simulate_upload(app.upload, name, data)


def test_app_renders_and_each_control_changes_the_picture(small_net, app_data):
    from cnnviz_widgets.widgets import NeighborsApp

    app = NeighborsApp(small_net, dataset=app_data, k=3)
    app.runner.wait()  # the first scans run in the worker thread
    assert app.error == "" and app.layer.value == "fc7"
    seen = [app.view.value]
    for control, value in [(app.query, 5), (app.k, 6), (app.metric, "l2"), (app.layer, "conv3")]:
        control.value = value
        app.runner.wait()
        assert app.error == "", app.error
        assert app.view.value not in seen, f"setting {control.description} did not change the picture"
        seen.append(app.view.value)
    # k neighbours per row, plus the query, on two rows: the picture grows with k
    wide = _png_array(app).shape[1]
    app.k.value = 2
    assert _png_array(app).shape[1] < wide
    # the agreement text counts what the engine finds
    from cnnviz_widgets.engine.inspect.neighbors import nearest_neighbors

    feats = F.extract_features(small_net, app_data, "conv3")
    idx, _ = nearest_neighbors(feats, np.int64(5), k=np.int64(2), metric="l2")  # Features work as a matrix
    same = sum(app_data[int(i)].label == app_data[5].label for i in idx)
    assert f"{same}/2 neighbours share" in app.info.value


def test_app_upload_bad_then_good_keeps_working(small_net, app_data):
    from cnnviz_widgets.widgets import NeighborsApp
    from cnnviz_widgets.render import to_png

    app = NeighborsApp(small_net, dataset=app_data)
    app.runner.wait()
    before = app.view.value
    with assert_restored(small_net):
        _upload(app, "notes.txt", b"this is not a picture")
    assert "notes.txt" in app.error and app.uploaded is None
    assert app.view.value == before  # the old query stays
    image = np.asarray(app_data[3].image)[:, ::-1].copy()  # a flipped item: not in the set
    _upload(app, "mine.png", to_png(image))
    app.runner.wait()  # the upload's features: a forward pass, in the Runner
    assert app.error == "" and app.uploaded is not None
    assert app.view.value != before and "upload" in app.info.value
    app.query.value = 2  # back to the set
    assert app.uploaded is None and app.error == ""


def test_app_bad_layer_is_a_message(small_net, app_data):
    from cnnviz_widgets.widgets import NeighborsApp

    app = NeighborsApp(small_net, dataset=app_data, layer="fc9")
    app.runner.wait()
    assert "no layer 'fc9'" in app.error
    assert app.layer.value == "fc7" and app.view.value  # still drew with the default layer
    app.k.value = 4
    assert app.error == ""


def test_app_scans_in_the_worker_and_answers_cached_settings_at_once(small_net, app_data):
    """A layer not scanned yet is scanned in the Runner's thread (progress, Stop); one
    in the cache is drawn synchronously, with no thread started."""
    from cnnviz_widgets.widgets import NeighborsApp

    clear_caches()
    app = NeighborsApp(small_net, dataset=app_data, layer="fc6")
    app.runner.wait()
    assert app.error == "" and app.runner.progress.value == 1.0 and app.runner.status.value == "done"
    assert F.is_cached(small_net, app_data, "fc6") and F.is_cached(small_net, app_data, F.PIXELS)
    first = app.view.value
    app.k.value = 2                   # cached: drawn at once, no worker
    assert not app.runner.running and app.view.value != first
    app.layer.value = "conv5"         # not cached: a scan starts; stopped, nothing is drawn
    app.runner.stop()
    app.runner.wait()
    assert app.error == ""
    if app.runner.status.value == "stopped":
        assert "feature space (conv5)" not in app.info.value
    app.runner.run_button.click()     # scan again, to the end this time
    app.runner.wait()
    assert F.is_cached(small_net, app_data, "conv5") and "feature space (conv5)" in app.info.value


# --- the lesson's claim, on the trained shapes network --------------------------------------

def test_fc7_neighbours_share_the_class_pixel_neighbours_share_the_background(shapes_net, shapes_data):
    labels = F.dataset_labels(shapes_data)
    feats = F.extract_features(shapes_net, shapes_data, "fc7")
    pixels = F.pixel_features(shapes_net, shapes_data)
    in_features = neighbor_agreement(feats, labels, k=5)
    in_pixels = neighbor_agreement(pixels, labels, k=5)
    assert in_features > 0.9, in_features
    assert in_pixels < 0.35, in_pixels

    # The masks say which pixels are background: pixel neighbours match the query's
    # background colour much better than feature neighbours do.
    images, _, masks = shapes_data.arrays()
    background = np.stack([images[i][~masks[i]].mean(0) for i in range(len(images))])

    def background_gap(space):
        nearest = all_nearest_neighbors(space, k=5).numpy()
        return float(np.linalg.norm(background[nearest] - background[:, None], axis=-1).mean())

    assert background_gap(pixels) < 0.8 * background_gap(feats)
