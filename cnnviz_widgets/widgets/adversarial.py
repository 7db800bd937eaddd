"""Lesson 10 app: fool the network with an invisible change (`notebooks/10_fooling_images.ipynb`)."""

from __future__ import annotations

import html

import ipywidgets as W

from .. import render
from ..engine.core.targets import as_target
from ..engine.optimize import adversarial
from .compat import set_tooltip
from .optimize_app import OptimizeApp

__all__ = ["FoolingApp"]

_STYLE = {"description_width": "90px"}

METHODS = {
    "fool (stop at target)": "fool",
    "PGD (targeted, all steps)": "pgd",
    "FGSM (one step, away from the prediction)": "fgsm",
    "FGSM (one step, towards the target)": "fgsm_target",
}


class FoolingApp(OptimizeApp):
    """Image, target class, budget in /255, steps, method and (for `fool`) the target
    probability to reach; shows the original, the fooled image and their difference
    x10, with both predictions and the target's probability."""

    title = "Fooling images: a tiny change, a new class"
    run_label = "Fool it"
    display_height = 200

    def __init__(self, model=None, *, image=None, target: str = "goldfish", budget: float = 8, steps: int = 30,
                 method: str = "fool", confidence: float = 0.0, threaded: bool = True):
        super().__init__(model, image=image, pickers=("model", "image", "class"), threaded=threaded)
        self.budget = W.FloatSlider(value=budget, min=0.5, max=32, step=0.5, description="budget /255",
                                    style=_STYLE, continuous_update=False)
        self.n_steps = W.IntSlider(value=steps, min=1, max=200, description="max steps", style=_STYLE,
                                   continuous_update=False)
        self.method = W.Dropdown(options=list(METHODS.items()), value=method, description="method", style=_STYLE)
        self.confidence = W.FloatSlider(value=confidence, min=0, max=0.99, step=0.01, description="stop at P ≥",
                                        style=_STYLE, continuous_update=False)
        set_tooltip(self.confidence, "fool only: go on until the target's probability reaches this "
                                     "(0: stop at the first step where the target is the top class)")
        if target and target in self.net.classes:
            self.class_picker.value = target
        self._x = None
        self.result = None
        self.show_note("Pick a target class and press 'Fool it'. The budget is the largest change of any pixel.")
        self.arrange([self.image_picker, W.HBox([self.class_picker, self.method]), W.HBox([self.budget, self.n_steps]),
                      self.confidence])

    def prepare(self):
        net = self.net
        x = net.as_batch(self.image_picker.image, single=True, what="the fooling app")
        if not (self.class_picker.value or "").strip():
            raise ValueError("choose a target class (type to search)")
        target = self.class_picker.class_index(net)
        eps = self.budget.value / 255
        steps = self.n_steps.value
        method = self.method.value
        original = as_target(net, None, 1, image=x).index  # the class the model predicts
        self._x, self._target, self._original = x, target, original
        step_size = min(eps, 1 / 255)
        if method == "fool":
            confidence = self.confidence.value or None
            return lambda stop: adversarial.fool_iter(net, x, target, eps=eps, step_size=step_size, steps=steps,
                                                      confidence=confidence, should_stop=stop)
        if method == "pgd":
            return lambda stop: adversarial.pgd_iter(net, x, target, eps=eps, step_size=step_size, steps=steps,
                                                     should_stop=stop)
        if method == "fgsm_target":
            return lambda stop: adversarial.pgd_iter(net, x, target, eps=eps, step_size=eps, steps=1,
                                                     should_stop=stop)
        return lambda stop: adversarial.pgd_iter(net, x, label=original, eps=eps, step_size=eps, steps=1,
                                                 should_stop=stop)

    def picture(self, progress):
        h = self.display_height
        r = progress.result
        diff = adversarial.magnify(r.difference, 10)
        return render.side_by_side([render.at_height(r.original, h), render.at_height(r.image, h),
                                    render.at_height(diff, h)],
                                   labels=["original", "fooled", "difference x10"], height=h)

    def summary(self, progress, stopped):
        net = self.net
        before = net.predict(self._x, top=1)[0]
        after = net.predict(progress.result.image, top=1)[0]
        linf, l2 = progress.result.linf, progress.result.l2
        target = net.classes[self._target]
        p_target = dict(net.predict(progress.result.image, top=len(net.classes)))[target]
        hit = after[0] == target
        verdict = (f"<b style='color:#1b5e20'>fooled: the model now says {html.escape(target)}</b>" if hit else
                   f"<b>not (yet) {html.escape(target)}</b>")
        if self.method.value == "fgsm":
            verdict = ("<b style='color:#1b5e20'>the prediction changed</b>" if after[0] != before[0]
                       else "<b>the prediction did not change</b>")
        return (f"{verdict} · {'stopped' if stopped else 'done'} after {progress.step} steps<br>"
                f"original: {html.escape(before[0])} ({before[1]:.2f}) → changed: {html.escape(after[0])} "
                f"({after[1]:.2f}) · P({html.escape(target)}) = {p_target:.3f}<br>size of the change: L-inf {linf:.4f} = {linf * 255:.2f}/255, "
                f"L2 {l2:.3f} = {l2 * 255:.1f}/255")
