"""Lesson 08's app: what one channel responds to in this image, as guided backprop
(or deconvnet, or plain gradient) pictures of its strongest positions, each next to
the receptive-field crop it sees.

Pictures are cached per (model, image, layer, channel, method, k): going back to a
channel answers from the cache.
"""

from __future__ import annotations

import html

import ipywidgets as W

from .. import render
from ..engine import guided
from ..engine import models
from .base import App
from .controls import ChannelSlider, ImagePicker, LayerPicker, ModelPicker
from .occlusion import choose_image, resolve_network, starter_images

__all__ = ["GuidedBackpropApp"]

_WIDE = {"description_width": "70px"}


def _default_layer(net: models.Network) -> str:
    return net.layers[len(net.layers) // 3]  # a lower-middle layer: parts and textures, with small fields


class GuidedBackpropApp(App):
    """Guided backpropagation (Springenberg et al. 2015) from one neuron."""

    title = "Guided backprop: what this channel responds to, pixel by pixel"

    def __init__(self, model=None, image=None, layer: str | None = None, channel: int = 0):
        self.net = resolve_network(model)
        self.model_picker = ModelPicker(value=self.net.name)
        self.images = ImagePicker(extra=starter_images(self.net))
        self.layer = LayerPicker(self.net, value=layer or _default_layer(self.net))
        self.channel = ChannelSlider()
        self.method = W.ToggleButtons(options=list(guided.RULES), value="guided")
        self.k = W.IntSlider(value=4, min=1, max=8, description="positions", continuous_update=False, style=_WIDE)
        self._cache: dict[tuple, list[guided.NeuronPicture]] = {}
        controls = [W.HBox([self.model_picker, self.images]), W.HBox([self.layer, self.channel]),
                    W.HBox([self.method, self.k])]
        super().__init__(controls)
        self.images.on_error = self.show_error
        self.images.on_note = self.show_note
        choose_image(self.images, image)
        self.model_picker.observe(lambda _c: self.guarded(self._change_model)(), names="value")
        self.watch([self.layer], self._change_layer)
        self.watch([self.images.dropdown, self.channel, self.method, self.k], self.refresh)
        self._set_channel_count()
        with self.channel.hold_trait_notifications():
            self.channel.value = min(int(channel), self.channel.max)
        self.guarded(self.refresh)()

    def _set_channel_count(self) -> None:
        self.channel.set_count(self.net.layer_shape(self.layer.value)[0])

    def _change_model(self) -> None:
        net = models.load_model(self.model_picker.value)
        # The image list and the layer list change one after the other: neither may
        # redraw until both fit the new network.
        with self.syncing():
            self.net = net
            for name, img in starter_images(net).items():
                self.images.add_image(name, img, select=False)
            self.layer.set_network(net, _default_layer(net))
        self._change_layer()

    def _change_layer(self) -> None:
        if self._syncing:
            return
        self._set_channel_count()
        self.refresh()

    def refresh(self) -> None:
        if self._syncing:
            return
        layer, channel, rule = self.layer.value, self.channel.value, self.method.value
        key = (id(self.net), self.images.value, layer, channel, rule, self.k.value)
        x = self.net.preprocess(self.images.image)
        if key not in self._cache:
            self._cache[key] = guided.neuron_pictures(self.net, x, layer, channel, self.k.value, rule)
        pictures = self._cache[key]
        crops = [p.crop for p in pictures]
        grads = [render.gradient_picture(p.gradient) for p in pictures]
        side = max(96, max(c.shape[0] for c in crops))
        labels = [f"({p.position[0]},{p.position[1]}) {p.activation:.3g}" for p in pictures] + [rule] * len(pictures)
        self.show_picture(render.tile_grid(crops + grads, ncols=len(pictures), labels=labels, tile_size=(side, side),
                                           normalize_mode="none"))
        rf = self.net.receptive_field(layer)
        where = "the whole image" if rf.is_global else f"a {rf.size}x{rf.size} pixel receptive field"
        self.show_text(
            f"Layer <b>{html.escape(layer)}</b>, channel <b>{channel}</b>: its {len(pictures)} strongest positions "
            f"in this image (top: what each sees, {where}, grey outside the image; below: the {rule} "
            "gradient of that neuron, grey = 0). Guided pictures are sharp, but they mostly show "
            "edges of the image itself: see the sanity check in the lesson.")
