"""Lesson 13's app: attribution methods side by side on one image, each map scored.

Pick an image (a shape with its ground-truth mask, a photo, an upload), a class and the
methods; each map is drawn over the image with its scores under it (pointing game and
mask mass where there is a mask, deletion and insertion AUC always). The slider
re-initialises the network's layers from the top down (Adebayo et al.'s sanity check)
and redraws every map: which methods notice that the network is gone?

Maps are computed in the Runner's worker thread (progress, Stop) and cached per
(model, image, class, method, randomised layers); going back to a setting answers from
the cache at once.
"""

from __future__ import annotations

import html
from collections import OrderedDict

import ipywidgets as W
import numpy as np
import torch

from .. import quick_mode
from ..engine import compare as C
from ..engine import evaluation as E
from ..engine import models
from ..render.attributions import attribution_grid
from .base import App, Runner
from .controls import ClassPicker, ImagePicker, ModelPicker
from .occlusion import predicted_class, resolve_network

__all__ = ["CompareApp", "DEFAULT_METHODS"]

_WIDE = {"description_width": "80px"}
DEFAULT_METHODS = tuple(C.METHODS)
CACHE_ENTRIES = 256  # maps kept (one 224 x 224 float32 map is 200 kB)


def shapes_with_masks(n: int = 4, seed: int = 0) -> tuple[dict, dict]:
    """A few shapes images and their ground-truth masks, by picker name."""
    from ..engine.data import load_dataset

    ds = load_dataset("shapes", n=n, seed=seed)
    images, masks = {}, {}
    for item in ds:
        name = f"shape: {ds.classes[item.label]}"
        images[name], masks[name] = item.image, item.mask
    return images, masks


class CompareApp(App):
    """Saliency, SmoothGrad, guided backprop, Grad-CAM, Guided Grad-CAM, Integrated
    Gradients and occlusion on one image, each scored against the mask and the network."""

    title = "Attribution methods side by side, scored"

    def __init__(self, model=None, image=None, methods=None, randomised: int = 0, mask=None):
        self.net = resolve_network(model)
        starters, self.masks = shapes_with_masks()
        self.model = ModelPicker(value=self.net.name)
        self.images = ImagePicker(extra=starters)
        self.classes = ClassPicker(self.net)
        chosen = list(DEFAULT_METHODS if methods is None else methods)
        for m in chosen:
            if m not in C.METHODS:
                raise ValueError(f"unknown method {m!r}; the methods are {', '.join(C.METHODS)}")
        self.method_boxes = {m: W.Checkbox(value=m in chosen, description=C.LABELS[m], indent=False,
                                           layout=W.Layout(width="auto", margin="0 12px 0 0"))
                             for m in C.METHODS}
        self.randomised = W.IntSlider(value=0, min=0, max=len(self.net.layers), description="randomised",
                                      continuous_update=False, style=_WIDE)
        self.runner = Runner(run_label="Compare")
        self.settings, self.curve_steps = C.comparison_settings(quick_mode())
        self._cache: OrderedDict[tuple, tuple[np.ndarray, E.Scores]] = OrderedDict()
        self._references: dict[tuple, E.Scores] = {}
        self._probe: tuple[tuple, models.Network] | None = None  # the randomised copy on show
        self.scores: dict[str, E.Scores] = {}
        self.correlations: dict[str, float] = {}
        controls = [W.HBox([self.model, self.images]), self.classes,
                    W.HBox(list(self.method_boxes.values()), layout=W.Layout(flex_flow="row wrap")),
                    self.randomised, self.runner]
        super().__init__(controls)
        self.images.on_error = self.show_error
        self.images.on_note = self.show_note
        self.connect_runner(self.runner, self.refresh)
        if image is not None:
            if isinstance(image, str):
                self.images.value = image
            else:
                name = self.images.add_image("your image", image)
                if mask is not None:
                    self.masks[name] = np.asarray(mask, dtype=bool)
        self.model.observe(lambda _c: self.guarded(self._change_model)(), names="value")
        self.watch([self.images.dropdown, self.classes, self.randomised, *self.method_boxes.values()],
                   self.refresh)
        with self.syncing():
            self.randomised.value = min(max(0, int(randomised)), self.randomised.max)
        self.guarded(self.refresh)()

    # -- settings of the moment
    def _change_model(self) -> None:
        net = self.current_network()
        with self.syncing():
            self.classes.set_network(net)
            self.randomised.max = len(net.layers)
            self.randomised.value = min(self.randomised.value, self.randomised.max)
        self.refresh()

    @property
    def methods(self) -> list[str]:
        return [m for m, box in self.method_boxes.items() if box.value]

    def _subject(self) -> tuple[torch.Tensor, int, np.ndarray | None]:
        """The image as the network takes it, the class, and the mask at that size (or None)."""
        x = self.net.preprocess(self.images.image)
        target = self.classes.class_index(self.net, predicted=predicted_class(self.net, x))
        mask = self.masks.get(self.images.value)
        if mask is not None:
            mask = self.net.preprocess_mask(mask)
            if not mask.any():
                mask = None
        return x, target, mask

    def _key(self, method: str, k: int | None = None) -> tuple:
        _x, target, _m = self._state
        return (self.net.name, self.images.value, target, method, self.randomised.value if k is None else k)

    def _settings_key(self) -> tuple:
        return (self.net.name, self.images.value, self._state[1], tuple(self.methods), self.randomised.value)

    def _missing(self) -> list[tuple[int, str]]:
        """(randomised layers, method) pairs not cached yet: the original maps first, which
        the randomised ones are compared with."""
        k = self.randomised.value
        stages = [0] if k == 0 else [0, k]
        return [(s, m) for s in stages for m in self.methods if self._key(m, s) not in self._cache]

    # -- computing
    def refresh(self) -> None:
        if self._syncing:
            return
        self._state = self._subject()
        if not self.methods:
            self.show_picture(attribution_grid(self.net.deprocess(self._state[0]), [], []))
            self.show_text("Tick at least one method.")
            return
        key = self._settings_key()
        self.draw_when_ready(self.runner, key, lambda: not self._missing(), self._steps(), self.draw,
                             self._settings_key)

    def _network(self, k: int) -> models.Network:
        if k == 0:
            return self.net
        key = (id(self.net), k)
        if self._probe is None or self._probe[0] != key:
            self._probe = None  # one randomised copy at a time: AlexNet's is 240 MB
            self._probe = (key, E.randomised_network(self.net, k))
        return self._probe[1]

    def _steps(self):
        x, target, mask = self._state
        missing = self._missing()
        image_key = (self.net.name, self.images.value, target)

        def steps(should_stop):
            total = max(1, len(missing))
            done = 0
            for stage in sorted({s for s, _ in missing}):
                methods = [m for s, m in missing if s == stage]
                net = self._network(stage)
                reference = stage == 0 and image_key not in self._references
                for p in C.compare_iter(net, x, target, methods, mask=mask, settings=self.settings,
                                        steps=self.curve_steps, reference=reference, should_stop=should_stop):
                    result = p.result
                    for m in methods:
                        key = image_key + (m, stage)
                        s = result.scores.get(m) if result is not None else None
                        if s is not None and s.deletion is not None and key not in self._cache:
                            self._store(key, result.attributions[m].map[0].numpy(), s)
                    if p.done and result.reference is not None:
                        self._references[image_key] = result.reference
                    yield (done + p.fraction * len(methods)) / total
                    if should_stop():
                        return
                done += len(methods)
        return steps

    def _store(self, key: tuple, heat: np.ndarray, scores: E.Scores) -> None:
        self._cache[key] = (heat, scores)
        while len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)

    # -- drawing, from the cache
    def draw(self) -> None:
        x, target, mask = self._state
        k = self.randomised.value
        image = self.net.deprocess(x)
        maps, titles, captions = [], [], []
        self.scores, self.correlations = {}, {}
        for m in self.methods:
            heat, s = self._cache[self._key(m)]
            self._cache.move_to_end(self._key(m))
            self.scores[m] = s
            lines = []
            if s.pointing is not None:
                lines.append(f"point {'hit' if s.pointing else 'miss'}  mass {s.mask_mass:.2f}")
            lines.append(f"del {s.deletion:.2f}  ins {s.insertion:.2f}")
            if k:
                rho = E.rank_correlation(self._cache[self._key(m, 0)][0], heat)
                self.correlations[m] = rho
                lines.append(f"rank corr {rho:+.2f}")
            maps.append(heat)
            titles.append(C.LABELS[m])
            captions.append(lines)
        name = self.net.classes[target]
        with self.net.guard(), torch.no_grad():
            p = float(self.net(x).softmax(-1)[0, target])
        self.show_picture(attribution_grid(image, maps, titles, captions, mask=mask,
                                           size=max(128, min(192, self.net.input_size)),
                                           image_caption=[f"{name[:20]} p={p:.2f}"]))
        self.show_text(self._summary(name, mask, k))

    def _summary(self, name: str, mask, k: int) -> str:
        ref = self._references.get((self.net.name, self.images.value, self._state[1]))
        rows = []
        for m, s in self.scores.items():
            cells = [C.LABELS[m]]
            if mask is not None:
                cells += ["hit" if s.pointing else "miss", f"{s.mask_mass:.2f}"]
            cells += [f"{s.deletion:.3f}", f"{s.insertion:.3f}"]
            if k:
                cells.append(f"{self.correlations[m]:+.2f}")
            rows.append(cells)
        if ref is not None and not k:  # the chance level of the original network
            cells = ["<i>random map</i>"]
            if mask is not None:
                cells += ["hit" if ref.pointing else "miss", f"{ref.mask_mass:.2f}"]
            cells += [f"{ref.deletion:.3f}", f"{ref.insertion:.3f}"]
            rows.append(cells)
        head = ["method"] + (["pointing", "mask mass"] if mask is not None else []) + \
            ["deletion AUC ↓", "insertion AUC ↑"] + (["rank corr. with original"] if k else [])
        table = ("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
                 + "".join("<tr>" + "".join(f"<td>{c if c.startswith('<i>') else html.escape(c)}</td>" for c in r)
                           + "</tr>" for r in rows) + "</table>")
        where = (f"The object covers {mask.mean():.0%} of the image: a map spread at random puts about that "
                 "share of its mass on it." if mask is not None else
                 "No ground-truth mask for this image: only deletion and insertion are scored.")
        layers = list(reversed(self.net.layers))[:k]
        random_note = (f" <b>{k} layer(s) re-initialised from the top ({html.escape(', '.join(layers))})</b>: "
                       "a map that still looks the same (rank correlation near 1) does not explain the network."
                       if k else "")
        return (f"<div>Explaining <b>{html.escape(name)}</b>. {where} Deletion: lower is better; insertion: "
                f"higher is better.{random_note}</div>{table}")
