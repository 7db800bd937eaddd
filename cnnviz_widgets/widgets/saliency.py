"""Lesson 07's app: the saliency map of a class, raw or SmoothGrad, over the image;
and the lecture's side-by-side of every bundled photo (image above, saliency below).

Maps are cached per (model, image, class, method); the opacity slider redraws from
the cache.
"""

from __future__ import annotations

import html

import ipywidgets as W
import numpy as np
import torch

from .. import quick_mode, render
from ..engine import models
from ..engine.images import sample_images
from ..engine.saliency import saliency
from .base import App
from .controls import ClassPicker, ImagePicker, ModelPicker
from .occlusion import choose_image, predicted_class, resolve_network, starter_images

__all__ = ["SaliencyApp"]

_WIDE = {"description_width": "70px"}


class SaliencyApp(App):
    """Saliency maps (Simonyan et al. 2014) and SmoothGrad (Smilkov et al. 2017)."""

    title = "Saliency: which pixels the class score is most sensitive to"

    def __init__(self, model=None, image=None, smooth: bool = False):
        self.net = resolve_network(model)
        self.model_picker = ModelPicker(value=self.net.name)
        self.images = ImagePicker(extra=starter_images(self.net))
        self.classes = ClassPicker(self.net)
        self.method = W.ToggleButtons(options=["raw", "SmoothGrad"], value="SmoothGrad" if smooth else "raw")
        self.samples = W.IntSlider(value=4 if quick_mode() else 16, min=2, max=50, description="samples",
                                   continuous_update=False, style=_WIDE)
        self.noise = W.FloatSlider(value=0.15, min=0.0, max=0.5, step=0.01, description="noise",
                                   continuous_update=False, style=_WIDE)
        self.opacity = W.FloatSlider(value=0.6, min=0.0, max=1.0, step=0.05, description="opacity", style=_WIDE)
        self.show_all = W.ToggleButtons(options=["this image", "all samples"], value="this image")
        self._cache: dict[tuple, np.ndarray] = {}
        self._current: tuple | None = None
        controls = [
            W.HBox([self.model_picker, self.images]),
            W.HBox([self.classes, self.method]),
            W.HBox([self.samples, self.noise]),
            W.HBox([self.opacity, self.show_all]),
        ]
        super().__init__(controls)
        self.images.on_error = self.show_error
        self.images.on_note = self.show_note
        choose_image(self.images, image)
        self.model_picker.observe(lambda _c: self.guarded(self._change_model)(), names="value")
        self.watch([self.images.dropdown, self.classes, self.method, self.samples, self.noise, self.show_all],
                   self.refresh)
        self.watch([self.opacity], self.draw)
        self.guarded(self.refresh)()

    def _change_model(self) -> None:
        self.net = models.load_model(self.model_picker.value)
        for name, img in starter_images(self.net).items():
            self.images.add_image(name, img, select=False)
        self.classes.set_network(self.net)
        self.refresh()

    def _options(self) -> dict:
        if self.method.value == "raw":
            return {}
        return dict(smooth=self.samples.value, noise=self.noise.value)

    def refresh(self) -> None:
        if self.show_all.value == "all samples":
            self.draw_all()
            return
        x = self.net.preprocess(self.images.image)
        target = self.classes.class_index(self.net, predicted=predicted_class(self.net, x))
        options = self._options()
        key = (id(self.net), self.images.value, target, tuple(sorted(options.items())))
        if key not in self._cache:
            self._cache[key] = saliency(self.net, x, target, **options)[0].cpu().numpy()
        self._current = key
        self._image = self.net.deprocess(x)
        self._target = target
        self.draw()

    def draw(self) -> None:
        if self.show_all.value == "all samples" or self._current is None:
            return
        heat = self._cache[self._current]
        grey = render.to_uint8(heat, "global")
        overlay = render.heatmap_overlay(self._image, heat, alpha=self.opacity.value, cmap="inferno")
        method = self.method.value
        self.show_picture(render.side_by_side([self._image, grey, overlay],
                                              labels=["image", f"{method} saliency", "overlay"],
                                              height=max(224, self.net.input_size)))
        name = self.net.classes[self._target]
        self.show_text(
            f"<b>{html.escape(name)}</b>: max over colour channels of |d logit / d pixel|"
            + (f", averaged over {self.samples.value} noisy copies (noise {self.noise.value:.0%} of the pixel range)"
               if method == "SmoothGrad" else "")
            + ". Bright = a small change of that pixel changes the score most.")

    def draw_all(self) -> None:
        """The lecture's figure: every bundled photo, its predicted class's saliency below."""
        photos = sample_images()
        x = np.concatenate([self.net.preprocess(img).cpu().numpy() for img in photos.values()])
        x = torch.from_numpy(x).to(self.net.device)
        with self.net.guard(), torch.no_grad():
            targets = self.net(x).argmax(-1).tolist()
        maps = saliency(self.net, x, targets, **self._options()).cpu().numpy()
        top = [self.net.deprocess(x[i]) for i in range(len(photos))]
        below = [render.to_uint8(m, "global") for m in maps]
        labels = list(photos) + [self.net.classes[t] for t in targets]
        scale = max(1, 160 // self.net.input_size)
        self.show_picture(render.tile_grid(top + below, ncols=len(photos), labels=labels, scale=scale,
                                           normalize_mode="none"))
        self.show_text("Each photo above, the saliency of its predicted class below.")
