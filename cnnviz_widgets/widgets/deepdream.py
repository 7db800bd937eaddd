"""Lesson 11 app: DeepDream, octave by octave (`notebooks/11_deepdream.ipynb`)."""

from __future__ import annotations

import ipywidgets as W

from .. import render
from ..engine.optimize import deepdream
from .controls import LayerPicker
from .optimize_app import OptimizeApp

__all__ = ["DeepDreamApp"]

_STYLE = {"description_width": "110px"}


class DeepDreamApp(OptimizeApp):
    """Image, layer, octaves, octave scale, steps per octave, step size; the photo
    and the dream at each octave side by side."""

    title = "DeepDream: amplify what a layer sees"
    run_label = "Dream"
    display_height = 180

    def __init__(self, model=None, *, image=None, layer=None, size: int = 224, steps: int = 10, octaves: int = 3,
                 threaded: bool = True):
        super().__init__(model, image=image, pickers=("model", "image"), threaded=threaded)
        self.layer = LayerPicker(only=lambda net, l: l != "logits")
        self.octaves = W.IntSlider(value=octaves, min=1, max=6, description="octaves", style=_STYLE,
                                   continuous_update=False)
        self.octave_scale = W.FloatSlider(value=1.4, min=1.1, max=2.0, step=0.05, description="octave scale",
                                          style=_STYLE, continuous_update=False)
        self.steps_per_octave = W.IntSlider(value=steps, min=1, max=100, description="steps / octave",
                                            style=_STYLE, continuous_update=False)
        self.step_size = W.FloatLogSlider(value=0.01, base=10, min=-3, max=-1, step=0.1, description="step size",
                                          style=_STYLE, continuous_update=False)
        self.size = W.IntSlider(value=size, min=64, max=512, step=16, description="size", style=_STYLE,
                                continuous_update=False)
        if layer is not None:
            layer = self.guarded(self.net.check_layer, later=True)(layer)
        self.layer.set_network(self.net, layer or ("stage4" if "stage4" in self.net.layers else None))
        self.show_note("Press Dream. Deeper layers dream of object parts; early ones of strokes and textures.")
        self.arrange([self.image_picker, self.layer, W.HBox([self.octaves, self.octave_scale]),
                      W.HBox([self.steps_per_octave, self.step_size]), self.size])

    def on_model(self, net) -> None:
        self.layer.set_network(net)

    def prepare(self):
        net, layer = self.net, self.layer.value
        if not layer:
            raise ValueError("choose a layer")
        photo = self.image_picker.image
        kw = dict(octaves=self.octaves.value, octave_scale=self.octave_scale.value,
                  steps=self.steps_per_octave.value, step_size=self.step_size.value,
                  size=self.size.value, every=max(1, self.steps_per_octave.value // 4))
        return lambda stop: deepdream.deepdream_iter(net, photo, layer, should_stop=stop, **kw)

    def picture(self, progress):
        h = self.display_height
        r = progress.result
        shown = [render.at_height(r.original, h)] + [render.at_height(d, h) for d in r.dreams]
        labels = ["photo"] + [f"octave {i + 1}" for i in range(len(r.dreams))]
        if len(r.dreams) < r.octave:  # the octave still dreaming
            shown.append(render.at_height(r.image, h))
            labels.append(f"octave {r.octave}…")
        return render.side_by_side(shown, labels=labels, height=h)

    def summary(self, progress, stopped):
        text = super().summary(progress, stopped)
        rows = "".join(f"<br>octave {i + 1}: {self.layer.value} energy {b:.3g} → {a:.3g}"
                       for i, (b, a) in enumerate(progress.result.energy))
        return text + rows
