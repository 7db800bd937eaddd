"""Lesson 09 app: synthesise what a class or a channel likes (`notebooks/09_gradient_ascent.ipynb`).

Class mode can ask an independent network (`engine.judge`) whether it sees the class too;
channel mode shows the optimised images beside the dataset patches that excite the unit
most (lesson 05's scan), as Distill's "Feature Visualization" does. A recipe picker sets
the controls to the lecture's settings or to `engine.ascent.RECOGNISABLE`.
"""

from __future__ import annotations

import html
import math
import os
from typing import Any

import ipywidgets as W

from .. import render
from ..engine.core.network import Network
from ..engine.inspect import patches as engine_patches
from ..engine.optimize import SCHEDULES, ascent, judge
from ..engine.zoo.models import imagenet_classes, load_model
from ..render.ascent import channel_comparison
from .compat import set_tooltip
from .controls import ChannelSlider, LayerPicker
from .optimize_app import OptimizeApp

__all__ = ["AscentApp", "RECIPES", "JUDGE"]

_STYLE = {"description_width": "90px"}
RECIPES = ("lecture", "recognisable", "custom")
JUDGE = "efficientnet_lite2"   # the independent network; lite0 judges when lite2 made the picture
SCAN_K = 9                     # patches kept per channel: lesson 05's app scans as many, so they share scans
PATCHES = 6                    # of which the app shows the strongest
TILE = 112


class AscentApp(OptimizeApp):
    """Pick a class (or a layer and channel), a recipe (the lecture's settings or the
    recognisable one), and fine-tune the steps, step size and its schedule, regularisers
    (L2 decay, total variation, blur, Yosinski et al.'s two clippings), transforms (pad,
    jitter, random scale, rotation and zoom) and parametrisation; Run shows the image growing,
    Stop keeps it. In class mode an independent network can judge the result; in channel
    mode a batch of images (pushed apart by the diversity term) is shown beside the dataset
    patches the unit fires on most."""

    title = "Gradient ascent: what does the network imagine?"

    def __init__(self, model=None, *, target: str = "", size: int = 160, steps: int = 40, param: str = "pixel",
                 recipe: str = "lecture", dataset=None, threaded: bool = True):
        super().__init__(model, pickers=("model", "dataset", "class"),
                         dataset=dataset if dataset is not None else _default_dataset(model), threaded=threaded)
        self.verdict: judge.Verdict | None = None   # the judge's verdict on the last run (class mode, when asked)
        self.scan: engine_patches.PatchScan | None = None  # the scan behind the last channel picture
        self._target: int | None = None
        self._extra: dict[str, Any] = {}            # recipe settings that have no control of their own
        self._job: dict[str, Any] = {}
        self.what = W.ToggleButtons(options=["class", "channel"], value="class", description="maximise", style=_STYLE)
        self.recipe = W.ToggleButtons(options=list(RECIPES), value="lecture", description="recipe", style=_STYLE)
        set_tooltip(self.recipe, "lecture: the lesson's settings; recognisable: settings whose class pictures an "
                                 "independent network recognises too (engine.ascent.RECOGNISABLE); moving a knob "
                                 "makes it custom")
        self.ask_judge = W.Checkbox(value=False, description="ask an independent network", indent=False)
        set_tooltip(self.ask_judge, f"after the run, {JUDGE} (trained apart from the model) says how probable it "
                                    "finds the class over 16 random crops; loaded the first time it is asked (22 MB of weights; "
                                    "judging takes seconds and, in batches sized from the memory budget, some 130 MB at its peak)")
        self.layer = LayerPicker(only=lambda net, l: l != "logits")
        self.channel = ChannelSlider()
        self.batch = W.IntSlider(value=3, min=1, max=6, description="images", style=_STYLE, continuous_update=False)
        set_tooltip(self.batch, "how many images to optimise at once for the unit")
        # Measured on efficientnet_lite0 stage4:3 (3 images, 96 px, 20 steps): weight 5 lowers the
        # images' Gram similarity from 0.95 to 0.85 for 1% of the unit's activation; 20 reaches
        # 0.30 but costs 23% of it.
        self.diversity = W.FloatSlider(value=ascent.DIVERSITY, min=0, max=50, step=0.5, description="diversity", style=_STYLE,
                                       continuous_update=False)
        set_tooltip(self.diversity, "weight of Olah et al.'s diversity term: the images are penalised for exciting "
                                    "the layer alike (needs 2 images or more; 0 = off)")
        self.param = W.ToggleButtons(options=list(ascent.PARAMETRISATIONS), value=param,
                                     description="image as", style=_STYLE)
        self.size = W.IntSlider(value=size, min=64, max=320, step=16, description="size", style=_STYLE,
                                continuous_update=False)
        self.n_steps = W.IntSlider(value=steps, min=1, max=500, description="steps", style=_STYLE,
                                   continuous_update=False)
        self.seed = W.IntText(value=0, description="seed", style=_STYLE, layout=W.Layout(width="160px"))
        # -- the fine-tuning knobs, folded away
        self.step_size = W.FloatLogSlider(value=ascent.DEFAULTS[param]["step_size"], base=10, min=-3, max=0,
                                          step=0.1, description="step size", style=_STYLE, continuous_update=False)
        self.schedule = W.Dropdown(options=list(SCHEDULES), value="constant", description="schedule", style=_STYLE)
        set_tooltip(self.schedule, "constant: every step the same size; cosine: steps shrink to 0 along a "
                                   "half cosine, so the last ones only refine")
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
        self.jitter = W.IntSlider(value=2, min=0, max=32, description="jitter px", style=_STYLE,
                                  continuous_update=False)
        self.pad = W.IntSlider(value=0, min=0, max=32, description="pad px", style=_STYLE, continuous_update=False)
        set_tooltip(self.pad, "pad with grey before the transforms; the jitters then become random crops (Lucid)")
        self.scale = W.FloatSlider(value=0.0, min=0, max=0.5, step=0.05, description="scale ±", style=_STYLE,
                                   continuous_update=False)
        set_tooltip(self.scale, "random rescaling each step, e.g. 0.1 = by 0.9 to 1.1 (0 = off)")
        self.rotate = W.FloatSlider(value=0.0, min=0, max=45, step=1, description="rotate ±°", style=_STYLE,
                                    continuous_update=False)
        set_tooltip(self.rotate, "random rotation each step, up to this many degrees either way (0 = off)")
        self.crop = W.FloatSlider(value=0.0, min=0, max=1, step=0.05, description="random zoom", style=_STYLE,
                                  continuous_update=False)
        set_tooltip(self.crop, "last, each step looks at a random square of this much to all of the picture's side, "
                               "resized back (0 = off)")
        self.final_jitter = W.IntSlider(value=0, min=0, max=16, description="final jitter", style=_STYLE,
                                        continuous_update=False)
        set_tooltip(self.final_jitter, "a second random shift after scaling and rotating (0 = off)")

        # The settings a recipe sets, by the engine's names (`visualize_class_iter`).
        self.recipe_controls: dict[str, W.Widget] = {
            "param": self.param, "size": self.size, "steps": self.n_steps, "step_size": self.step_size,
            "schedule": self.schedule, "l2": self.l2, "tv": self.tv, "blur_sigma": self.blur,
            "clip_norm_percentile": self.clip_norm, "clip_contribution_percentile": self.clip_contribution,
            "jitter": self.jitter, "pad": self.pad, "scale": self.scale, "rotate": self.rotate,
            "final_jitter": self.final_jitter, "crop": self.crop}
        self._lecture = dict(param=param, size=size, steps=steps, schedule="constant", tv=0.0,
                             clip_norm_percentile=0.0, clip_contribution_percentile=0.0, jitter=2, pad=0, scale=0.0,
                             rotate=0.0, final_jitter=0, crop=0.0)

        self.class_row = W.HBox([self.class_picker, self.ask_judge])
        self.channel_rows = W.VBox([W.HBox([self.layer, self.channel]),
                                    W.HBox([self.batch, self.diversity, self.dataset_picker])])
        self.advanced = W.Accordion(children=[W.VBox([
            W.HBox([self.step_size, self.schedule]), W.HBox([self.l2, self.tv]),
            W.HBox([self.blur, self.clip_norm, self.clip_contribution]),
            W.HBox([self.jitter, self.pad, self.final_jitter]), W.HBox([self.scale, self.rotate, self.crop])])])
        self.advanced.set_title(0, "step size, regularisers and transforms")
        self.advanced.selected_index = None  # folded (ipywidgets 7 opens the first pane by default)
        controls = [W.HBox([self.what, self.recipe]), self.class_row, self.channel_rows,
                    W.HBox([self.param, self.size]), W.HBox([self.n_steps, self.seed]), self.advanced]

        self.class_picker.value = target or self.net.classes[min(1, len(self.net.classes) - 1)]
        self.on_model(self.net)
        self._param_defaults()
        self._mode_changed()
        # A bad recipe name is reported like any bad setting; the lecture's stays.
        self.guarded(self.set_recipe, later=True)(recipe)
        self.watch([self.param], self._param_defaults)
        self.watch([self.layer], self._layer_changed)
        self.watch([self.what], self._mode_changed)
        self.watch([self.recipe], self._recipe_chosen)
        self.watch(list(self.recipe_controls.values()), self._recipe_follow)
        self.show_note("Press Run: the picture updates as the image is optimised; Stop keeps it.")
        self.arrange(controls)

    # -- controls
    def on_model(self, net) -> None:
        self.layer.set_network(net)
        self._layer_changed()

    def _layer_changed(self) -> None:
        if self.layer.value:
            self.channel.set_count(self.net.layer_shape(self.layer.value)[0])

    def _mode_changed(self) -> None:
        channel = self.what.value == "channel"
        self.class_row.layout.display = "none" if channel else None
        self.channel_rows.layout.display = None if channel else "none"

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

    # -- recipes
    def recipe_settings(self, name: str) -> dict[str, Any]:
        """The engine settings recipe `name` stands for: the lecture's (this app's size,
        steps and parametrisation as built, `ascent.DEFAULTS` for the rest) or those with
        `ascent.RECOGNISABLE` on top."""
        if name not in RECIPES[:2]:
            raise ValueError(f"unknown recipe {name!r}: choose {' or '.join(RECIPES[:2])}")
        settings = dict(self._lecture)
        chosen = dict(ascent.RECOGNISABLE) if name == "recognisable" else {}
        settings.update(chosen)
        d = ascent.DEFAULTS[settings["param"]]
        for key in ("step_size", "l2", "blur_sigma"):
            if key not in chosen:
                settings[key] = d[key]
        return settings

    def set_recipe(self, name: str) -> None:
        """Set every control a recipe names ("lecture" or "recognisable"); settings of the
        recipe without a control of their own go to the engine as they are."""
        settings = self.recipe_settings(name)
        with self.syncing():
            _set_control(self.param, settings["param"])
            self._param_defaults()
            for key, value in settings.items():
                if key in self.recipe_controls and key != "param":
                    _set_control(self.recipe_controls[key], value)
            self._extra = {k: v for k, v in settings.items() if k not in self.recipe_controls}
            self.recipe.value = name

    def _recipe_chosen(self) -> None:
        if self.recipe.value != "custom":
            self.set_recipe(self.recipe.value)

    def _recipe_follow(self) -> None:
        """A knob moved away from the recipe makes it custom."""
        name = self.recipe.value
        if name != "custom" and not self._matches(self.recipe_settings(name)):
            self.set_quietly(self.recipe, value="custom")

    def _matches(self, settings: dict[str, Any]) -> bool:
        for key, control in self.recipe_controls.items():
            want, have = settings[key], control.value
            if control.disabled and key in ("blur_sigma", "clip_norm_percentile", "clip_contribution_percentile"):
                continue  # the Fourier image holds these at 0 whatever the recipe says
            if isinstance(want, float) or isinstance(have, float):
                if not math.isclose(float(want), float(have), rel_tol=1e-6, abs_tol=1e-9):
                    return False
            elif want != have:
                return False
        return True

    # -- running
    def prepare(self):
        kw = dict(size=self.size.value, steps=self.n_steps.value, param=self.param.value, step_size=self.step_size.value,
                  l2=self.l2.value, tv=self.tv.value, blur_sigma=self.blur.value,
                  blur_every=4 if self.blur.value > 0 else 0, clip_norm_percentile=self.clip_norm.value,
                  clip_contribution_percentile=self.clip_contribution.value, jitter=self.jitter.value,
                  pad=self.pad.value, scale=self.scale.value, rotate=self.rotate.value,
                  final_jitter=self.final_jitter.value, crop=self.crop.value, schedule=self.schedule.value,
                  seed=self.seed.value, every=max(1, self.n_steps.value // 20))
        kw.update(self._extra)
        net = self.net
        job: dict[str, Any] = {}
        # The Runner hands its stop check to the job when it starts; the engine's generator
        # is made here, so that it checks its settings on the caller's thread.
        stop_check = _Forward()
        if self.what.value == "class":
            if not self.class_picker.value.strip():
                raise ValueError("choose a class to visualise (type to search)")
            target = self.class_picker.class_index(net)
            judge_name = self._judge_for(net, target) if self.ask_judge.value else None
            steps = ascent.visualize_class_iter(net, target, should_stop=stop_check, **kw)
            make = _judged(steps, judge_name, net.classes[target], job, stop_check)
        else:
            target = None
            layer, ch = self.layer.value, self.channel.value
            steps = ascent.visualize_channel_iter(net, layer, ch, should_stop=stop_check, batch=self.batch.value,
                                                  diversity=self.diversity.value, **kw)
            scan = engine_patches.cached_scan(net, self.dataset, layer, SCAN_K)
            if scan is None:
                scanning = engine_patches.max_activating_patches_iter(net, self.dataset, layer, k=SCAN_K,
                                                                      should_stop=stop_check)
                self.show_text(f"first, {len(self.dataset)} images of {html.escape(self.dataset.name)} are scanned "
                               f"for the patches {html.escape(layer)} fires on most (once: kept afterwards)…")
            else:
                scanning = None
            make = _beside_patches(steps, scanning, scan, net, self.dataset, ch, job, stop_check)
        self._target, self._job, self.verdict, self.scan = target, job, None, None

        def start(should_stop):
            stop_check.to = should_stop
            return make()
        return start

    def _judge_for(self, net: Network, target: int) -> str:
        name = net.classes[target]
        if name not in imagenet_classes():
            raise ValueError(f"the judge ({JUDGE}) knows the 1000 ImageNet classes and {name!r} is not one of "
                             f"them: choose an ImageNet model to ask it")
        return "efficientnet_lite0" if net.name == JUDGE else JUDGE

    def _update(self, progress) -> None:
        if isinstance(progress.result, ascent.AscentResult):  # scan progress shows in the bar only
            super()._update(progress)

    def _done(self, last, stopped: bool) -> None:
        if last is not None and not isinstance(last.result, ascent.AscentResult):
            self.show_text("Stopped while scanning the dataset: press <b>Run</b> to scan it and optimise.")
            return
        self.verdict = self._job.get("verdict")
        self.scan = self._job.get("scan")
        super()._done(last, stopped)

    def picture(self, progress):
        if self._job.get("patches"):  # a channel run: its images beside the unit's patches
            crops, values = self._job["patches"]
            return channel_comparison(progress.result.image, crops, values, size=TILE)
        return render.at_height(progress.result.image, self.display_height)

    def summary(self, progress, stopped):
        text = super().summary(progress, stopped)
        if self._target is None:
            return f"{text}<br>{self._channel_caption(progress)}"
        image = progress.result.image[:1]
        top = self.net.predict(image, top=len(self.net.classes))  # a forward pass, no gradient
        pred = ", ".join(f"{html.escape(n)} {p:.2f}" for n, p in top[:3])
        name = self.net.classes[self._target]
        p = dict(top)[name]
        pred = f"{pred} · target {html.escape(name)}: {p:.2f} (rank {[n for n, _ in top].index(name) + 1})"
        text = f"{text}<br>the model now sees: {pred}"
        verdict = self._job.get("verdict")
        if verdict is not None:
            text += (f'<br><span class="cnnviz-verdict">the maker ({html.escape(self.net.name)}): '
                     f"P({html.escape(name)}) = {p:.2f} · an independent judge "
                     f"({html.escape(self._job['judge'])}, {verdict.crops} random crops): "
                     f"{html.escape(str(verdict))}</span>")
        elif self.ask_judge.value and stopped:
            text += "<br>(a stopped run is not judged: press Run again to hear the judge)"
        return text

    def _channel_caption(self, progress) -> str:
        scan = self._job.get("scan")
        unit = html.escape(self.layer.value)
        n = int(progress.result.image.shape[0])
        left = (f"Left: {n} image{'s' if n > 1 else ''} optimised for channel {self.channel.value} of "
                f"<b>{unit}</b>" + (f" (diversity {self.diversity.value:g})" if n > 1 else "") + ".")
        if scan is None:
            return left
        shown = len(self._job["patches"][0])
        few = (" Only a few photos: choose a larger dataset for a fuller picture."
               if scan.n_images < 50 else "")
        return (f"{left} Right: the {shown} patches of {html.escape(scan.dataset)} ({scan.n_images} images) "
                f"that excite it most, strongest first (its activation under each): what the unit "
                f"“wants” beside what it fires on.{few}")


class _Forward:
    """A stop check whose target is set later (the Runner's, when the job starts)."""

    def __init__(self):
        self.to = None

    def __call__(self) -> bool:
        return bool(self.to is not None and self.to())


def _judged(steps, judge_name: str | None, target: str, job: dict, stop_check: _Forward):
    """The ascent's progress; then, if a judge is named and the run was not stopped,
    its verdict on the last image (kept in `job`)."""
    def make():
        last = None
        for last in steps:
            yield last
        if judge_name is not None and last is not None and last.result.ended == "done" and not stop_check():
            job["judge"] = judge_name
            job["verdict"] = judge.judge(load_model(judge_name), last.result.image, target)
    return make


def _beside_patches(steps, scanning, scan, net, dataset, channel: int, job: dict, stop_check: _Forward):
    """The dataset scan (unless cached), the unit's top patches cut from it (kept in
    `job`), then the ascent's progress."""
    def make():
        found = scan
        if scanning is not None:
            for progress in scanning:
                yield progress
                found = progress.result
            if found is None or found.ended != "done" or stop_check():
                return
        job["scan"] = found
        top = found.top(channel, PATCHES)
        job["patches"] = ([engine_patches.crop_patch(net, dataset[i].image, found.rf, r, c) for i, r, c, _ in top],
                          [v for *_, v in top])
        yield from steps
    return make


def _default_dataset(model) -> str:
    """The photos for ImageNet models, the shapes for the shapes network."""
    name = model.name if isinstance(model, Network) else (model or os.environ.get("CNNVIZ_MODEL"))
    return "shapes" if name == "shapes" else "samples"


def _set_control(control: W.Widget, value: Any) -> None:
    """Set a control to a recipe's value, widening a slider that cannot hold it."""
    if hasattr(control, "options"):
        if value not in control.options:
            raise ValueError(f"{control.description} cannot be {value!r}: choose from {', '.join(map(str, control.options))}")
    elif isinstance(control, W.FloatLogSlider):
        if value > 0 and math.log10(value) > control.max:
            control.max = math.ceil(math.log10(value))
    elif hasattr(control, "max") and value > control.max:
        control.max = value
    control.value = value
