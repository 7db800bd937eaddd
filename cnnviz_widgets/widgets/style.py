"""Lesson 14 app: texture synthesis and style transfer (`notebooks/14_style_transfer.ipynb`)."""

from __future__ import annotations

import html

import ipywidgets as W

from .. import render
from ..engine.optimize import style as engine_style
from ..engine.zoo.textures import texture_image, texture_names
from .controls import ImagePicker
from .optimize_app import OptimizeApp

__all__ = ["StyleApp"]

_STYLE = {"description_width": "90px"}


def _default_layers(net) -> tuple[list[str], str]:
    """Style layers (the first four below the head) and the content layer (the deepest of them)."""
    options = [l for l in net.layers if l not in ("logits", "head")]
    style_layers = options[1:5] if len(options) > 4 else options[:-1] or options
    return style_layers, style_layers[-1]


class StyleApp(OptimizeApp):
    """Content image, style image, a weight per style layer, the content layer, the
    style/content ratio, TV weight, steps; content, style and the result side by side,
    redrawn while it runs. "texture only" drops the content (Gatys et al. 2015)."""

    title = "Style transfer: a photo's layout, a texture's statistics"
    run_label = "Stylise"
    display_height = 160

    def __init__(self, model=None, *, image=None, style="mosaic", style_layers=None, content_layer=None,
                 style_weight: float = engine_style.DEFAULTS["style_weight"],
                 tv_weight: float = engine_style.DEFAULTS["tv_weight"], size: int = engine_style.DEFAULTS["size"],
                 steps: int = engine_style.DEFAULTS["steps"], texture_only: bool = False, threaded: bool = True):
        super().__init__(model, image=image, pickers=("model", "image"), threaded=threaded)
        self.style_picker = ImagePicker(description="style")
        for name in reversed(texture_names()):
            self.style_picker.add_image(name, texture_image(name), select=False)
        self.style_picker.dropdown.options = texture_names() + [o for o in self.style_picker.dropdown.options
                                                               if o not in texture_names()]
        self.style_picker.value = texture_names()[0]
        self.style_picker.on_error = self.show_error
        self.style_picker.on_note = self.show_note
        self.guarded(self.style_picker.choose, later=True)(style)
        self.content_layer = W.Dropdown(options=[], description="content layer", style=_STYLE)
        self.weights_box = W.VBox()
        self.layer_weights: dict[str, W.FloatSlider] = {}
        self.style_weight = W.FloatLogSlider(value=style_weight, base=10, min=-1, max=3, step=0.1,
                                             description="style/content", style=_STYLE, continuous_update=False)
        self.tv_weight = W.FloatSlider(value=tv_weight, min=0.0, max=2.0, step=0.05, description="TV weight",
                                       style=_STYLE, continuous_update=False)
        self.n_steps = W.IntSlider(value=steps, min=1, max=1000, description="steps", style=_STYLE,
                                   continuous_update=False)
        self.size = W.IntSlider(value=size, min=32, max=256, step=16, description="size", style=_STYLE,
                                continuous_update=False)
        self.texture_only = W.Checkbox(value=texture_only, description="texture only (no content)", indent=False)
        self.on_model(self.net, style_layers, content_layer)
        self.show_note("Pick a photo and a style, weigh the style layers, and press Stylise.")
        self.arrange([self.image_picker, self.style_picker, W.HBox([self.content_layer, self.texture_only]),
                      self.weights_box, W.HBox([self.style_weight, self.tv_weight]), W.HBox([self.n_steps, self.size])])

    def on_model(self, net, style_layers=None, content_layer=None) -> None:
        options = [l for l in net.layers if l not in ("logits", "head")]
        default_style, default_content = _default_layers(net)
        if isinstance(style_layers, dict):
            chosen = {l: float(w) for l, w in style_layers.items() if l in options}
        else:
            chosen = {l: 1.0 for l in (style_layers or ()) if l in options}
        chosen = chosen or {l: 1.0 for l in default_style}
        self.layer_weights = {l: W.FloatSlider(value=chosen.get(l, 0.0), min=0.0, max=2.0, step=0.1,
                                               description=l, style=_STYLE, continuous_update=False)
                              for l in options}
        self.weights_box.children = [W.HTML("<b>style layer weights</b> (0: not used)"),
                                     *self.layer_weights.values()]
        self.content_layer.options = options
        self.content_layer.value = content_layer if content_layer in options else default_content

    def chosen_weights(self) -> dict[str, float]:
        return {l: s.value for l, s in self.layer_weights.items() if s.value > 0}

    def prepare(self):
        net, weights = self.net, self.chosen_weights()
        if not weights:
            raise ValueError("give at least one style layer a weight above 0")
        kw = dict(size=self.size.value, steps=self.n_steps.value, tv_weight=self.tv_weight.value,
                  every=max(1, self.n_steps.value // 20))
        style_image, content = self.style_picker.image, self.image_picker.image
        texture_only, content_layer, style_weight = self.texture_only.value, self.content_layer.value, \
            self.style_weight.value

        def start(stop):
            if texture_only:
                return engine_style.synthesize_texture_iter(net, style_image, layers=weights, should_stop=stop, **kw)
            return engine_style.transfer_style_iter(net, content, style_image, content_layer=content_layer,
                                                    style_layers=weights, style_weight=style_weight,
                                                    should_stop=stop, **kw)
        return start

    def picture(self, progress):
        r, h = progress.result, self.display_height
        shown, labels = [], []
        if isinstance(r, engine_style.StyleResult):
            shown.append(render.at_height(r.content, h))
            labels.append("content")
        shown += [render.at_height(r.style, h), render.at_height(r.image, h)]
        labels += ["style", "result" if r.ended else "result…"]
        return render.side_by_side(shown, labels=labels, height=h)

    def summary(self, progress, stopped):
        r = progress.result
        head = f"{'stopped' if stopped else 'done'} after {progress.step}/{progress.total} steps"
        grams = ", ".join(f"{html.escape(l)} {d:.2f} (from {r.start_gram_distance.get(l, float('nan')):.2f})"
                          for l, d in r.gram_distance.items())
        rows = [head, f"Gram distance to the style: {grams}"]
        if isinstance(r, engine_style.StyleResult):
            rows.append(f"content distance at {html.escape(r.content_layer)}: {r.content_distance:.3f} "
                        f"(the style image's: {r.style_content_distance:.3f})")
        return "<br>".join(rows)
