"""Lesson 03: PCA / t-SNE maps, class separation on them, EmbeddingApp."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz_widgets.engine.zoo.data import load_dataset
from cnnviz_widgets.engine.inspect.embedding import embed, knn_accuracy, thumbnail_positions

from .helpers import close_to_scale, png_to_array
from .test_neighbors import make_random_shapes_net


def _blobs(n_per=30, classes=3, dim=20, spread=0.3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)) * 5
    x = np.concatenate([c + spread * rng.normal(size=(n_per, dim)) for c in centres])
    y = np.repeat(np.arange(classes), n_per)
    return x, y


def test_pca_matches_the_top_principal_directions():
    x, _ = _blobs()
    emb = embed(x, "pca")
    centred = x - x.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:2].T
    # principal directions are defined up to sign
    for j in range(2):
        sign = np.sign(expected[:, j] @ emb.coords[:, j])
        close_to_scale(emb.coords[:, j], sign * expected[:, j], 1e-4)
    close_to_scale(np.array(emb.explained_variance), (s[:2] ** 2) / (s ** 2).sum(), 1e-5)


def test_tsne_separates_blobs_and_is_reproducible():
    x, y = _blobs(dim=80)  # > 50 dims: reduced by PCA first
    a = embed(x, "tsne", perplexity=10, seed=3, max_iter=300)
    b = embed(x, "tsne", perplexity=10, seed=3, max_iter=300)
    assert a.coords.shape == (90, 2) and np.array_equal(a.coords, b.coords)
    assert a.kl_divergence is not None and a.explained_variance is not None
    assert knn_accuracy(a.coords, y) > 0.95


def test_knn_accuracy_is_chance_on_shuffled_labels():
    x, y = _blobs(n_per=40, classes=4, dim=2, spread=0.2)
    assert knn_accuracy(x, y) == 1.0
    shuffled = np.random.default_rng(1).permutation(y)
    assert knn_accuracy(x, shuffled) < 0.5


@pytest.mark.parametrize("call, words", [
    (lambda x: embed(x, "umap"), "method"),
    (lambda x: embed(x, "tsne", perplexity=500), "perplexity"),
    (lambda x: embed(x, "tsne", max_iter=10), "max_iter"),
    (lambda x: embed(x[:2], "pca"), "at least 3"),
    (lambda x: embed(np.full_like(x, np.nan), "pca"), "NaN"),
    (lambda x: embed(x[0], "pca"), "N x D"),
])
def test_bad_settings_are_one_clear_value_error(call, words):
    x, _ = _blobs()
    with pytest.raises(ValueError, match=words):
        call(x)


def test_thumbnails_are_spread_out():
    rng = np.random.default_rng(0)
    coords = np.concatenate([rng.normal(size=(200, 2)) * 0.01, rng.uniform(-10, 10, size=(20, 2))])
    chosen = thumbnail_positions(coords, count=50, min_distance=0.05)
    c = coords[chosen]
    gaps = np.linalg.norm(c[:, None] - c[None], axis=-1) + np.eye(len(c)) * 1e9
    span = np.ptp(coords, axis=0).max()
    assert gaps.min() >= 0.05 * span
    # the dense blob gets one thumbnail, not dozens
    assert (np.abs(c).max(axis=1) < 0.1).sum() <= 1


# --- the app -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_net():
    return make_random_shapes_net()


@pytest.fixture(scope="module")
def app_data():
    return load_dataset("shapes", n=40, seed=32)


def test_app_controls_change_the_picture_and_maps_are_cached(small_net, app_data, monkeypatch):
    from cnnviz_widgets.widgets import EmbeddingApp
    from cnnviz_widgets.widgets import embedding as module

    app = EmbeddingApp(small_net, dataset=app_data, method="pca", thumbnails=10)
    app.runner.wait()  # new maps are made in the worker thread
    assert app.error == "" and app.layer.value == "fc7" and app.perplexity.disabled
    seen = [app.view.value]
    for control, value in [(app.item, 7), (app.thumbnails, 0), (app.method, "tsne"),
                           (app.perplexity, 8), (app.layer, "pixels")]:
        control.value = value
        app.runner.wait()
        assert app.error == "", app.error
        assert app.view.value not in seen, f"setting {control.description} did not change the picture"
        seen.append(app.view.value)
    assert not app.perplexity.disabled
    assert "item 7" in app.info.value.lower() and app_data.classes[app_data[7].label] in app.info.value
    png_to_array(app.view.value)

    # going back to a map already made answers from the cache: embed is not called
    calls = []
    real = module.embed
    monkeypatch.setattr(module, "embed", lambda *a, **k: calls.append(a) or real(*a, **k))
    app.layer.value = "fc7"
    app.perplexity.value = 8
    assert calls == [] and app.error == "" and not app.runner.running  # drawn at once, no worker
    app.perplexity.value = 9
    app.runner.wait()
    assert len(calls) == 1 and app.runner.status.value == "done"


def test_app_bad_layer_and_bad_perplexity_are_messages(small_net, app_data):
    from cnnviz_widgets.widgets import EmbeddingApp

    app = EmbeddingApp(small_net, dataset=app_data, layer="fc77", method="pca", thumbnails=0)
    app.runner.wait()
    assert "no layer 'fc77'" in app.error and app.layer.value == "fc7" and app.view.value
    tiny = load_dataset("shapes", n=6, seed=1)
    small = EmbeddingApp(small_net, dataset=tiny, method="tsne", perplexity=30, thumbnails=0)
    small.runner.wait()
    # the slider clamps perplexity below the number of images, so t-SNE still runs
    assert small.error == "" and small.perplexity.value < len(tiny)
    assert "too few images per class" in small.info.value and small.view.value
    before = app.view.value
    app.item.value = 3
    app.runner.wait()
    assert app.error == "" and app.view.value != before


# --- the lesson's claim, on the trained shapes network --------------------------------------

def test_classes_separate_on_the_tsne_map_of_fc7_not_of_pixels(shapes_net, shapes_data):
    from cnnviz_widgets.engine.inspect import features as F

    labels = F.dataset_labels(shapes_data).numpy()
    on_features = knn_accuracy(embed(F.extract_features(shapes_net, shapes_data, "fc7"), "tsne").coords, labels)
    on_pixels = knn_accuracy(embed(F.pixel_features(shapes_net, shapes_data), "tsne").coords, labels)
    assert on_features > 0.85, on_features
    assert on_pixels < 0.5, on_pixels
    # PCA, linear, separates the fc7 classes less well than t-SNE but far better than chance
    on_pca = knn_accuracy(embed(F.extract_features(shapes_net, shapes_data, "fc7"), "pca").coords, labels)
    assert 0.5 < on_pca, on_pca


def test_app_draw_only_controls_during_a_map_neither_block_nor_redo_it(small_net, app_data, monkeypatch):
    """Moving 'show item' while t-SNE runs leaves the job alone (embed runs once) and
    the finished map shows the item chosen meanwhile."""
    import threading
    import time

    from cnnviz_widgets.widgets import EmbeddingApp
    from cnnviz_widgets.widgets import embedding as module

    calls, release = [], threading.Event()
    real = module.embed

    def slow_embed(*a, **k):
        calls.append(a)
        release.wait(10)
        return real(*a, **k)

    monkeypatch.setattr(module, "embed", slow_embed)
    app = EmbeddingApp(small_net, dataset=app_data, layer="conv5", method="pca", thumbnails=0)
    deadline = time.monotonic() + 10
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert app.runner.running and len(calls) == 1
    t0 = time.monotonic()
    app.item.value = 5                 # a draw-only control, mid-job
    assert time.monotonic() - t0 < 0.5 and app.runner.running
    release.set()
    app.runner.wait()
    assert len(calls) == 1 and app.error == ""
    assert "Item 5" in app.info.value
