"""Lesson 02's app: an image and its nearest neighbours, by pixels and by features."""

from __future__ import annotations

import html

import ipywidgets as W
import numpy as np
from PIL import Image

from .. import render
from ..engine.inspect import features as F
from ..engine.inspect.neighbors import METRICS, nearest_neighbors
from .base import App
from .runner import in_sequence, single_step
from .controls import ImageUpload, LayerPicker

__all__ = ["NeighborsApp", "layer_fits"]

_STYLE = {"description_width": "70px"}
#: Layers whose feature vectors are longer than this are left out of the picker: a scan
#: of conv1 of a 224-px network holds 200k+ numbers per image.
MAX_PICKER_FEATURES = 65536


def layer_fits(net, layer: str) -> bool:
    return F.feature_size(net, layer) <= MAX_PICKER_FEATURES


class NeighborsApp(App):
    """Pick a query (an item of the set or your own upload), k, metric and layer; see
    its k nearest neighbours by raw pixels (top row) and by the layer's features
    (bottom row), each labelled, with how many share the query's label.

    Scans of the set run in the Runner (progress, Stop); scanned layers answer at once.
    """

    title = "Nearest neighbours: pixel space vs feature space"
    run_label = "Scan"

    def __init__(self, model=None, *, dataset=None, layer: str | None = None, k: int = 5,
                 metric: str = "cosine", query: int = 0, threaded: bool = True):
        super().__init__(model, dataset=dataset, pickers=("model", "dataset"), threaded=threaded)
        self.query = W.IntSlider(value=0, min=0, max=0, description="query", continuous_update=False, style=_STYLE)
        self.upload = ImageUpload()
        self.upload.on_image = self._use_upload
        self.upload.on_error, self.upload.on_note = self.show_error, self.show_note
        self.k = W.IntSlider(value=1, min=1, max=1, description="k", continuous_update=False, style=_STYLE)
        self.metric = W.ToggleButtons(options=list(METRICS), value=metric if metric in METRICS else "cosine",
                                      description="metric", style=_STYLE)
        self.layer = LayerPicker(only=layer_fits)
        self.uploaded: tuple[str, Image.Image] | None = None
        self._features: dict[tuple, object] = {}  # (network, dataset, space) -> what a scan found
        self._query: dict[tuple, object] = {}  # (network, space) -> the upload's features
        self.on_dataset(self.dataset)
        self.query.value, self.k.value = min(max(0, query), self.query.max), min(max(1, k), self.k.max)
        if layer is not None:
            layer = self.guarded(self.net.check_layer, later=True)(layer)
        self.layer.set_network(self.net, layer or F.default_feature_layer(self.net))
        self.watch([self.query], self._on_query)
        self.watch([self.k, self.metric, self.layer], self.refresh)
        self.arrange([W.HBox([self.model_picker, self.dataset_picker]), W.HBox([self.query, self.upload]),
                      W.HBox([self.k, self.metric]), self.layer, self.runner])

    def on_model(self, net) -> None:
        self.layer.set_network(net, F.default_feature_layer(net))

    def on_dataset(self, dataset) -> None:
        n = len(dataset)
        self.query.max, self.k.max = n - 1, max(1, min(12, n - 1))
        self.labels = F.dataset_labels(dataset).tolist()

    # -- the query
    def _on_query(self) -> None:
        self.uploaded = None  # moving the slider goes back to the set's images
        self.refresh()

    def use_upload(self, name: str, data: bytes) -> None:
        """Check an uploaded file and make it the query; a bad file leaves the query as it was."""
        self.upload.load(name, data)

    def _use_upload(self, name: str, image: Image.Image) -> None:
        self.uploaded, self._query = (name, image), {}
        self.guarded(self.refresh)()

    def _spaces(self) -> tuple[str, str]:
        return (F.PIXELS, self.layer.value)

    def _scan_steps(self, net, spaces: list[str], upload: Image.Image | None):
        """The scans still missing (the engine's `extract_features_iter`), then the
        upload's features, as one job with one progress bar (worker thread)."""
        data = self.dataset

        def scan(space, should_stop):
            for p in F.extract_features_iter(net, data, space, should_stop=should_stop):
                if p.done and p.result.ended == "done":
                    self._features[(id(net), id(data), space)] = p.result.vectors
                yield p

        def describe_upload():
            for space in self._spaces():
                self._query_features(net, upload, space)

        def steps(should_stop):
            runs = [lambda space=space: scan(space, should_stop) for space in spaces]
            if upload is not None:
                runs.append(lambda: single_step(describe_upload)(should_stop))
            return in_sequence(runs)
        return steps

    def _query_features(self, net, upload: Image.Image, space: str):
        key = (id(net), space)
        if key not in self._query:
            self._query[key] = F.image_features(net, upload, space)
        return self._query[key]

    def _scanned(self, space: str):
        # The engine's cache first; a dataset without a name is never cached there, so
        # the worker's own result is kept for it.
        key = (id(self.net), id(self.dataset), space)
        if F.is_cached(self.net, self.dataset, space) or key not in self._features:
            self._features[key] = F.extract_features(self.net, self.dataset, space).vectors
        return self._features[key]

    # -- compute and draw
    def refresh(self) -> None:
        """Scan what is missing (in the Runner), then find and draw the neighbours."""
        net, data, spaces = self.net, self.dataset, self._spaces()
        missing = [s for s in spaces if not F.is_cached(net, data, s) and (id(net), id(data), s) not in self._features]
        upload = self.uploaded[1] if self.uploaded is not None else None
        ready = not missing and (upload is None or all((id(net), s) in self._query for s in spaces))
        self.draw_when_ready((id(net), id(data), *spaces, id(upload)), lambda: ready,
                             self._scan_steps(net, missing, upload), self.draw)

    def draw(self) -> None:
        layer = self.layer.value
        k, metric = self.k.value, self.metric.value
        labels = self.labels
        rows, texts = [], []
        for space in (F.PIXELS, layer):
            feats = self._scanned(space)
            if self.uploaded is None:
                q = self.query.value
                query_vec, query_label = q, labels[q]
            else:
                query_vec, query_label = self._query_features(self.net, self.uploaded[1], space), None
            idx, dist = nearest_neighbors(feats, query_vec, k=k, metric=metric)
            idx = idx.tolist()
            same = sum(labels[i] == query_label for i in idx) if query_label is not None else None
            title = "pixel space" if space == F.PIXELS else f"feature space ({layer})"
            count = f": {same}/{k} share the query's label" if same is not None else ""
            rows.append(self._row(title + count, idx, dist.tolist()))
            texts.append((title, same))
        # Hold on to the two scans on show only (the engine's cache keeps more, bounded).
        shown = [(id(self.net), id(self.dataset), space) for space in (F.PIXELS, layer)]
        self._features = {key: self._features[key] for key in shown if key in self._features}
        self.neighbors = rows
        picture = np.concatenate(rows, axis=0)
        self.show_picture(picture)
        self.show_text(self._summary(texts, k))

    def _tile(self, image) -> np.ndarray:
        return self.net.deprocess(self.net.as_batch(image, single=True, what="the neighbours app"))

    def _query_tile(self) -> tuple[np.ndarray, str]:
        if self.uploaded is not None:
            return self._tile(self.uploaded[1]), "query (upload)"
        item = self.dataset[self.query.value]
        return self._tile(item.image), f"query {self.dataset.classes[item.label]}"

    def _row(self, title: str, idx: list[int], dist: list[float]) -> np.ndarray:
        query, query_label = self._query_tile()
        tiles = [query] + [self._tile(self.dataset[i].image) for i in idx]
        names = [query_label] + [f"#{i} {self.dataset.classes[self.labels[i]]} {d:.2f}" for i, d in zip(idx, dist)]
        size = 112 if self.net.input_size >= 112 else 2 * self.net.input_size
        grid = render.tile_grid(tiles, ncols=len(tiles), normalize_mode="none", labels=names, tile_size=(size, size))
        return render.with_heading(grid, title)

    def _summary(self, texts, k: int) -> str:
        lines = []
        for title, same in texts:
            share = f"{same}/{k} neighbours share the query's label" if same is not None else "the upload has no label"
            lines.append(f"<li><b>{html.escape(title)}</b>: {share}</li>")
        query = (f"your upload <i>{html.escape(self.uploaded[0])}</i> (move the slider to go back to the set)"
                 if self.uploaded else f"item {self.query.value} of {html.escape(str(self.dataset.name))}")
        return f"<div>Query: {query}; {self.metric.value} distance under each neighbour.</div><ul>{''.join(lines)}</ul>"

