"""Lesson 06's app: slide a patch over the image, watch the class probability.

The map runs in the Runner's worker thread (progress, live preview, Stop); opacity and
the chosen position answer from the cached map without recomputing it.
"""

from __future__ import annotations

import html

import ipywidgets as W
import numpy as np
import torch

from .. import render
from ..engine import models
from ..engine import occlusion as occ
from . import compat
from .base import App, Runner
from .controls import ClassPicker, ImagePicker, ModelPicker

__all__ = ["OcclusionApp", "resolve_network", "starter_images", "choose_image"]

_WIDE = {"description_width": "70px"}
# The coarse-to-fine option refines around the hottest fifth of the coarse cells:
# about half the positions scored, the lowest position kept (benchmarks/).
APPROXIMATE_FRACTION = 0.2


# --- shared by the lesson 06-08 apps ------------------------------------------------------

def resolve_network(model) -> models.Network:
    """None (the default model), a model name, or a Network as it is."""
    return model if isinstance(model, models.Network) else models.load_model(model)


def starter_images(net: models.Network, n: int = 4) -> dict:
    """A few shapes images to pick from when the network is the shapes model (it has
    never seen a photo); nothing extra otherwise."""
    if net.name != "shapes":
        return {}
    from ..engine.data import load_dataset

    ds = load_dataset("shapes", n=n, seed=0)
    return {f"shape: {ds.classes[item.label]}": item.image for item in ds}


def choose_image(picker: ImagePicker, image) -> None:
    """Select `image` in the picker: a listed name, or a picture of one's own."""
    if image is None:
        return
    if isinstance(image, str):
        picker.value = image
    else:
        picker.add_image("your image", image)


def predicted_class(net: models.Network, x: torch.Tensor) -> int:
    with net.guard(), torch.no_grad():
        return int(net(x).argmax(-1)[0])


def top5_html(pairs) -> str:
    return "".join(f"<li>{html.escape(name)}: {p:.1%}</li>" for name, p in pairs)


# --- the app ----------------------------------------------------------------------------

class OcclusionApp(App):
    """Occlusion sensitivity (Zeiler & Fergus 2014): which regions the decision needs."""

    title = "Occlusion: hide a patch, watch the class probability"

    def __init__(self, model=None, image=None, patch: int | None = None, stride: int | None = None):
        self.net = resolve_network(model)
        size = self.net.input_size
        self.model_picker = ModelPicker(value=self.net.name)
        self.images = ImagePicker(extra=starter_images(self.net))
        self.classes = ClassPicker(self.net)
        self.patch = W.IntSlider(value=patch or size // 4, min=2, max=size, description="patch",
                                 continuous_update=False, style=_WIDE)
        self.stride = W.IntSlider(value=stride or size // 8, min=1, max=size, description="stride",
                                  continuous_update=False, style=_WIDE)
        self.fill = W.Dropdown(options=list(occ.FILLS), value="grey", description="fill", style=_WIDE)
        compat.set_tooltip(self.fill, "grey: mid-grey square; mean: the image's mean colour; blur: a blurred copy")
        self.output = W.ToggleButtons(options=[("probability", "prob"), ("logit", "logit")], value="prob")
        self.approximate = W.Checkbox(value=False, description="coarse to fine (approximate, faster)",
                                      indent=False)
        compat.set_tooltip(self.approximate, "score every second position first, then only around the hottest "
                                             "fifth; the rest is interpolated")
        self.opacity = W.FloatSlider(value=0.6, min=0.0, max=1.0, step=0.05, description="opacity", style=_WIDE)
        self.row = W.IntSlider(value=0, min=0, max=0, description="row", style=_WIDE)
        self.col = W.IntSlider(value=0, min=0, max=0, description="col", style=_WIDE)
        self.runner = Runner(run_label="Map")
        self.omap: occ.OcclusionMap | None = None
        self.x: torch.Tensor | None = None
        self._partial: np.ndarray | None = None
        controls = [
            W.HBox([self.model_picker, self.images]),
            W.HBox([self.classes, self.fill, self.output]),
            W.HBox([self.patch, self.stride, self.approximate]),
            self.runner,
            W.HBox([self.opacity, self.row, self.col]),
        ]
        super().__init__(controls)
        self.images.on_error = self.show_error
        self.images.on_note = self.show_note
        self.connect_runner(self.runner, self.refresh)
        choose_image(self.images, image)
        self.model_picker.observe(lambda _c: self.guarded(self._change_model)(), names="value")
        self.watch([self.images.dropdown, self.classes, self.patch, self.stride, self.fill, self.output,
                    self.approximate], self.refresh)
        self.watch([self.opacity, self.row, self.col], self.draw)
        self.guarded(self.refresh)()

    # -- computing
    def _change_model(self) -> None:
        self.net = models.load_model(self.model_picker.value)
        size = self.net.input_size
        for name, img in starter_images(self.net).items():
            self.images.add_image(name, img, select=False)
        self.classes.set_network(self.net)
        with self.hold_trait_notifications():
            self.patch.max, self.stride.max = size, size
            self.patch.value, self.stride.value = size // 4, size // 8
        self.refresh()

    def refresh(self) -> None:
        """Recompute the map for the current settings (in the Runner's thread)."""
        if self.runner.running:
            self.runner.stop()
            self.runner.wait()
        self.x = self.net.preprocess(self.images.image)
        target = self.classes.class_index(self.net, predicted=predicted_class(self.net, self.x))
        self.omap, self._partial = None, None
        net, x = self.net, self.x
        settings = dict(patch=self.patch.value, stride=self.stride.value, fill=self.fill.value,
                        output=self.output.value,
                        coarse_to_fine=APPROXIMATE_FRACTION if self.approximate.value else None)
        self._target = target
        # Check the settings here so a bad one shows at once, not from the worker thread.
        occ.check_settings(x, settings["patch"], settings["stride"])
        self.runner.start(lambda should_stop: occ.occlusion_iter(net, x, target, **settings),
                          self._preview, self._finish)

    def _preview(self, progress) -> None:
        if isinstance(progress, occ.OcclusionProgress):
            self._partial = np.nan_to_num(progress.heat, nan=float(np.nanmax(progress.heat)))
            self.guarded(self.draw)()

    def _finish(self, last, stopped: bool) -> None:
        if isinstance(last, occ.OcclusionMap):
            self.omap = last
            rows, cols = last.heat.shape
            r, c = last.lowest()
            with self.hold_trait_notifications():
                self.row.max, self.col.max = rows - 1, cols - 1
                self.row.value, self.col.value = r, c
        self.guarded(self.draw)()

    # -- drawing, from the cache
    def draw(self) -> None:
        if self.x is None:
            return
        image = self.net.deprocess(self.x)
        heat = self.omap.heat if self.omap is not None else self._partial
        if heat is None:
            return
        what = "probability" if self.output.value == "prob" else "logit"
        overlay = render.heatmap_overlay(image, heat, alpha=self.opacity.value, cmap="inferno")
        tiles, labels = [overlay], ["dark = the patch mattered"]
        text = []
        name = self.net.classes[self._target]
        if self.omap is not None:
            m = self.omap
            r, c = min(self.row.value, m.heat.shape[0] - 1), min(self.col.value, m.heat.shape[1] - 1)
            box = m.box(r, c)
            hidden = occ.occluded_image(self.x, occ.fill_image(self.x, m.fill, m.patch), box)
            tiles.append(self.net.deprocess(hidden))
            labels.append(f"patch at row {r}, col {c}")
            lr, lc = m.lowest()
            text.append(
                f"<b>{html.escape(name)}</b>: {what} {m.clean:.3g} on the whole image; "
                f"lowest {float(m.heat.min()):.3g} with the patch at row {lr}, col {lc} "
                f"({m.heat.shape[0]}x{m.heat.shape[1]} positions). Dark = the patch mattered: "
                f"hiding that region lowered the {what}.")
            if m.extra.get("approximate"):
                text.append(f"Approximate map: {m.extra['scored']} of {m.extra['positions']} positions scored, "
                            "the rest interpolated from the coarse pass.")
            text.append(f"With the patch at row {r}, col {c} ({what} {float(m.heat[r, c]):.3g}), the top 5:"
                        f"<ol>{top5_html(self.net.predict(hidden))}</ol>")
        else:
            text.append(f"<b>{html.escape(name)}</b>: mapping…")
        self.show_picture(render.side_by_side(tiles, labels=labels, height=max(224, self.net.input_size)))
        self.show_text("<br>".join(text))
