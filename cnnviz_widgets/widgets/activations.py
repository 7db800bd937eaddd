"""Lesson 04's app: every channel of any layer for one image, and one channel laid
over the image (``notebooks/04_activations.ipynb``)."""

from __future__ import annotations

import html
from collections import OrderedDict

import ipywidgets as W
import numpy as np

from .. import render
from ..engine import activations as A
from ..render import activations as RA
from ..engine.images import as_pil
from ..engine.models import Network
from . import compat
from .base import App
from .controls import ChannelSlider, ImagePicker, LayerPicker, ModelPicker

__all__ = ["ActivationsApp"]

_WIDE = {"description_width": "70px"}


def beside(left: np.ndarray, right: np.ndarray, gap: int = 8) -> np.ndarray:
    """Two uint8 pictures side by side, top-aligned on white."""
    h = max(left.shape[0], right.shape[0])
    pad = lambda p: np.pad(p, ((0, h - p.shape[0]), (0, 0), (0, 0)), constant_values=255)
    return np.concatenate([pad(left), np.full((h, gap, 3), 255, np.uint8), pad(right)], axis=1)


def _shape_examples(count: int = 5) -> dict:
    """A few synthetic shapes (what the ``shapes`` model knows), besides the photos."""
    from ..engine.shapes import ShapesDataset

    data = ShapesDataset(count, seed=404)
    return {f"shape: {data.classes[item.label]}": item.image for item in data}


class ActivationsApp(App):
    """Feature maps of a layer as grey tiles, the chosen channel framed in red and
    overlaid on the image on the left.

    All layers' activations are computed in one forward pass per (model, image) and
    cached, so switching layer or channel only redraws. Headless use: set
    ``app.layer.value``, ``app.channel.value``, ``app.top_only.value``,
    ``app.image.value`` (or ``app.image.load_upload(name, bytes)``), then read
    ``app.view.value`` (PNG), ``app.info.value`` and ``app.error``.
    """

    title = "Lesson 04 · activations"
    cache_size = 4  # (model, image) pairs kept; a layer's maps are small next to the model

    def __init__(self, model: str | None = None, image=None, layer: str | None = None, top_k: int = 16):
        self.model = ModelPicker(value=model)
        extra = _shape_examples()
        if image is not None and not isinstance(image, str):
            extra["your image"] = as_pil(image)
            image = "your image"
        self.image = ImagePicker(extra=extra, value=image)
        self.image.on_error = self.show_error
        self.image.on_note = self.show_note
        self.layer = LayerPicker()
        self.channel = ChannelSlider()
        self.top_only = W.Checkbox(value=False, description=f"top {top_k} channels only", indent=False)
        compat.set_tooltip(self.top_only, "only the channels with the highest mean activation for this image")
        self.normalize = W.ToggleButtons(options=[("layer", "layer"), ("channel", "channel")], value="layer",
                                         description="scale", style=_WIDE)
        compat.set_tooltip(self.normalize, "layer: one brightness scale for all tiles; channel: each its own")
        super().__init__([self.model, self.image, self.layer, W.HBox([self.channel, self.top_only]), self.normalize])
        self.top_k = int(top_k)
        self.net: Network | None = None
        self._wanted_layer = layer
        self._cache: OrderedDict = OrderedDict()
        self._was_top_only = self.top_only.value
        self._shown_layer: tuple | None = None
        self.watch([self.model, self.image.dropdown, self.layer, self.channel, self.top_only, self.normalize],
                   self.refresh)
        self.guarded(self.refresh)()

    # -- state
    def layer_activations(self) -> tuple[np.ndarray, dict]:
        """(the input as the network sees it, uint8; {layer: C x H x W}) for the current
        model and image, from the cache or from one forward pass."""
        net = self.current_network()
        image = self.image.image
        key = (net.name, self.image.value, id(image))
        if key not in self._cache:
            x = net.preprocess(image)
            self._cache[key] = (net.deprocess(x), A.all_activations(net, x))
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        return self._cache[key]

    def _sync_layer(self, net: Network, acts: dict) -> None:
        if list(self.layer.options) == net.layers:
            return
        # Default: the last layer that still has a spatial map (AlexNet's conv5).
        spatial = [l for l in net.layers if acts[l].shape[-1] > 1]
        wanted = self._wanted_layer if self._wanted_layer in net.layers else (spatial or net.layers)[-1]
        with self.syncing():
            self.layer.set_network(net, wanted)

    # -- drawing
    def refresh(self) -> None:
        if self._syncing:
            return
        net = self.current_network()
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
        new_layer = (net.name, layer) != self._shown_layer
        if new_layer or (self.top_only.value and not self._was_top_only and self.channel.value not in top):
            self.set_quietly(self.channel, value=top[0])
        self._shown_layer, self._was_top_only = (net.name, layer), self.top_only.value
        c = self.channel.value
        shown = top if self.top_only.value else None
        grid = RA.activation_grid(acts, channels=shown, normalize=self.normalize.value, highlight=c)
        overlay = RA.channel_overlay(pixels, acts[c])
        factor = max(1, int(round(224 / overlay.shape[0])))
        self.show_picture(beside(render.upscale(overlay, factor), grid))
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
