"""Lesson 07's app: the saliency map of a class, raw or SmoothGrad, over the image;
and the lecture's side-by-side of every bundled photo (image above, saliency below).

Maps are made in the Runner from the engine's `saliency_iter` / `smoothgrad_iter`
(progress batch by batch, so Stop ends a long SmoothGrad run within a batch) and cached
per (model, image, class, method); the opacity slider redraws from the cache.
"""

from __future__ import annotations

import html

import ipywidgets as W
import torch

from .. import quick_mode, render
from ..engine.attribution.base import smoothgrad_iter
from ..engine.attribution.saliency import saliency, saliency_iter
from ..engine.core.targets import as_target
from ..engine.zoo.samples import sample_images
from .base import App

__all__ = ["SaliencyApp"]

_WIDE = {"description_width": "70px"}


def _saliency_iter(net, x, target, options: dict, should_stop):
    """The engine's run of saliency (or SmoothGrad, with `options`) for the images `x`."""
    if options:
        return smoothgrad_iter(saliency, net, x, target, should_stop=should_stop, **options)
    return saliency_iter(net, x, target, should_stop=should_stop)


class SaliencyApp(App):
    """Saliency maps (Simonyan et al. 2014) and SmoothGrad (Smilkov et al. 2017).

    Headless use: set ``app.class_picker.value``, ``app.method.value`` (``"raw"`` or
    ``"SmoothGrad"``), ``app.samples.value``, ``app.show_all.value``...; call
    ``app.runner.wait()`` (or build with ``threaded=False``); read ``app.view.value``.
    """

    title = "Saliency: which pixels the class score is most sensitive to"

    def __init__(self, model=None, *, image=None, smooth: bool = False, threaded: bool = True):
        super().__init__(model, image=image, pickers=("model", "image", "class"), threaded=threaded)
        self.method = W.ToggleButtons(options=["raw", "SmoothGrad"], value="SmoothGrad" if smooth else "raw")
        self.samples = W.IntSlider(value=4 if quick_mode() else 16, min=2, max=50, description="samples",
                                   continuous_update=False, style=_WIDE)
        self.noise = W.FloatSlider(value=0.15, min=0.0, max=0.5, step=0.01, description="noise",
                                   continuous_update=False, style=_WIDE)
        self.opacity = W.FloatSlider(value=0.6, min=0.0, max=1.0, step=0.05, description="opacity", style=_WIDE)
        self.show_all = W.ToggleButtons(options=["this image", "all samples"], value="this image")
        self._cache: dict[tuple, tuple] = {}
        self.watch([self.method, self.samples, self.noise, self.show_all], self.refresh)
        self.watch([self.opacity], self.draw)
        self.arrange([
            W.HBox([self.model_picker, self.image_picker]),
            W.HBox([self.class_picker, self.method]),
            W.HBox([self.samples, self.noise]),
            W.HBox([self.opacity, self.show_all]),
            self.runner,
        ])

    def _options(self) -> dict:
        if self.method.value == "raw":
            return {}
        return dict(samples=self.samples.value, noise=self.noise.value)

    def _key(self) -> tuple:
        options = tuple(sorted(self._options().items()))
        if self.show_all.value == "all samples":
            return ("all samples", id(self.net), options)
        return (id(self.net), self.image_picker.value, id(self.image_picker.image),
                self.class_picker.chosen(self.net), options)

    def refresh(self) -> None:
        """Make the map(s) for the current settings in the Runner, or draw them from the cache."""
        net, key, options = self.net, self._key(), self._options()
        if self.show_all.value == "all samples":
            photos = sample_images()
            pictures, names, chosen = list(photos.values()), list(photos), None  # each photo's predicted class
        else:
            pictures, names, chosen = [self.image_picker.image], None, self.class_picker.chosen(net)

        def steps(should_stop):
            x = torch.cat([net.as_batch(p, single=True, what="the saliency app") for p in pictures])
            target = as_target(net, chosen, len(x), image=x)  # None: the class the model predicts
            images = [net.deprocess(x[i]) for i in range(len(x))]
            for progress in _saliency_iter(net, x, target, options, should_stop):
                if progress.done and progress.result.ended == "done":  # a stopped map is never kept
                    maps = progress.result.map.numpy()
                    classes = target.classes * len(x) if len(target.classes) == 1 else target.classes
                    self._cache[key] = ((images, names, classes, maps) if names is not None
                                        else (images[0], classes[0], maps[0]))
                yield progress

        self.draw_when_ready(key, lambda: key in self._cache, steps, self.draw)

    def draw(self) -> None:
        entry = self._cache.get(self._key())
        if entry is None:
            return  # still being made: drawn when it is
        if self.show_all.value == "all samples":
            self._draw_all(*entry)
            return
        image, target, heat = entry
        grey = render.to_uint8(heat, "global")
        overlay = render.heatmap_overlay(image, heat, alpha=self.opacity.value, cmap="inferno")
        method = self.method.value
        self.show_picture(render.side_by_side([image, grey, overlay],
                                              labels=["image", f"{method} saliency", "overlay"],
                                              height=max(224, self.net.input_size)))
        self.show_text(
            f"<b>{html.escape(self.net.classes[target])}</b>: max over colour channels of |d logit / d pixel|"
            + (f", averaged over {self.samples.value} noisy copies (noise {self.noise.value:.0%} of the pixel range)"
               if method == "SmoothGrad" else "")
            + ". Bright = a small change of that pixel changes the score most.")

    def _draw_all(self, images, names, targets, maps) -> None:
        """The lecture's figure: every bundled photo, its predicted class's saliency below."""
        below = [render.to_uint8(m, "global") for m in maps]
        labels = names + [self.net.classes[t] for t in targets]
        scale = max(1, 160 // self.net.input_size)
        self.show_picture(render.tile_grid(images + below, ncols=len(images), labels=labels, scale=scale,
                                           normalize_mode="none"))
        self.show_text("Each photo above, the saliency of its predicted class below.")
