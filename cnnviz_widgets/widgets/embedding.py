"""Lesson 03's app: the dataset laid out on a 2-D map of a layer's features."""

from __future__ import annotations

import html

import ipywidgets as W
import numpy as np

from .. import render
from ..engine import features as F
from ..engine.data import load_dataset, model_for
from ..engine.embedding import Embedding, embed, knn_accuracy, thumbnail_positions
from ..engine.models import load_model
from .base import App, Runner
from .controls import LayerPicker
from .neighbors import layer_fits

__all__ = ["EmbeddingApp", "map_figure"]

_STYLE = {"description_width": "80px"}
THUMB_PX = 28


class EmbeddingApp(App):
    """Choose PCA or t-SNE (and its perplexity) and a layer; see every image of the set
    as a point coloured by its class, with thumbnails spread over the map, and the item
    picked with "show item" circled and shown beside the map."""

    title = "PCA and t-SNE maps of a feature space"

    def __init__(self, dataset=None, model=None, layer: str | None = None, method: str = "tsne",
                 perplexity: int = 30, thumbnails: int = 40, seed: int = 0):
        self.dataset = dataset if dataset is not None else load_dataset()
        self.net = model if model is not None and not isinstance(model, str) else load_model(model or model_for(self.dataset))
        n = len(self.dataset)
        self.seed = seed
        self.method = W.ToggleButtons(options=[("PCA", "pca"), ("t-SNE", "tsne")],
                                      value=method if method in ("pca", "tsne") else "tsne",
                                      description="method", style=_STYLE)
        top = max(2, min(50, n - 1))
        self.perplexity = W.IntSlider(value=int(min(max(2, perplexity), top)), min=2, max=top,
                                      description="perplexity", continuous_update=False, style=_STYLE)
        self.layer = LayerPicker(only=layer_fits)
        self.item = W.IntSlider(value=0, min=0, max=n - 1, description="show item",
                                continuous_update=False, style=_STYLE)
        self.thumbnails = W.IntSlider(value=thumbnails, min=0, max=120, step=10, description="thumbnails",
                                      continuous_update=False, style=_STYLE)
        # Scans and t-SNE run in the Runner's worker thread; a map seen before is cached.
        self.runner = Runner(run_label="Map")
        super().__init__([W.HBox([self.method, self.perplexity]), W.HBox([self.layer, self.item]),
                          self.thumbnails, self.runner])
        self.connect_runner(self.runner, self.refresh)

        wanted_problem = None
        if layer is not None and layer != F.PIXELS:
            try:
                self.net.check_layer(layer)
            except ValueError as e:
                wanted_problem, layer = e, None
        self.layer.set_network(self.net, layer or F.default_feature_layer(self.net))
        # The pixels themselves, as the baseline a learner should compare every layer with.
        keep = self.layer.value
        self.layer.options = list(self.layer.options) + [F.PIXELS]
        self.layer.value = layer if layer == F.PIXELS else keep

        self.labels = F.dataset_labels(self.dataset).numpy()
        self._maps: dict[tuple, tuple[Embedding, float | None]] = {}
        self._thumbs: dict[int, np.ndarray] = {}
        self.watch([self.method, self.perplexity, self.layer, self.item, self.thumbnails], self.refresh)
        self.guarded(self.refresh)()
        if wanted_problem is not None:
            self.show_error(wanted_problem)

    def _key(self) -> tuple:
        method = self.method.value
        return (self.layer.value, method, self.perplexity.value if method == "tsne" else None)

    def _map_steps(self, key: tuple):
        """Scan the set (progress per batch), then embed it: in the worker thread."""
        net, data, (layer, method, perplexity) = self.net, self.dataset, key
        perplexity = perplexity if perplexity is not None else self.perplexity.value  # PCA ignores it

        def steps(should_stop):
            if key in self._maps:
                yield 1.0
                return
            feats = None
            for p in F.extract_features_iter(net, data, layer):
                feats = p.features
                yield 0.8 * p.step / p.total  # the embedding itself reports no progress
                if should_stop():
                    return
            emb = embed(feats, method, perplexity=perplexity, seed=self.seed)
            try:
                accuracy = knn_accuracy(emb.coords, self.labels, k=5, seed=self.seed)
            except ValueError:  # too few images per class to cross-validate: the map still stands
                accuracy = None
            self._maps[key] = (emb, accuracy)
            yield 1.0
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
        self.draw_when_ready(self.runner, key, lambda: key in self._maps, self._map_steps(key), self.draw, self._key)

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


def map_figure(coords: np.ndarray, labels: np.ndarray, classes: list[str],
               thumbs: list[tuple[int, np.ndarray]] = (), selected: tuple[int, np.ndarray] | None = None,
               title: str = "") -> bytes:
    """The lecture's picture as PNG bytes: points coloured by class with a legend,
    thumbnails at some points (framed in their class colour), and the selected item
    circled on the map and shown at full size beside it."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    colours = colormaps["tab10" if len(classes) <= 10 else "tab20"]
    fig = Figure(figsize=(9.5, 6.2))
    grid = fig.add_gridspec(2, 2, width_ratios=(3.2, 1), height_ratios=(1.1, 1))
    ax = fig.add_subplot(grid[:, 0])
    for c, name in enumerate(classes):
        on = labels == c
        if on.any():
            ax.scatter(coords[on, 0], coords[on, 1], s=9, color=colours(c % colours.N), label=name, alpha=0.8)
    for i, picture in thumbs:
        box = AnnotationBbox(OffsetImage(picture, zoom=1.0), tuple(coords[i]), frameon=True, pad=0.1,
                             bboxprops={"edgecolor": colours(int(labels[i]) % colours.N), "linewidth": 1.5})
        ax.add_artist(box)
    if selected is not None:
        i = selected[0]
        ax.scatter([coords[i, 0]], [coords[i, 1]], s=260, facecolors="none", edgecolors="black", linewidths=2.0, zorder=5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    legend = fig.add_subplot(grid[0, 1])
    legend.set_axis_off()
    legend.legend(*ax.get_legend_handles_labels(), loc="upper left", fontsize=9, markerscale=2, frameon=False)
    side = fig.add_subplot(grid[1, 1])
    side.set_axis_off()
    if selected is not None:
        i, picture = selected
        side.imshow(picture)
        side.set_title(f"item {i}: {classes[int(labels[i])]}", fontsize=10)
    return render.figure_png(fig, dpi=80)
