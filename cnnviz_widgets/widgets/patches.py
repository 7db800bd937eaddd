"""Lesson 05's app: for several channels of a layer, the dataset patches that excite
each one most, one row per channel (the lecture's grid of maximally activating patches).

The dataset is scanned once per (model, dataset, layer) in a worker thread, with a
progress bar and a Stop button; every channel is then answered from that scan.
"""

from __future__ import annotations

import html
from collections import OrderedDict

import ipywidgets as W
import numpy as np

from .. import render
from ..engine.core import checks
from ..engine.core.network import Network
from ..engine.inspect import patches as engine
from .base import App
from .controls import ChannelSlider, LayerPicker

__all__ = ["PatchesApp"]

TILE = 64  # pixels per patch on screen, whatever the field size


class PatchesApp(App):
    """Layer and channel pickers over a k x n grid of maximally activating patches.

    `dataset`: a dataset or its name (default ``load_dataset()``); `model`: a Network or
    a name (default the dataset's model, ``model_for``). `rows` channels are shown from
    the chosen one on, `k` patches each. Scans run in the Runner (progress, Stop; a
    stopped scan is kept, Scan runs it again); ``threaded=False`` scans in the caller (tests).
    """

    title = "Maximally activating patches"
    run_label = "Scan"

    def __init__(self, model=None, *, dataset=None, layer: str | None = None, channel: int = 0,
                 rows: int = 4, k: int = 9, batch_size: int = 64, threaded: bool = True):
        super().__init__(model, dataset=dataset, pickers=("model", "dataset"), threaded=threaded)
        self.k, self.batch_size = int(k), int(batch_size)
        self.scan: engine.PatchScan | None = None
        self.grid: np.ndarray | None = None
        self._scans: dict[tuple, engine.PatchScan] = {}
        self._pixels: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.layer = LayerPicker(self.net, value=_default_layer(self.net))
        self.channel = ChannelSlider()
        self.rows = W.IntSlider(value=max(1, min(8, int(rows))), min=1, max=8, description="channels",
                                continuous_update=False, style={"description_width": "70px"})
        # A bad constructor argument is reported like any bad setting; the default stays.
        self.guarded(self._select, later=True)(layer, None)
        self.channel.set_count(self.net.layer_shape(self.layer.value)[0])
        self.guarded(self._select, later=True)(None, channel)
        self.watch([self.layer], self.refresh)
        self.watch([self.channel, self.rows], self.draw)
        self.arrange([W.HBox([self.model_picker, self.dataset_picker]), W.HBox([self.layer, self.rows]),
                      self.channel, self.runner])

    def on_model(self, net: Network) -> None:
        self.layer.set_network(net, _default_layer(net))

    # -- what the learner (or a test) sets
    def select(self, layer: str | None = None, channel: int | None = None) -> None:
        """Show `layer` from `channel` on; a bad name or index is reported in the message line."""
        self.guarded(self._select)(layer, channel)

    def _select(self, layer: str | None, channel: int | None) -> None:
        if layer is not None and layer != self.layer.value:
            self.layer.value = self.net.check_layer(layer)  # triggers refresh
        if channel is not None and channel != self.channel.value:
            count = self.net.layer_shape(self.layer.value)[0]
            self.channel.value = checks.channel(self.net, self.layer.value, channel, channels=count)

    def run(self) -> None:
        """The Scan button: scan the set for this layer again (a stopped scan is completed)."""
        self._scans.pop(self._key(), None)
        self._start_scan()

    def _key(self) -> tuple:
        return (id(self.net), id(self.dataset), self.layer.value)

    def refresh(self) -> None:
        """A new layer: show its cached scan, or start scanning the dataset for it."""
        layer = self.layer.value
        with self.syncing():
            self.channel.set_count(self.net.layer_shape(layer)[0])
        scan = self._scans.get(self._key()) or engine.cached_scan(self.net, self.dataset, layer, self.k)
        if scan is not None:
            self.runner.cancel()
            self._scans[self._key()] = scan
            self.draw()
        else:
            self.scan, self.grid = None, None
            self.show_text(f"scanning {len(self.dataset)} images of {html.escape(self.dataset.name)} "
                           f"up to {html.escape(layer)}…")
            self._start_scan()

    def _start_scan(self) -> None:
        # A scan replaced by a newer one is stale (dropped); one the learner stopped is kept.
        net, data, layer, key = self.net, self.dataset, self.layer.value, self._key()

        def steps(should_stop):
            return engine.max_activating_patches_iter(net, data, layer, k=self.k,
                                                      batch_size=self.batch_size, should_stop=should_stop)

        def done(last, stopped):
            if last is not None and last.result is not None:  # the scan, or as far as it got
                self._scans[key] = last.result
                self.guarded(self.draw)()
            elif stopped:
                self.show_text("The scan was stopped before it found anything: press <b>Scan</b> to run it again.")

        self.runner.start(steps, on_done=done)

    def draw(self) -> None:
        """Answer from the cached scan: rows of channels, k patches each."""
        scan = self._scans.get(self._key())
        if scan is None:
            return  # the scan is still running; it draws when done
        self.scan = scan
        first = scan.check_channel(self.channel.value)
        channels = list(range(first, min(scan.channels, first + self.rows.value)))
        tiles, labels = [], []
        for c in channels:
            for j, (i, r, col, value) in enumerate(scan.top(c)):
                tiles.append(render.fit_tile(engine.crop_pixels(self.pixels(i), scan.rf, r, col), TILE))
                labels.append(f"#{c} {value:.3g}" if j == 0 else f"{value:.3g}")
        self.grid = render.tile_grid(tiles, ncols=scan.k, normalize_mode="none", labels=labels)
        self.show_picture(self.grid)
        self.show_text(self._caption(scan, channels))

    # -- helpers
    def pixels(self, index: int) -> np.ndarray:
        """Image `index` as the network sees it (uint8), kept for the last few hundred."""
        key = (id(self.net), id(self.dataset), index)
        if key not in self._pixels:
            x = self.net.as_batch(self.dataset[index].image, single=True, what="the patches app")
            self._pixels[key] = self.net.deprocess(x)
            while len(self._pixels) > 512:
                self._pixels.popitem(last=False)
        self._pixels.move_to_end(key)
        return self._pixels[key]

    def _caption(self, scan: engine.PatchScan, channels: list[int]) -> str:
        s = self.net.input_size
        if scan.rf.is_global:
            field = f"<b>{scan.layer}</b> sees the whole {s}×{s} image, so each patch is a whole image."
        else:
            field = (f"<b>{scan.layer}</b>: each unit sees a <b>{scan.rf.size}×{scan.rf.size} px</b> patch of the "
                     f"{s}×{s} input (stride {scan.rf.stride} px); grey marks where the field leaves the image.")
        partial = "" if scan.complete else f" <i>Scan stopped: only the first {scan.n_images} images.</i>"
        return (f"{field}<br>Rows: channels {channels[0]}–{channels[-1]} of {scan.channels}; "
                f"each row shows the {scan.k} strongest of {scan.n_images} images of "
                f"{html.escape(scan.dataset)}, strongest on the left.{partial}")


def _default_layer(net: Network) -> str:
    """The last layer with a spatial field: the lecture's conv5."""
    spatial = [l for l in net.layers if not net.receptive_field(l).is_global]
    return spatial[-1] if spatial else net.layers[-1]
