"""Lesson 03's app: the dataset laid out on a 2-D map of a layer's features."""

from __future__ import annotations

import html

import ipywidgets as W
import numpy as np

from ..engine.inspect import features as F
from ..engine.inspect.embedding import Embedding, embed, knn_accuracy, thumbnail_positions
from ..render.embedding import map_figure
from .base import App
from .controls import LayerPicker
from .neighbors import layer_fits

__all__ = ["EmbeddingApp"]

_STYLE = {"description_width": "80px"}
THUMB_PX = 28


class EmbeddingApp(App):
    """Choose PCA or t-SNE (and its perplexity) and a layer; see every image of the set
    as a point coloured by its class, with thumbnails spread over the map, and the item
    picked with "show item" circled and shown beside the map.

    Scans and t-SNE run in the Runner (progress, Stop); a map seen before is cached.
    """

    title = "PCA and t-SNE maps of a feature space"
    run_label = "Map"

    def __init__(self, model=None, *, dataset=None, layer: str | None = None, method: str = "tsne",
                 perplexity: int = 30, thumbnails: int = 40, seed: int = 0, threaded: bool = True):
        super().__init__(model, dataset=dataset, pickers=("model", "dataset"), threaded=threaded)
        self.seed = seed
        self.method = W.ToggleButtons(options=[("PCA", "pca"), ("t-SNE", "tsne")],
                                      value=method if method in ("pca", "tsne") else "tsne",
                                      description="method", style=_STYLE)
        self.perplexity = W.IntSlider(value=2, min=2, max=2, description="perplexity", continuous_update=False,
                                      style=_STYLE)
        self.layer = LayerPicker(only=layer_fits)
        self.item = W.IntSlider(value=0, min=0, max=0, description="show item", continuous_update=False, style=_STYLE)
        self.thumbnails = W.IntSlider(value=thumbnails, min=0, max=120, step=10, description="thumbnails",
                                      continuous_update=False, style=_STYLE)
        if layer is not None and layer != F.PIXELS:
            layer = self.guarded(self.net.check_layer, later=True)(layer)
        self.on_model(self.net, layer)
        self._maps: dict[tuple, tuple[Embedding, float | None]] = {}
        self.on_dataset(self.dataset)
        self.perplexity.value = int(min(max(2, perplexity), self.perplexity.max))
        self.watch([self.method, self.perplexity, self.layer, self.item, self.thumbnails], self.refresh)
        self.arrange([W.HBox([self.model_picker, self.dataset_picker]), W.HBox([self.method, self.perplexity]),
                      W.HBox([self.layer, self.item]), self.thumbnails, self.runner])

    def on_model(self, net, layer: str | None = None) -> None:
        self.layer.set_network(net, layer if layer in net.layers else F.default_feature_layer(net))
        # The pixels themselves, as the baseline a learner should compare every layer with.
        keep = self.layer.value
        self.layer.options = list(self.layer.options) + [F.PIXELS]
        self.layer.value = layer if layer == F.PIXELS else keep

    def on_dataset(self, dataset) -> None:
        n = len(dataset)
        # t-SNE needs a perplexity below the number of images
        self.perplexity.max, self.item.max = max(2, min(50, n - 1)), n - 1
        self.labels = F.dataset_labels(dataset).numpy()
        self._thumbs: dict[int, np.ndarray] = {}

    def _key(self) -> tuple:
        method = self.method.value
        return (id(self.net), id(self.dataset), self.layer.value, method,
                self.perplexity.value if method == "tsne" else None)

    def _map_steps(self, key: tuple):
        """Scan the set (the engine's `extract_features_iter`: progress per batch, Stop
        between batches), then embed it: in the worker thread. The embedding itself
        reports no progress."""
        net, data, labels, (_, _, layer, method, perplexity) = self.net, self.dataset, self.labels, key
        perplexity = perplexity if perplexity is not None else self.perplexity.value  # PCA ignores it

        def steps(should_stop):
            if key in self._maps:
                return
            last = None
            for last in F.extract_features_iter(net, data, layer, should_stop=should_stop):
                yield last
            if last is None or last.result.ended != "done" or should_stop():
                return
            emb = embed(last.result.vectors, method, perplexity=perplexity, seed=self.seed)
            try:
                accuracy = knn_accuracy(emb.coords, labels, k=5, seed=self.seed)
            except ValueError:  # too few images per class to cross-validate: the map still stands
                accuracy = None
            self._maps[key] = (emb, accuracy)
        return steps

    def current_map(self) -> tuple[Embedding, float | None]:
        """The map for the current settings and its k-NN accuracy, computed once per
        (layer, method, perplexity); PCA ignores perplexity, so it shares one entry."""
        key = self._key()
        if key not in self._maps:
            for _ in self._map_steps(key)(lambda: False):
                pass
        return self._maps[key]

    def thumb(self, i: int) -> np.ndarray:
        if i not in self._thumbs:
            image = self.dataset[i].image.convert("RGB").copy()
            image.thumbnail((THUMB_PX, THUMB_PX))
            self._thumbs[i] = np.asarray(image)
        return self._thumbs[i]

    def refresh(self) -> None:
        """Compute the map if it is new (in the worker thread), then draw it."""
        self.perplexity.disabled = self.method.value != "tsne"
        key = self._key()
        self.draw_when_ready(key, lambda: key in self._maps, self._map_steps(key), self.draw)

    def draw(self) -> None:
        emb, accuracy = self.current_map()
        chosen = thumbnail_positions(emb.coords, count=self.thumbnails.value, seed=self.seed) if self.thumbnails.value else []
        selected = self.item.value
        item_image = self.dataset[selected].image
        png = map_figure(emb.coords, self.labels, list(self.dataset.classes),
                         thumbs=[(int(i), self.thumb(int(i))) for i in chosen],
                         selected=(selected, np.asarray(item_image.convert("RGB"))),
                         title=self._title(emb))
        self.show_picture(png)
        self.show_text(self._summary(emb, accuracy, selected))

    def _title(self, emb: Embedding) -> str:
        where = "pixels" if self.layer.value == F.PIXELS else f"{self.net.name} {self.layer.value}"
        how = "PCA" if emb.method == "pca" else f"t-SNE, perplexity {emb.perplexity:g}"
        return f"{where} features, {how}"

    def _summary(self, emb: Embedding, accuracy: float | None, selected: int) -> str:
        if emb.method == "pca":
            ev = emb.explained_variance or ()
            stats = f"the two axes keep {100 * sum(ev):.0f}% of the variance ({', '.join(f'{100 * v:.0f}%' for v in ev)})"
        else:
            pre = f"; PCA to 50 dims first kept {100 * emb.explained_variance[0]:.0f}% of the variance" if emb.explained_variance else ""
            stats = f"KL divergence {emb.kl_divergence:.2f}{pre}"
        label = self.dataset.classes[int(self.labels[selected])]
        x, y = emb.coords[selected]
        chance = 1 / max(1, len(self.dataset.classes))
        separation = (f"5-NN accuracy on the map (5-fold): <b>{accuracy:.2f}</b> (chance: {chance:.2f})"
                      if accuracy is not None else "too few images per class to measure how well classes separate")
        return (f"<div>{html.escape(stats)}. {separation}.</div>"
                f"<div>Item {selected}: <b>{html.escape(label)}</b> at ({x:.1f}, {y:.1f}).</div>")

