"""Lesson 08's app: what one channel responds to in this image, as guided backprop
(or deconvnet, or plain gradient) pictures of its strongest positions, each next to
the receptive-field crop it sees.

Pictures are made in the Runner (progress, Stop) and cached per (model, image, layer,
channel, method, k): going back to a channel answers from the cache.
"""

from __future__ import annotations

import html

import ipywidgets as W

from ..engine.attribution import guided
from ..engine.core import checks
from ..engine.zoo import models
from ..render.guided import neuron_pairs
from .base import App, single_step
from .controls import ChannelSlider, LayerPicker

__all__ = ["GuidedBackpropApp"]

_WIDE = {"description_width": "70px"}


def _default_layer(net: models.Network) -> str:
    return net.layers[len(net.layers) // 3]  # a lower-middle layer: parts and textures, with small fields


class GuidedBackpropApp(App):
    """Guided backpropagation (Springenberg et al. 2015) from one neuron: for each of
    the channel's strongest positions, what the neuron sees beside its gradient picture.

    Headless use: set ``app.layer.value``, ``app.channel.value``, ``app.method.value``
    (a rule of ``engine.guided.RULES``), ``app.k.value``; call ``app.runner.wait()``
    (or build with ``threaded=False``); read ``app.view.value`` and ``app.info.value``.
    """

    title = "Guided backprop: what this channel responds to, pixel by pixel"

    def __init__(self, model=None, *, image=None, layer: str | None = None, channel: int = 0,
                 threaded: bool = True):
        super().__init__(model, image=image, pickers=("model", "image"), threaded=threaded)
        if layer is not None:
            layer = self.guarded(self.net.check_layer, later=True)(layer)
        self.layer = LayerPicker(self.net, value=layer or _default_layer(self.net))
        self.channel = ChannelSlider()
        self.method = W.ToggleButtons(options=list(guided.RULES), value="guided")
        self.k = W.IntSlider(value=4, min=1, max=8, description="positions", continuous_update=False, style=_WIDE)
        self._cache: dict[tuple, list[guided.NeuronPicture]] = {}
        self._set_channel_count()
        channel = self.guarded(checks.channel, later=True)(self.net, self.layer.value, channel,
                                                           channels=self.channel.max + 1)
        self.channel.value = channel or 0
        self.watch([self.layer], self._change_layer)
        self.watch([self.channel, self.method, self.k], self.refresh)
        self.arrange([W.HBox([self.model_picker, self.image_picker]), W.HBox([self.layer, self.channel]),
                      W.HBox([self.method, self.k]), self.runner])

    def _set_channel_count(self) -> None:
        self.channel.set_count(self.net.layer_shape(self.layer.value)[0])

    def on_model(self, net: models.Network) -> None:
        self.layer.set_network(net, _default_layer(net))
        self._set_channel_count()

    def _change_layer(self) -> None:
        with self.syncing():
            self._set_channel_count()
        self.refresh()

    def _key(self) -> tuple:
        return (id(self.net), self.image_picker.value, id(self.image_picker.image), self.layer.value,
                self.channel.value, self.method.value, self.k.value)

    def refresh(self) -> None:
        """Make the pictures for the current settings in the Runner, or draw them from the cache."""
        key, net, picture = self._key(), self.net, self.image_picker.image
        layer, channel, rule, k = key[3:]

        def compute():
            x = net.as_batch(picture, single=True, what="the guided backprop app")
            self._cache[key] = guided.neuron_pictures(net, x, layer, channel, k=k, rule=rule)

        self.draw_when_ready(key, lambda: key in self._cache, single_step(compute), self.draw)

    def draw(self) -> None:
        key = self._key()
        pictures = self._cache.get(key)
        if pictures is None:
            return  # still being made: drawn when it is
        layer, channel, rule = key[3:6]
        side = max(96, max(p.crop.shape[0] for p in pictures))
        self.show_picture(neuron_pairs(pictures, size=side, per_row=min(4, len(pictures)), rule=rule))
        rf = self.net.receptive_field(layer)
        where = "the whole image" if rf.is_global else f"a {rf.size}x{rf.size} pixel receptive field"
        self.show_text(
            f"Layer <b>{html.escape(layer)}</b>, channel <b>{channel}</b>: its {len(pictures)} strongest positions "
            f"in this image (top: what each sees, {where}, grey outside the image; below: the {rule} "
            "gradient of that neuron, grey = 0). Guided pictures are sharp, but they mostly show "
            "edges of the image itself: see the sanity check in the lesson.")
