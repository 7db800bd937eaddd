"""Lesson 04's app: every channel of any layer for one image, and one channel laid
over the image (``notebooks/04_activations.ipynb``)."""

from __future__ import annotations

import html
from collections import OrderedDict

import ipywidgets as W
import numpy as np

from .. import render
from ..engine.core.network import Network
from ..engine.inspect import activations as A
from ..render import activations as RA
from . import compat
from .base import App, single_step
from .controls import ChannelSlider, LayerPicker

__all__ = ["ActivationsApp"]

_WIDE = {"description_width": "70px"}


class ActivationsApp(App):
    """Feature maps of a layer as grey tiles, the chosen channel framed in red and
    overlaid on the image on the left.

    All layers' activations are computed in one forward pass per (model, image) (in
    the Runner) and cached, so switching layer or channel only redraws. Headless use:
    set ``app.layer.value``, ``app.channel.value``, ``app.top_only.value``,
    ``app.image_picker.value`` (or ``app.image_picker.choose(picture)``), wait for
    ``app.runner`` (or build with ``threaded=False``), then read ``app.view.value``
    (PNG), ``app.info.value`` and ``app.error``.
    """

    title = "Lesson 04 · activations"
    cache_size = 4  # (model, image) pairs kept; a layer's maps are small next to the model

    def __init__(self, model=None, *, image=None, layer: str | None = None, top_k: int = 16,
                 threaded: bool = True):
        super().__init__(model, image=image, pickers=("model", "image"), threaded=threaded)
        self.layer = LayerPicker()
        self.channel = ChannelSlider()
        self.top_only = W.Checkbox(value=False, description=f"top {top_k} channels only", indent=False)
        compat.set_tooltip(self.top_only, "only the channels with the highest mean activation for this image")
        self.normalize = W.ToggleButtons(options=[("layer", "layer"), ("channel", "channel")], value="layer",
                                         description="scale", style=_WIDE)
        compat.set_tooltip(self.normalize, "layer: one brightness scale for all tiles; channel: each its own")
        self.top_k = int(top_k)
        self._wanted_layer = None if layer is None else self.guarded(self.net.check_layer, later=True)(layer)
        self._cache: OrderedDict = OrderedDict()
        self._was_top_only = self.top_only.value
        self._shown_layer: tuple | None = None
        self.watch([self.layer, self.channel, self.top_only, self.normalize], self.refresh)
        self.arrange([self.model_picker, self.image_picker, self.layer, W.HBox([self.channel, self.top_only]),
                      self.normalize, self.runner])

    # -- state
    def _key(self) -> tuple:
        return (id(self.net), self.image_picker.value, id(self.image_picker.image))

    def layer_activations(self) -> tuple[np.ndarray, dict]:
        """(the input as the network sees it, uint8; {layer: C x H x W}) for the current
        model and image, from the cache (`refresh` fills it)."""
        key = self._key()
        self._cache.move_to_end(key)
        return self._cache[key]

    def refresh(self) -> None:
        """One forward pass per (model, image), in the Runner; then draw from the cache."""
        key, net, picture = self._key(), self.net, self.image_picker.image

        def forward():
            x = net.as_batch(picture, single=True, what="the activations app")
            self._cache[key] = (net.deprocess(x), {l: a.maps for l, a in A.all_activations(net, x).items()})
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

        self.draw_when_ready(key, lambda: key in self._cache, single_step(forward), self.draw)

    def _sync_layer(self, net: Network, acts: dict) -> None:
        if list(self.layer.options) == net.layers:
            return
        # Default: the last layer that still has a spatial map (AlexNet's conv5).
        spatial = [l for l in net.layers if acts[l].shape[-1] > 1]
        wanted = self._wanted_layer if self._wanted_layer in net.layers else (spatial or net.layers)[-1]
        with self.syncing():
            self.layer.set_network(net, wanted)

    # -- drawing
    def draw(self) -> None:
        net = self.net
        pixels, every = self.layer_activations()
        self._sync_layer(net, every)
        layer = self.layer.value
        acts = every[layer]
        if self.channel.max != len(acts) - 1:
            with self.syncing():
                self.channel.set_count(len(acts))
        top = A.top_channels(acts, self.top_k).tolist()
        # Channel numbers of different layers are unrelated: a new layer starts on its
        # strongest channel, and "top only" never leaves the chosen channel off the grid.
        new_layer = (id(net), layer) != self._shown_layer
        if new_layer or (self.top_only.value and not self._was_top_only and self.channel.value not in top):
            self.set_quietly(self.channel, value=top[0])
        self._shown_layer, self._was_top_only = (id(net), layer), self.top_only.value
        c = self.channel.value
        shown = top if self.top_only.value else None
        grid = RA.activation_grid(acts, channels=shown, normalize=self.normalize.value, highlight=c)
        overlay = RA.channel_overlay(pixels, acts[c])
        factor = max(1, int(round(224 / overlay.shape[0])))
        self.show_picture(render.beside([render.upscale(overlay, factor), grid]))
        self.show_text(self._describe(net, layer, acts, c, top))

    def _describe(self, net: Network, layer: str, acts, c: int, top: list[int]) -> str:
        means = acts.mean(dim=(1, 2))
        rank = int((means > means[c]).sum()) + 1
        shape = " x ".join(str(s) for s in acts.shape)
        silent = int((acts.flatten(1).max(1).values <= 0).sum())
        return (
            f"<b>{html.escape(net.name)}</b> · <b>{html.escape(layer)}</b>: {shape} "
            f"({silent} of {len(acts)} channels silent on this image). "
            f"Channel <b>{c}</b>: mean {float(means[c]):.3g}, max {float(acts[c].max()):.3g}, "
            f"rank {rank} of {len(acts)}.<br>Strongest channels: {', '.join(str(i) for i in top[:8])}."
        )
