"""Lesson 12 app: reconstruct a photo from its features (`notebooks/12_feature_inversion.ipynb`)."""

from __future__ import annotations

import html

import ipywidgets as W

from .. import render
from ..engine.optimize import inversion
from .optimize_app import OptimizeApp
from .runner import in_sequence

__all__ = ["InversionApp"]

_STYLE = {"description_width": "90px"}


class InversionApp(OptimizeApp):
    """Image, layers (several: one reconstruction each), TV weight, steps; the photo
    and the reconstructions side by side, deepest last."""

    title = "Feature inversion: what does a layer remember?"
    run_label = "Reconstruct"
    display_height = 160

    def __init__(self, model=None, *, image=None, layers=None, size: int = inversion.DEFAULTS["size"],
                 steps: int = inversion.DEFAULTS["steps"], tv: float = inversion.DEFAULTS["tv"],
                 threaded: bool = True):
        super().__init__(model, image=image, pickers=("model", "image"), threaded=threaded)
        self.layers = W.SelectMultiple(options=[], description="layers", style=_STYLE, rows=5)
        self.tv = W.FloatLogSlider(value=tv, base=10, min=-3, max=1, step=0.1, description="TV weight",
                                   style=_STYLE, continuous_update=False)
        self.n_steps = W.IntSlider(value=steps, min=1, max=1000, description="steps", style=_STYLE,
                                   continuous_update=False)
        self.size = W.IntSlider(value=size, min=32, max=256, step=16, description="size", style=_STYLE,
                                continuous_update=False)
        self.results: dict = {}
        self.on_model(self.net, layers)
        self.show_note("Pick one or more layers (ctrl/shift-click) and press Reconstruct.")
        self.arrange([self.image_picker, self.layers, W.HBox([self.tv, self.n_steps]), self.size])

    def on_model(self, net, layers=None) -> None:
        options = [l for l in net.layers if l != "logits"]
        self.layers.options = options
        chosen = [l for l in (layers or ()) if l in options]
        if not chosen:  # an early, a middle and a deep layer
            chosen = sorted({options[1 if len(options) > 1 else 0], options[len(options) // 2], options[-2]},
                            key=options.index)
        self.layers.value = tuple(chosen)

    def prepare(self):
        net, layers = self.net, list(self.layers.value)
        if not layers:
            raise ValueError("choose at least one layer to invert")
        photo = self.image_picker.image
        kw = dict(size=self.size.value, steps=self.n_steps.value, tv=self.tv.value,
                  every=max(1, self.n_steps.value // 10))
        self.results = {}
        self._order = layers

        def invert(layer, stop):
            for p in inversion.invert_features_iter(net, photo, layer, should_stop=stop, **kw):
                if p.done:
                    self.results[layer] = p.result
                yield p

        # one bar for the whole set of layers
        return lambda stop: in_sequence([lambda layer=layer: invert(layer, stop) for layer in layers])

    def picture(self, progress):
        h = self.display_height
        p = progress.result
        shown = [render.at_height(p.original, h)]
        labels = ["photo"]
        for layer in self._order:
            done = self.results.get(layer)
            if done is not None:
                shown.append(render.at_height(done.image, h))
                labels.append(layer)
            elif layer == p.layer:
                shown.append(render.at_height(p.image, h))
                labels.append(f"{layer}…")
        return render.side_by_side(shown, labels=labels, height=h)

    def summary(self, progress, stopped):
        rows = [f"{html.escape(l)}: relative error {r.relative_error:.3f}, pixel distance "
                f"{inversion.pixel_distance(r.image, r.original):.3f}" for l, r in self.results.items()]
        head = "stopped" if stopped else "done"
        return f"{head}<br>" + "<br>".join(rows)

