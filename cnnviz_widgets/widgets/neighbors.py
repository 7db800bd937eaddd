"""Lesson 02's app: an image and its nearest neighbours, by pixels and by features."""

from __future__ import annotations

import html

import ipywidgets as W
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .. import render
from ..engine import features as F
from ..engine.data import load_dataset, model_for
from ..engine.images import load_image
from ..engine.models import load_model
from ..engine.neighbors import METRICS, nearest_neighbors
from . import compat
from .base import App, Runner
from .controls import LayerPicker

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
    (bottom row), each labelled, with how many share the query's label."""

    title = "Nearest neighbours: pixel space vs feature space"

    def __init__(self, dataset=None, model=None, layer: str | None = None, k: int = 5,
                 metric: str = "cosine", query: int = 0):
        self.dataset = dataset if dataset is not None else load_dataset()
        self.net = model if model is not None and not isinstance(model, str) else load_model(model or model_for(self.dataset))
        n = len(self.dataset)
        self.query = W.IntSlider(value=min(max(0, query), n - 1), min=0, max=n - 1, description="query",
                                 continuous_update=False, style=_STYLE)
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="upload")
        compat.set_tooltip(self.upload, "Use your own image as the query (it is checked first).")
        self.k = W.IntSlider(value=k, min=1, max=max(1, min(12, n - 1)), description="k",
                             continuous_update=False, style=_STYLE)
        self.metric = W.ToggleButtons(options=list(METRICS), value=metric if metric in METRICS else "cosine",
                                      description="metric", style=_STYLE)
        self.layer = LayerPicker(only=layer_fits)
        # Scans of the set run in the Runner's worker thread (progress, Stop); the
        # notebook stays responsive during the first scan of a layer.
        self.runner = Runner(run_label="Scan")
        self.uploaded: tuple[str, Image.Image] | None = None
        self.labels = F.dataset_labels(self.dataset).tolist()
        self._features: dict[str, object] = {}
        controls = [W.HBox([self.query, self.upload]), W.HBox([self.k, self.metric]), self.layer, self.runner]
        super().__init__(controls)
        self.connect_runner(self.runner, self.refresh)

        wanted_problem = None
        if layer is not None:
            try:
                self.net.check_layer(layer)
            except ValueError as e:
                wanted_problem, layer = e, None
        self.layer.set_network(self.net, layer or F.default_feature_layer(self.net))

        self.upload.observe(self.guarded(self._on_upload), names="value")
        self.query.observe(self.guarded(self._on_query), names="value")
        self.watch([self.k, self.metric, self.layer], self.refresh)
        self.guarded(self.refresh)()
        if wanted_problem is not None:
            self.show_error(wanted_problem)

    # -- the query
    def _on_query(self, _change=None) -> None:
        self.uploaded = None  # moving the slider goes back to the set's images
        self.refresh()

    def _on_upload(self, _change=None) -> None:
        files = compat.uploaded_files(self.upload)
        if not files:
            return
        compat.clear_upload(self.upload)
        self.use_upload(*files[-1])

    def use_upload(self, name: str, data: bytes) -> None:
        """Check an uploaded file and make it the query; a bad file leaves the query as it was."""
        image = load_image(data, name=name)
        self.uploaded = (name, image)
        note = image.info.get("cnnviz_note")
        self.show_note(f"{name}: {note}" if note else "")
        self.refresh()

    def _spaces(self) -> tuple[str, str]:
        return (F.PIXELS, self.layer.value)

    def _scan_steps(self, missing):
        """The scans still missing, as one stream of progress fractions (worker thread)."""
        net, data = self.net, self.dataset

        def steps(should_stop):
            spaces = missing()
            for i, space in enumerate(spaces):
                for p in F.extract_features_iter(net, data, space):
                    if p.features is not None:
                        self._features[space] = p.features
                    yield (i + p.step / p.total) / len(spaces)
                    if should_stop():
                        return
        return steps

    def _scanned(self, space: str):
        # The engine's cache first; a dataset without a name is never cached there, so
        # the worker's own result is kept for it.
        if F.is_cached(self.net, self.dataset, space) or space not in self._features:
            self._features[space] = F.extract_features(self.net, self.dataset, space)
        return self._features[space]

    # -- compute and draw
    def refresh(self) -> None:
        """Scan what is missing (in the worker thread), then find and draw the neighbours."""
        spaces = self._spaces()

        def missing() -> list[str]:
            return [s for s in spaces if not F.is_cached(self.net, self.dataset, s) and s not in self._features]

        self.draw_when_ready(self.runner, spaces, lambda: not missing(), self._scan_steps(missing), self.draw,
                             self._spaces)

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
                query_vec, query_label = F.image_features(self.net, self.uploaded[1], space), None
            idx, dist = nearest_neighbors(feats, query_vec, k=k, metric=metric)
            idx = idx.tolist()
            same = sum(labels[i] == query_label for i in idx) if query_label is not None else None
            title = "pixel space" if space == F.PIXELS else f"feature space ({layer})"
            count = f": {same}/{k} share the query's label" if same is not None else ""
            rows.append(self._row(title + count, idx, dist.tolist()))
            texts.append((title, same))
        # Hold on to the two scans on show only (the engine's cache keeps more, bounded).
        self._features = {space: self._features[space] for space in (F.PIXELS, layer) if space in self._features}
        self.neighbors = rows
        picture = np.concatenate(rows, axis=0)
        self.show_picture(picture)
        self.show_text(self._summary(texts, k))

    def _tile(self, image) -> np.ndarray:
        return self.net.deprocess(self.net.preprocess(image))

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
        return _with_heading(grid, title)

    def _summary(self, texts, k: int) -> str:
        lines = []
        for title, same in texts:
            share = f"{same}/{k} neighbours share the query's label" if same is not None else "the upload has no label"
            lines.append(f"<li><b>{html.escape(title)}</b>: {share}</li>")
        query = (f"your upload <i>{html.escape(self.uploaded[0])}</i> (move the slider to go back to the set)"
                 if self.uploaded else f"item {self.query.value} of {html.escape(str(self.dataset.name))}")
        return f"<div>Query: {query}; {self.metric.value} distance under each neighbour.</div><ul>{''.join(lines)}</ul>"


def _with_heading(grid: np.ndarray, text: str, height: int = 16) -> np.ndarray:
    strip = Image.new("RGB", (grid.shape[1], height), (255, 255, 255))
    ImageDraw.Draw(strip).text((4, 2), text, fill=(0, 0, 0), font=ImageFont.load_default())
    return np.concatenate([np.asarray(strip), grid], axis=0)
