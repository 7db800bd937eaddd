"""Lesson 01's app: browse a network's first-layer filters, and see why deeper ones
are not drawn (``notebooks/01_first_layer_filters.ipynb``)."""

from __future__ import annotations

import html

import ipywidgets as W
import numpy as np

from .. import render
from ..engine.core.network import Network
from ..engine.inspect import filters as F
from ..render import filters as RF
from . import compat
from .base import App

__all__ = ["FiltersApp"]

_WIDE = {"description_width": "70px"}


def _hidden(widget: W.Widget, hidden: bool) -> None:
    widget.layout.display = "none" if hidden else None


class FiltersApp(App):
    """First-layer filters as colour tiles, one filter zoomed with its R, G, B weights;
    for the ``shapes`` model, a slider over training steps shows the filters forming;
    the "deeper layer" view draws one filter of a later convolution, kernel by kernel.

    Headless use: set ``app.model_picker.value``, ``app.normalize.value`` (``"per_filter"`` or
    ``"global"``), ``app.filter.value``, ``app.snapshot.value`` (a snapshot index),
    ``app.mode.value`` (``"first"`` or ``"deeper"``), ``app.conv.value`` (a conv index);
    read ``app.view.value`` (PNG), ``app.info.value`` and ``app.error``.
    """

    title = "Lesson 01 · first-layer filters"

    def __init__(self, model=None, *, normalize: str = "per_filter", mode: str = "first", threaded: bool = True):
        super().__init__(model, threaded=threaded)
        self.normalize = W.ToggleButtons(options=[("per filter", "per_filter"), ("global", "global")],
                                         value=normalize, description="scale", style=_WIDE)
        compat.set_tooltip(self.normalize, "per filter: each tile uses its own range; global: one range for all")
        self.mode = W.ToggleButtons(options=[("first layer", "first"), ("deeper layer", "deeper")],
                                    value=mode, description="show", style=_WIDE)
        self.conv = W.Dropdown(options=[("-", 0)], value=0, description="conv", style=_WIDE)
        self.filter = W.IntSlider(min=0, max=0, value=0, description="filter", style=_WIDE, continuous_update=False)
        self.snapshot = W.SelectionSlider(options=[("0", 0)], value=0, description="training step",
                                          style={"description_width": "90px"}, continuous_update=False,
                                          layout=W.Layout(width="420px"))
        compat.set_tooltip(self.snapshot, "conv1 of the shapes model, recorded while it was trained")
        self._snapshots: list | None = None
        self.on_model(self.net)
        self.watch([self.normalize, self.mode, self.conv, self.filter, self.snapshot], self.refresh)
        self.arrange([self.model_picker, self.normalize, self.mode, self.conv, self.filter, self.snapshot])

    # -- keeping the controls consistent with the model and the view
    def on_model(self, net: Network) -> None:
        convs = F.conv_layers(net)
        modules = dict(net.model.named_modules())
        readable = {}
        for layer in net.layers:
            try:
                readable.setdefault(F.conv_module(net, layer)[0], layer)
            except ValueError:
                pass
        options = []
        for i, path in enumerate(convs):
            w = modules[path].weight
            name = f"{readable[path]} · {path}" if path in readable else path
            options.append((f"{name} ({'x'.join(str(s) for s in w.shape)})", i))
        deeper = options[1:] or options
        # A spatial kernel over all input channels makes the point best (AlexNet's conv2).
        spatial = [i for _, i in deeper if modules[convs[i]].kernel_size[0] > 1 and modules[convs[i]].groups == 1]
        self.set_quietly(self.conv, options=deeper, value=(spatial or [deeper[0][1]])[0])
        self._snapshots = None
        if net.name == "shapes":
            try:
                self._snapshots = F.filter_snapshots()
            except FileNotFoundError as e:
                self.show_note(str(e))
        if self._snapshots:
            opts = [(f"{step}", i) for i, (step, _) in enumerate(self._snapshots)]
            self.set_quietly(self.snapshot, options=opts, value=len(opts) - 1)

    def _sync_visibility(self) -> None:
        deeper = self.mode.value == "deeper"
        _hidden(self.conv, not deeper)
        _hidden(self.snapshot, deeper or not self._snapshots)

    def _set_filter_count(self, n: int) -> None:
        if self.filter.max != n - 1:
            self.set_quietly(self.filter, max=n - 1, value=min(self.filter.value, n - 1))

    # -- drawing
    def refresh(self) -> None:
        net = self.net
        self._sync_visibility()
        if self.mode.value == "deeper":
            self._show_deeper(net)
        else:
            self._show_first(net)

    def _first_weights(self, net: Network):
        if self._snapshots:
            step, weights = self._snapshots[self.snapshot.value]
            return weights, f"training step {step} of {self._snapshots[-1][0]}"
        return F.first_layer_filters(net).weights, "trained weights"

    def _show_first(self, net: Network) -> None:
        weights, when = self._first_weights(net)
        self._set_filter_count(len(weights))
        i = self.filter.value
        norm = self.normalize.value
        grid = RF.filter_grid(weights, norm, highlight=i)
        zoom = RF.filter_zoom(weights, i, norm)
        self.show_picture(render.stack([grid, zoom]))
        cout, _, k, _ = weights.shape
        rough = F.filter_smoothness(weights)
        self.show_text(
            f"<b>{html.escape(net.name)}</b>: {cout} filters of 3 x {k} x {k} ({html.escape(when)}). "
            f"Grey is a zero weight; a colour means the filter adds that colour, its opposite "
            f"that it subtracts it.<br>Roughness (lower is smoother; random weights score about 1): "
            f"<b>{rough:.2f}</b>. Filter {i}: weights from {float(weights[i].min()):.3f} to "
            f"{float(weights[i].max()):.3f}."
        )

    def _show_deeper(self, net: Network) -> None:
        path = F.conv_layers(net)[self.conv.value]
        conv = dict(net.model.named_modules())[path]
        self._set_filter_count(conv.out_channels)
        i = self.filter.value
        kernels = F.deeper_filters(net, self.conv.value, i).weights
        cin, k = kernels.shape[0], kernels.shape[-1]
        ncols = int(np.ceil(np.sqrt(cin)))
        scale = max(2, min(36 // k, 720 // (ncols * k)))  # ~36 px tiles, at most ~720 px wide
        self.show_picture(RF.filter_grid(kernels, self.normalize.value, scale=scale, ncols=ncols))
        self.show_text(
            f"<b>{html.escape(path)}</b>, filter {i}: {cin} kernels of {k} x {k}, one per input channel. "
            "Each weighs one feature map of the layer before, not a colour of the image, so the "
            "picture is a pattern over features that have no look of their own: that is why the "
            "lecture draws only the first layer's weights, and uses other tools (lessons 04-09) "
            "for deeper layers."
        )
