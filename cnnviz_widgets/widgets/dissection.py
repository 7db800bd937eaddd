"""Lesson 15's app: network dissection. Pick a layer and a concept (a shape); see the
units whose best concept it is, ranked by IoU, each with its top dataset patches
(lesson 05's scan) and whether it counts as a detector.

One job per (model, dataset, layer) in the Runner: the dissection (one pass over the
dataset), then the patch scan (cached by the engine). Every concept of that layer then
answers at once from the two results.
"""

from __future__ import annotations

import html

import ipywidgets as W
import numpy as np

from .. import render
from ..engine.inspect import dissection as engine
from ..engine.inspect import patches
from ..engine.core.network import Network
from .base import App
from .controls import LayerPicker

__all__ = ["DissectionApp"]

TILE = 56  # pixels per patch on screen


class DissectionApp(App):
    """Layer and concept pickers over the concept's units: one row per unit, its `k` top
    patches, its IoU with the concept in the first tile's label.

    `dataset`: a dataset with object masks (default ``load_dataset()``, the shapes);
    `model`: a Network or a name (default the dataset's model). `quantile` and
    `iou_threshold` are the dissection's settings (Bau et al.'s 0.005 and 0.04).
    """

    title = "Network dissection: which units are detectors?"
    run_label = None

    def __init__(self, model=None, *, dataset=None, layer: str | None = None, concept: str | None = None,
                 rows: int = 4, k: int = 6, quantile: float = 0.005, iou_threshold: float = 0.04,
                 batch_size: int = 64, threaded: bool = True):
        super().__init__(model, dataset=dataset, pickers=("model", "dataset"), threaded=threaded)
        self.k, self.batch_size = int(k), int(batch_size)
        self.quantile, self.iou_threshold = float(quantile), float(iou_threshold)
        self.results: dict[tuple, tuple[engine.Dissection, patches.PatchScan]] = {}
        self.dissection: engine.Dissection | None = None
        self.grid: np.ndarray | None = None
        self.layer = LayerPicker(self.net, value=_default_layer(self.net))
        self.concept = W.Dropdown(options=list(self.dataset.classes), description="concept",
                                  style={"description_width": "70px"})
        self.rows = W.IntSlider(value=max(1, min(8, int(rows))), min=1, max=8, description="units",
                                continuous_update=False, style={"description_width": "70px"})
        self.guarded(self._select, later=True)(layer, concept)
        self.watch([self.layer], self.refresh)
        self.watch([self.concept, self.rows], self.draw)
        self.arrange([W.HBox([self.model_picker, self.dataset_picker]), W.HBox([self.layer, self.concept]),
                      self.rows, self.runner])

    def on_model(self, net: Network) -> None:
        self.layer.set_network(net, _default_layer(net))

    def on_dataset(self, dataset) -> None:
        self.set_quietly(self.concept, options=list(dataset.classes), value=dataset.classes[0])

    def select(self, layer: str | None = None, concept: str | None = None) -> None:
        """Show `layer` and `concept`; a bad name is reported in the message line."""
        self.guarded(self._select)(layer, concept)

    def _select(self, layer, concept) -> None:
        if layer is not None and layer != self.layer.value:
            self.layer.value = self.net.check_layer(layer)
        if concept is not None and concept != self.concept.value:
            if concept not in self.concept.options:
                raise ValueError(f"concept must be one of {', '.join(map(repr, self.concept.options))}, "
                                 f"not {concept!r}")
            self.concept.value = concept

    def _key(self) -> tuple:
        return (id(self.net), id(self.dataset), self.layer.value)

    def refresh(self) -> None:
        net, data, layer, key = self.net, self.dataset, self.layer.value, self._key()
        if len(data) == 0 or getattr(data[0], "mask", None) is None:
            self.runner.cancel()
            self.grid = None
            self.show_picture(np.full((TILE, TILE * self.k, 3), 235, np.uint8))  # no units to show
            self.show_text(f"{html.escape(str(data.name))} has no object masks, so there is nothing to measure "
                           "a unit against: pick the shapes.")
            return
        # Settings checked here, before any work: a layer without maps is a message, not a job.
        engine.dissect_iter(net, data, layer, quantile=self.quantile, iou_threshold=self.iou_threshold,
                            batch_size=self.batch_size)
        found: dict = {}

        def steps(should_stop):
            for progress in engine.dissect_iter(net, data, layer, quantile=self.quantile,
                                                iou_threshold=self.iou_threshold, batch_size=self.batch_size,
                                                should_stop=should_stop):
                yield progress
            if progress.result.ended != "done":
                return
            found["dissection"] = progress.result
            for progress in patches.max_activating_patches_iter(net, data, layer, k=self.k,
                                                                batch_size=self.batch_size, should_stop=should_stop):
                yield progress
            if progress.result.ended == "done":
                self.results[key] = (found["dissection"], progress.result)

        if key not in self.results:
            self.show_text(f"dissecting {html.escape(layer)} over {len(data)} images of "
                           f"{html.escape(str(data.name))}…")
        self.draw_when_ready(key, lambda: key in self.results, steps, self.draw)

    def draw(self) -> None:
        found = self.results.get(self._key())
        if found is None:
            return  # still running; it draws when done
        dissection, scan = found
        self.dissection = dissection
        concept = self.concept.value
        ranked = dissection.units_of(concept)[:self.rows.value]
        if not ranked:
            self.grid = None
            self.show_text(self._caption(dissection, concept, ranked))
            self.show_picture(np.full((TILE, TILE * self.k, 3), 255, np.uint8))
            return
        tiles, labels = [], []
        for unit, iou in ranked:
            for j, crop in enumerate(scan.patches(unit, self.dataset)):
                tiles.append(render.fit_tile(crop, TILE))
                labels.append(f"#{unit} IoU {iou:.2f}" if j == 0 else "")
        self.grid = render.tile_grid(tiles, ncols=scan.k, normalize_mode="none", labels=labels)
        self.show_picture(self.grid)
        self.show_text(self._caption(dissection, concept, ranked))

    def _caption(self, d: engine.Dissection, concept: str, ranked) -> str:
        counts = d.detectors_per_concept()
        detectors = sum(1 for _, iou in ranked if iou > d.iou_threshold)
        if ranked:
            shown = (f"Rows: the {len(ranked)} units of <b>{html.escape(d.layer)}</b> whose best concept is "
                     f"<b>{html.escape(concept)}</b>, highest IoU first; {detectors} of them are above "
                     f"{d.iou_threshold:g} (detectors). Each row: the unit's {self.k} strongest patches.")
        else:
            shown = f"No unit of <b>{html.escape(d.layer)}</b> has <b>{html.escape(concept)}</b> as its best concept."
        return (f"{shown}<br><b>{d.n_detectors}</b> of {d.units} units of {html.escape(d.layer)} are detectors "
                f"over {d.n_images} images; of <b>{html.escape(concept)}</b>: {counts[concept]}.")


def _default_layer(net: Network) -> str:
    """The last layer with feature maps: the lecture's conv5."""
    spatial = [l for l in net.layers if len(net.layer_shape(l)) == 3 and not net.receptive_field(l).is_global]
    return spatial[-1] if spatial else net.layers[0]
