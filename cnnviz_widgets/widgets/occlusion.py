"""Lesson 06's app: slide a patch over the image, watch the class probability.

The map runs in the Runner's worker thread (progress, live preview, Stop); its plan
(the patch positions and how the network scores them) is made here, once per model,
image size, patch and stride; opacity and the chosen position answer from the cached
map (and its fill, made once per map) without recomputing it.
"""

from __future__ import annotations

import html

import ipywidgets as W
import numpy as np
import torch

from .. import render
from ..engine.attribution import occlusion as occ
from ..engine.core.targets import ClassLogit, ClassProbability, as_target
from . import compat
from .base import App, single_step

__all__ = ["OcclusionApp"]

_WIDE = {"description_width": "70px"}
# The coarse-to-fine option refines around the hottest fifth of the coarse cells:
# about half the positions scored, the lowest position kept (benchmarks/).
APPROXIMATE_FRACTION = 0.2


def top5_html(pairs) -> str:
    return "".join(f"<li>{html.escape(name)}: {p:.1%}</li>" for name, p in pairs)


class OcclusionApp(App):
    """Occlusion sensitivity (Zeiler & Fergus 2014): which regions the decision needs.

    The map is made in the Runner (progress, live preview, Stop); opacity and the
    chosen position redraw from it. Headless use: set a control's ``value``, call
    ``app.runner.wait()``, read ``app.omap``, ``app.view.value`` and ``app.info.value``.
    """

    title = "Occlusion: hide a patch, watch the class probability"
    run_label = "Map"

    def __init__(self, model=None, *, image=None, patch: int | None = None, stride: int | None = None,
                 threaded: bool = True):
        super().__init__(model, image=image, pickers=("model", "image", "class"), threaded=threaded)
        size = self.net.input_size
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
        self.omap: occ.OcclusionMap | None = None
        # Kept for the next map of the same model, image size, patch and stride (a new
        # image, class or fill reuses it).
        self.plan: occ.OcclusionPlan | None = None
        self.x: torch.Tensor | None = None
        self._fill: torch.Tensor | None = None  # the finished map's fill image
        self._partial: np.ndarray | None = None
        self._top5: dict[tuple, list] = {}  # (map, row, col) -> the top 5 with the patch there
        self.watch([self.patch, self.stride, self.fill, self.output, self.approximate], self.refresh)
        self.watch([self.opacity], self.draw)
        self.watch([self.row, self.col], self.show_position)
        self.arrange([
            W.HBox([self.model_picker, self.image_picker]),
            W.HBox([self.class_picker, self.fill, self.output]),
            W.HBox([self.patch, self.stride, self.approximate]),
            self.runner,
            W.HBox([self.opacity, self.row, self.col]),
        ])

    def on_model(self, net) -> None:
        size = net.input_size
        self.patch.max, self.stride.max = size, size
        self.patch.value, self.stride.value = size // 4, size // 8

    # -- computing
    def refresh(self) -> None:
        """Recompute the map for the current settings (in the Runner)."""
        net = self.net
        x = net.as_batch(self.image_picker.image, single=True, what="the occlusion app")
        chosen = self.class_picker.chosen(net)  # a bad name is a message at once
        patch, stride = self.patch.value, self.stride.value
        kind = ClassProbability if self.output.value == "prob" else ClassLogit
        settings = dict(patch=patch, stride=stride, fill=self.fill.value,
                        coarse_to_fine=APPROXIMATE_FRACTION if self.approximate.value else None)
        # Check the settings here so a bad one shows at once, not from the worker thread.
        occ.check_settings(x, patch, stride)
        plan = self._plan(net, x, patch, stride)
        self.x, self.omap, self._partial, self._top5, self._fill = x, None, None, {}, None
        job = {}

        def steps(should_stop):
            job["target"] = as_target(net, chosen, 1, image=x).index  # None: the class the model predicts
            yield from occ.occlusion_iter(net, x, kind(job["target"]), plan=plan, should_stop=should_stop,
                                          **settings)

        def preview(progress) -> None:
            self._target = job["target"]
            self._preview(progress)

        def finish(last, stopped: bool) -> None:
            self._target = job["target"]
            self._finish(last, stopped)

        self.runner.start(steps, preview, finish)

    def _plan(self, net, x: torch.Tensor, patch: int, stride: int) -> occ.OcclusionPlan:
        """The plan for this model, image size, patch and stride: the one kept, or a new one."""
        if self.plan is None or not self.plan.fits(net, x.shape[-2:], patch, stride):
            self.plan = occ.OcclusionPlan(net, tuple(x.shape[-2:]), patch, stride)
        return self.plan

    def _preview(self, progress) -> None:
        if not progress.done:
            heat = progress.result.heat
            self._partial = np.nan_to_num(heat, nan=float(np.nanmax(heat)))
            self.guarded(self.draw)()

    def _finish(self, last, stopped: bool) -> None:
        if last is not None and last.done and last.result.ended == "done":
            self.omap = last.result
            self._fill = occ.fill_image(self.x, self.omap.fill, self.omap.patch)  # once per map, not per move
            rows, cols = self.omap.heat.shape
            r, c = self.omap.lowest()
            self.set_quietly(self.row, max=rows - 1, value=r)
            self.set_quietly(self.col, max=cols - 1, value=c)
            self.guarded(self.show_position)()
        else:
            self.guarded(self.draw)()

    def _position(self) -> tuple[int, int]:
        m = self.omap
        return min(self.row.value, m.heat.shape[0] - 1), min(self.col.value, m.heat.shape[1] - 1)

    def _hidden(self, r: int, c: int) -> torch.Tensor:
        """The image with the patch at (r, c), as the map scored it."""
        return occ.occluded_image(self.x, self._fill, self.omap.box(r, c))

    def show_position(self) -> None:
        """Draw the map with the patch at the chosen position; what the network then
        predicts (a forward pass) comes from the Runner."""
        if self.omap is None:
            return
        r, c = self._position()
        key, net, hidden = (id(self.omap), r, c), self.net, self._hidden(r, c)

        def predict():
            self._top5[key] = net.predict(hidden)

        self.draw()  # the picture at once; the top 5 when ready
        self.draw_when_ready(key, lambda: key in self._top5, single_step(predict), self.draw)

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
            r, c = self._position()
            tiles.append(self.net.deprocess(self._hidden(r, c)))
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
            top5 = self._top5.get((id(m), r, c))
            text.append(f"With the patch at row {r}, col {c} ({what} {float(m.heat[r, c]):.3g}), the top 5:"
                        + (f"<ol>{top5_html(top5)}</ol>" if top5 is not None else " …"))
        else:
            text.append(f"<b>{html.escape(name)}</b>: mapping…")
        self.show_picture(render.side_by_side(tiles, labels=labels, height=max(224, self.net.input_size)))
        self.show_text("<br>".join(text))
