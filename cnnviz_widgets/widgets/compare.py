"""Lesson 13's app: attribution methods side by side on one image, each map scored.

Pick an image (a shape with its ground-truth mask, a photo, an upload), a class and the
methods; each map is drawn over the image with its scores under it (pointing game and
mask mass where there is a mask, deletion and insertion AUC always). The slider
re-initialises the network's layers from the top down (Adebayo et al.'s sanity check)
and redraws every map: which methods notice that the network is gone?

Maps are computed in the Runner (progress, Stop) and cached per (model, image, class,
method, randomised layers); going back to a setting answers from the cache at once.
"""

from __future__ import annotations

import html
from collections import OrderedDict

import ipywidgets as W
import numpy as np

from .. import quick_mode
from ..engine.core.targets import as_target
from ..engine.evaluation import compare as C
from ..engine.evaluation import scores as E
from ..render.attributions import attribution_grid
from .base import App
from .runner import in_sequence

__all__ = ["CompareApp"]

_WIDE = {"description_width": "80px"}
CACHE_ENTRIES = 256  # maps kept (one 224 x 224 float32 map is 200 kB)


class CompareApp(App):
    """Saliency, SmoothGrad, guided backprop, Grad-CAM, Guided Grad-CAM, Integrated
    Gradients and occlusion on one image, each scored against the mask and the network.

    Headless use: tick ``app.method_boxes[name].value``, move ``app.randomised.value``,
    call ``app.runner.wait()`` (or build with ``threaded=False``), read ``app.scores``,
    ``app.correlations``, ``app.view.value`` and ``app.info.value``.
    """

    title = "Attribution methods side by side, scored"

    def __init__(self, model=None, *, image=None, mask=None, methods=None, randomised: int = 0,
                 threaded: bool = True):
        chosen = list(C.METHODS if methods is None else methods)
        for m in chosen:
            if m not in C.METHODS:
                raise ValueError(f"unknown method {m!r}; the methods are {', '.join(C.METHODS)}")
        super().__init__(model, pickers=("model", "image", "class"), threaded=threaded)
        if image is not None:
            if mask is not None and not isinstance(image, str):
                from ..engine.core.images import as_pil

                self.guarded(self.image_picker.add_image, later=True)("your image", as_pil(image), mask=mask)
            else:
                self.guarded(self.image_picker.choose, later=True)(image)
        self.method_boxes = {m: W.Checkbox(value=m in chosen, description=C.LABELS[m], indent=False,
                                           layout=W.Layout(width="auto", margin="0 12px 0 0"))
                             for m in C.METHODS}
        self.randomised = W.IntSlider(value=min(max(0, int(randomised)), len(self.net.layers)), min=0,
                                      max=len(self.net.layers), description="randomised",
                                      continuous_update=False, style=_WIDE)
        self.settings, self.curve_steps = C.comparison_settings(quick_mode())
        self._cache: OrderedDict[tuple, tuple[np.ndarray, E.Scores]] = OrderedDict()
        self._references: dict[tuple, E.Scores] = {}
        self._subjects: dict[tuple, tuple] = {}  # (net, image) -> (x, mask, predicted class)
        self._probe: tuple[tuple, object] | None = None  # the randomised copy in use
        self.scores: dict[str, E.Scores] = {}
        self.correlations: dict[str, float] = {}
        self.watch([self.randomised, *self.method_boxes.values()], self.refresh)
        self.arrange([
            W.HBox([self.model_picker, self.image_picker]),
            self.class_picker,
            W.HBox(list(self.method_boxes.values()), layout=W.Layout(flex_flow="row wrap")),
            self.randomised,
            self.runner,
        ])

    def on_model(self, net) -> None:
        self.randomised.max = len(net.layers)
        self.randomised.value = min(self.randomised.value, self.randomised.max)

    @property
    def methods(self) -> list[str]:
        return [m for m, box in self.method_boxes.items() if box.value]

    # -- what is on show
    def _image_key(self) -> tuple:
        return (id(self.net), self.image_picker.value, id(self.image_picker.image))

    def _subject(self) -> tuple:
        """The image as the network takes it, its mask at that size (or None), and the
        class: the one chosen, else the predicted one (a forward pass: cached)."""
        key = self._image_key()
        if key not in self._subjects:
            net = self.net
            x = net.as_batch(self.image_picker.image, single=True, what="the comparison app")
            mask = self.image_picker.mask
            if mask is not None:
                mask = net.preprocess_mask(mask)
                mask = mask if mask.any() else None
            self._subjects[key] = (x, mask, None)
        x, mask, predicted = self._subjects[key]
        chosen = self.class_picker.chosen(self.net)
        return x, mask, chosen, predicted

    def _target(self) -> int | None:
        """The class explained, None while the predicted class is still unknown."""
        _x, _mask, chosen, predicted = self._subject()
        return chosen if chosen is not None else predicted

    def _key(self, method: str, stage: int, target: int) -> tuple:
        return self._image_key() + (target, method, stage)

    def _missing(self, target: int | None) -> list[tuple[int, str]]:
        """(randomised layers, method) pairs not cached yet: the original maps first, which
        the randomised ones are compared with."""
        k = self.randomised.value
        stages = [0] if k == 0 else [0, k]
        if target is None:
            return [(s, m) for s in stages for m in self.methods]
        return [(s, m) for s in stages for m in self.methods if self._key(m, s, target) not in self._cache]

    # -- computing
    def refresh(self) -> None:
        if not self.methods:
            self.runner.cancel()
            x = self._subject()[0]
            self.show_picture(attribution_grid(self.net.deprocess(x), [], []))
            self.show_text("Tick at least one method.")
            return
        key = self._image_key() + (self.class_picker.value, tuple(self.methods), self.randomised.value)
        self.draw_when_ready(key, lambda: not self._missing(self._target()), self._steps(), self.draw)

    def _network(self, stage: int):
        if stage == 0:
            return self.net
        key = (id(self.net), stage)
        if self._probe is None or self._probe[0] != key:
            self._probe = None  # one randomised copy at a time: AlexNet's is 240 MB
            self._probe = (key, E.randomised_network(self.net, stage))
        return self._probe[1]

    def _steps(self):
        image_key = self._image_key()
        x, mask, chosen, _ = self._subject()
        net, stage_now, methods_now = self.net, self.randomised.value, self.methods
        settings, curve_steps = dict(self.settings), self.curve_steps

        def stage_run(stage, methods, target, should_stop):
            """One stage's maps and scores (the engine's `compare_iter`), kept as they come."""
            reference = stage == 0 and image_key + (target,) not in self._references
            probe = net if stage == 0 else self._network(stage)
            for p in C.compare_iter(probe, x, target, methods=methods, mask=mask, settings=settings,
                                    steps=curve_steps, reference=reference, should_stop=should_stop):
                result = p.result
                for m in methods:
                    s = result.scores.get(m)
                    if s is not None and s.deletion is not None and image_key + (target, m, stage) not in self._cache:
                        self._store(image_key + (target, m, stage), result.attributions[m].map[0].numpy(), s)
                if p.done and result.reference is not None:
                    self._references[image_key + (target,)] = result.reference
                yield p

        def steps(should_stop):
            if chosen is None and self._subjects[image_key][2] is None:
                predicted = as_target(net, None, 1, image=x).index  # None: the class the model predicts
                self._subjects[image_key] = (x, mask, predicted)
            target = chosen if chosen is not None else self._subjects[image_key][2]
            stages = [0] if stage_now == 0 else [0, stage_now]
            missing = [(s, m) for s in stages for m in methods_now if image_key + (target, m, s) not in self._cache]
            runs = []
            for stage in stages:
                methods = [m for s, m in missing if s == stage]
                if methods:
                    runs.append(lambda stage=stage, methods=methods: stage_run(stage, methods, target, should_stop))
            return in_sequence(runs)
        return steps

    def _store(self, key: tuple, heat: np.ndarray, scores: E.Scores) -> None:
        self._cache[key] = (heat, scores)
        while len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)

    # -- drawing, from the cache
    def draw(self) -> None:
        x, mask, _chosen, _predicted = self._subject()
        target = self._target()
        k = self.randomised.value
        maps, titles, captions = [], [], []
        self.scores, self.correlations = {}, {}
        for m in self.methods:
            key = self._key(m, k, target)
            if key not in self._cache:
                return  # a setting changed while this was computed: its own job draws it
            heat, s = self._cache[key]
            self._cache.move_to_end(key)
            self.scores[m] = s
            lines = []
            if s.pointing is not None:
                lines.append(f"point {'hit' if s.pointing else 'miss'}  mass {s.mask_mass:.2f}")
            lines.append(f"del {s.deletion:.2f}  ins {s.insertion:.2f}")
            if k:
                rho = E.rank_correlation(self._cache[self._key(m, 0, target)][0], heat)
                self.correlations[m] = rho
                lines.append(f"rank corr {rho:+.2f}")
            maps.append(heat)
            titles.append(C.LABELS[m])
            captions.append(lines)
        name = self.net.classes[target]
        self.show_picture(attribution_grid(self.net.deprocess(x), maps, titles, captions, mask=mask,
                                           size=max(128, min(192, self.net.input_size)),
                                           image_caption=[name[:24]]))
        self.show_text(self._summary(name, mask, k, target))

    def _summary(self, name: str, mask, k: int, target: int) -> str:
        ref = self._references.get(self._image_key() + (target,))
        rows = []
        for m, s in self.scores.items():
            cells = [html.escape(C.LABELS[m])]
            if mask is not None:
                cells += ["hit" if s.pointing else "miss", f"{s.mask_mass:.2f}"]
            cells += [f"{s.deletion:.3f}", f"{s.insertion:.3f}"]
            if k:
                cells.append(f"{self.correlations[m]:+.2f}")
            rows.append(cells)
        if ref is not None and not k:  # the chance level, on the original network
            cells = ["<i>random map</i>"]
            if mask is not None:
                cells += ["hit" if ref.pointing else "miss", f"{ref.mask_mass:.2f}"]
            rows.append(cells + [f"{ref.deletion:.3f}", f"{ref.insertion:.3f}"])
        head = ["method"] + (["pointing", "mask mass"] if mask is not None else []) + \
            ["deletion AUC ↓", "insertion AUC ↑"] + (["rank corr. with original"] if k else [])
        table = ("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
                 + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows) + "</table>")
        where = (f"The object covers {mask.mean():.0%} of the image: a map spread at random puts about that "
                 "share of its mass on it." if mask is not None else
                 "No ground-truth mask for this image: only deletion and insertion are scored.")
        layers = list(reversed(self.net.layers))[:k]
        random_note = (f" <b>{k} layer(s) re-initialised from the top ({html.escape(', '.join(layers))})</b>: "
                       "a map that still looks the same (rank correlation near 1) does not explain the network."
                       if k else "")
        return (f"<div>Explaining <b>{html.escape(name)}</b>. {where} Deletion: lower is better; insertion: "
                f"higher is better.{random_note}</div>{table}")
