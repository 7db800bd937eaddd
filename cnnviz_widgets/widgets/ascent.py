"""Lesson 09 app: synthesise what a class or a channel likes (`notebooks/09_gradient_ascent.ipynb`)."""

from __future__ import annotations

import html

import ipywidgets as W

from ..engine import ascent
from .compat import set_tooltip
from .controls import ChannelSlider, LayerPicker
from .optimize_app import OptimizeApp

__all__ = ["AscentApp"]

_STYLE = {"description_width": "90px"}


class AscentApp(OptimizeApp):
    """Pick a class (or a layer and channel), the steps, step size, regularisers
    (L2 decay, total variation, blur, Yosinski et al.'s two clippings, jitter) and
    parametrisation; Run shows the image growing, Stop keeps it."""

    title = "Gradient ascent: what does the network imagine?"

    def __init__(self, model=None, *, target: str = "", size: int = 160, steps: int = 40, param: str = "pixel",
                 threaded: bool = True):
        super().__init__(model, pickers=("model", "class"), threaded=threaded)
        self.what = W.ToggleButtons(options=["class", "channel"], value="class", description="maximise", style=_STYLE)
        self.layer = LayerPicker(only=lambda net, l: l != "logits")
        self.channel = ChannelSlider()
        self.param = W.ToggleButtons(options=list(ascent.PARAMETRISATIONS), value=param,
                                     description="image as", style=_STYLE)
        self.size = W.IntSlider(value=size, min=64, max=320, step=16, description="size", style=_STYLE,
                                continuous_update=False)
        self.n_steps = W.IntSlider(value=steps, min=1, max=500, description="steps", style=_STYLE,
                                   continuous_update=False)
        self.step_size = W.FloatLogSlider(value=ascent.DEFAULTS[param]["step_size"], base=10, min=-3, max=0,
                                          step=0.1, description="step size", style=_STYLE, continuous_update=False)
        self.l2 = W.FloatSlider(value=ascent.DEFAULTS[param]["l2"], min=0, max=5, step=0.05,
                                description="L2 decay", style=_STYLE, continuous_update=False)
        self.tv = W.FloatSlider(value=0.0, min=0, max=5, step=0.05, description="total var.", style=_STYLE,
                                continuous_update=False)
        self.blur = W.FloatSlider(value=ascent.DEFAULTS[param]["blur_sigma"], min=0, max=2, step=0.1,
                                  description="blur sigma", style=_STYLE, continuous_update=False)
        self.clip_norm = W.FloatSlider(value=0.0, min=0, max=95, step=5, description="clip norm %",
                                       style=_STYLE, continuous_update=False)
        set_tooltip(self.clip_norm, "after each step, grey out the pixels whose colour is nearest grey: "
                                    "this percentile of them (Yosinski et al. 2015; 0 = off)")
        self.clip_contribution = W.FloatSlider(value=0.0, min=0, max=95, step=5, description="clip contrib. %",
                                               style=_STYLE, continuous_update=False)
        set_tooltip(self.clip_contribution, "after each step, grey out the pixels that contribute least to the "
                                            "objective: this percentile of them (Yosinski et al. 2015; 0 = off)")
        self.jitter = W.IntSlider(value=2, min=0, max=16, description="jitter px", style=_STYLE,
                                  continuous_update=False)
        self.seed = W.IntText(value=0, description="seed", style=_STYLE, layout=W.Layout(width="160px"))
        controls = [W.HBox([self.what, self.class_picker]), W.HBox([self.layer, self.channel]),
                    W.HBox([self.param, self.size]), W.HBox([self.n_steps, self.step_size]),
                    W.HBox([self.l2, self.tv]), W.HBox([self.blur, self.jitter, self.seed]),
                    W.HBox([self.clip_norm, self.clip_contribution])]
        self.class_picker.value = target or self.net.classes[min(1, len(self.net.classes) - 1)]
        self.on_model(self.net)
        self._param_defaults()
        self.watch([self.param], self._param_defaults)
        self.watch([self.layer], self._layer_changed)
        self.show_note("Press Run: the picture updates as the image is optimised; Stop keeps it.")
        self.arrange(controls)

    def on_model(self, net) -> None:
        self.layer.set_network(net)
        self._layer_changed()

    def _layer_changed(self) -> None:
        if self.layer.value:
            self.channel.set_count(self.net.layer_shape(self.layer.value)[0])

    def _param_defaults(self) -> None:
        # The two parametrisations want different step sizes and regularisers.
        d = ascent.DEFAULTS[self.param.value]
        self.step_size.value, self.l2.value, self.blur.value = d["step_size"], d["l2"], d["blur_sigma"]
        # Blur and clipping change pixels; the Fourier image has none of its own to change.
        fourier = self.param.value == "fourier"
        for control in (self.blur, self.clip_norm, self.clip_contribution):
            if fourier:
                control.value = 0.0
            control.disabled = fourier

    def prepare(self):
        kw = dict(size=self.size.value, steps=self.n_steps.value, param=self.param.value, step_size=self.step_size.value,
                  l2=self.l2.value, tv=self.tv.value, blur_sigma=self.blur.value,
                  blur_every=4 if self.blur.value > 0 else 0, clip_norm_percentile=self.clip_norm.value,
                  clip_contribution_percentile=self.clip_contribution.value, jitter=self.jitter.value,
                  seed=self.seed.value, every=max(1, self.n_steps.value // 20))
        net = self.net
        if self.what.value == "class":
            if not self.class_picker.value.strip():
                raise ValueError("choose a class to visualise (type to search)")
            target = self.class_picker.class_index(net)
            self._target = target
            return lambda should_stop: ascent.visualize_class_iter(net, target, should_stop=should_stop, **kw)
        self._target = None
        layer, ch = self.layer.value, self.channel.value
        return lambda should_stop: ascent.visualize_channel_iter(net, layer, ch, should_stop=should_stop, **kw)

    def summary(self, progress, stopped):
        text = super().summary(progress, stopped)
        top = self.net.predict(progress.result.image, top=len(self.net.classes))  # a forward pass, no gradient
        pred = ", ".join(f"{html.escape(n)} {p:.2f}" for n, p in top[:3])
        if self._target is not None:
            name = self.net.classes[self._target]
            p = dict(top)[name]
            pred = f"{pred} · target {html.escape(name)}: {p:.2f} (rank {[n for n, _ in top].index(name) + 1})"
        return f"{text}<br>the model now sees: {pred}"
