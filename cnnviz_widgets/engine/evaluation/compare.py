"""Attribution methods side by side, each scored. Lesson ``13_comparing_attributions``.

The methods are `attribution.methods.METHODS` (one call shape, one table)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from ..attribution.base import Attribution
from ..attribution.methods import LABELS, METHODS, class_list, occlusion_logit
from ..core import checks
from ..core.blur import blurred_copy
from ..core.network import Network
from ..core.progress import Progress, StopCheck, never_stop, run_to_end
from .scores import Scores, auc_scores_iter, mask_mass, pointing_game, random_map

__all__ = ["METHODS", "LABELS", "compare", "compare_iter", "Comparison", "comparison_settings", "occlusion_logit",
           "class_list"]


def comparison_settings(quick: bool = False) -> tuple[dict, int]:
    """The settings lesson 13's app uses: per-method settings and the deletion/insertion
    steps; `quick` (tests, CI) takes fewer noisy copies, path points and steps."""
    settings = {"smoothgrad": {"samples": 8 if quick else 25},
                "integrated_gradients": {"steps": 16 if quick else 32}}
    return settings, 16 if quick else 32


@dataclass
class Comparison:
    """Maps and scores of the chosen methods for one image: `target` the class explained,
    `methods` the methods asked for, `attributions` and `scores` by method name (the
    methods finished so far), `reference` a random map's scores (the chance level);
    `ended` is "" in a preview, then "done" or "stopped"."""

    target: int
    methods: list[str]
    attributions: dict[str, Attribution] = field(default_factory=dict)
    scores: dict[str, Scores] = field(default_factory=dict)
    reference: Scores | None = None
    ended: str = "done"


def compare_iter(net: Network, image, target: Any, *, methods: Sequence[str] = tuple(METHODS), mask=None,
                 settings: Mapping[str, Mapping[str, Any]] | None = None, steps: int = 32,
                 curves: bool = True, reference: bool = True, seed: int = 0,
                 should_stop: StopCheck = None) -> Iterator[Progress[Comparison]]:
    """Compute and score each method's map for one image (see `compare`). Progress comes
    after every map and every score; the partial `Comparison` holds the methods done.
    Checks its settings when called."""
    x = net.as_batch(image, single=True, what="the comparison")
    if isinstance(methods, str):
        methods = [methods]
    methods = [checks.choice(m, "method", list(METHODS)) for m in methods]
    if not methods:
        raise ValueError("choose at least one method")
    settings = {checks.choice(name, "settings for method", list(METHODS)): dict(value)
                for name, value in dict(settings or {}).items()}
    cls = class_list(net, target, 1)[0]
    steps = checks.integer(steps, "steps", low=2)
    seed = checks.integer(seed, "seed")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != tuple(x.shape[-2:]):
            raise ValueError(f"the mask is {mask.shape[0]}x{mask.shape[1]} but the image is "
                             f"{x.shape[-2]}x{x.shape[-1]}: resize it with net.preprocess_mask")
    return _compare(net, x, cls, methods, mask, settings, steps, bool(curves), bool(reference), seed,
                    should_stop or never_stop)


def _compare(net, x, cls, methods, mask, settings, steps, curves, reference, seed,
             should_stop) -> Iterator[Progress[Comparison]]:
    result = Comparison(target=cls, methods=list(methods))
    total = len(methods) * (2 if curves else 1) + (1 if reference and curves else 0)
    done = 0
    fill = blurred_copy(x)  # the curves' default fill, made once for every map

    def scored(heat) -> Scores:
        s = Scores()
        if mask is not None:
            s.pointing, s.mask_mass = pointing_game(heat, mask), mask_mass(heat, mask)
        return s

    def add_areas(s: Scores, heat) -> bool:
        """Deletion and insertion AUC into `s`; False when stopped on the way."""
        areas = run_to_end(auc_scores_iter(net, x, cls, [heat], steps=steps, fill=fill, seed=seed,
                                           should_stop=should_stop))
        if areas.ended == "stopped":
            return False
        s.deletion, s.insertion = float(areas.deletion[0]), float(areas.insertion[0])
        return True

    for name in methods:
        if should_stop():
            result.ended = "stopped"
            break
        attribution = METHODS[name](net, x, cls, **settings.get(name, {}))
        heat = attribution.map[0]
        result.attributions[name] = attribution
        result.scores[name] = s = scored(heat)
        done += 1
        yield Progress(done, total, _snapshot(result))
        if curves:
            if not add_areas(s, heat):
                result.ended = "stopped"
                break
            done += 1
            yield Progress(done, total, _snapshot(result))
    if result.ended == "done" and reference and curves:
        if should_stop():
            result.ended = "stopped"
        else:
            heat = random_map(tuple(x.shape[-2:]), seed=seed)
            ref = scored(heat)
            if add_areas(ref, heat):
                result.reference = ref
                done += 1
            else:
                result.ended = "stopped"
    yield Progress(done, total, result, done=True)


def _snapshot(result: Comparison) -> Comparison:
    """A preview: a copy of the partial result that later steps do not change (maps are
    shared), ``ended == ""``."""
    return replace(result, methods=list(result.methods), attributions=dict(result.attributions),
                   scores={k: replace(v) for k, v in result.scores.items()}, ended="")


def compare(net: Network, image, target: Any, *, methods: Sequence[str] = tuple(METHODS), mask=None,
            settings: Mapping[str, Mapping[str, Any]] | None = None, steps: int = 32, curves: bool = True,
            reference: bool = True, seed: int = 0) -> Comparison:
    """The chosen methods' maps for one image and class, each with its scores: pointing
    game and mask mass where a `mask` (H x W bool, at the network's input size) is given,
    deletion and insertion AUC (`steps` steps) when `curves`; a random map's scores as
    the chance level when `reference`. `settings` per method, e.g.
    ``{"integrated_gradients": {"steps": 64}, "smoothgrad": {"samples": 10}}``."""
    return run_to_end(compare_iter(net, image, target, methods=methods, mask=mask, settings=settings, steps=steps,
                                   curves=curves, reference=reference, seed=seed))
