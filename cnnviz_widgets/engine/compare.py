"""Attribution methods side by side, each scored. Lesson ``13_comparing_attributions``.

`METHODS` names every method the kit can compare, each with one call shape,
``method(net, image, target, **settings) -> Attribution`` whose ``map`` is N x H x W at
image size with larger = more for the class:

=====================  =================================================================
saliency               max over colour channels of |d logit / d pixel| (lesson 07)
smoothgrad             saliency averaged over noisy copies (`attribution.smoothgrad`)
guided_backprop        the guided backprop gradient of the class, |.| max over channels (08)
grad_cam               ReLU of the channel-weighted last spatial layer, upsampled (`gradcam`)
guided_grad_cam        guided backprop x Grad-CAM (`gradcam`)
integrated_gradients   gradients summed along the path from a black image, summed over
                       colour channels (signed; `integrated_gradients`)
occlusion              the logit's drop when a grey patch hides the pixel, averaged over
                       the patches that cover it (lesson 06, Captum's per-pixel form)
=====================  =================================================================

`compare_iter` computes the chosen methods for one image and scores each map
(`evaluation.score_map`), reporting progress after every map and every score, so an app
can show maps as they come and stop between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from . import checks
from .attribution import Attribution, smoothgrad
from .blur import blurred_copy
from .evaluation import Scores, curve_iter, mask_mass, pointing_game, random_map
from .gradcam import grad_cam, guided_grad_cam
from .integrated_gradients import integrated_gradients
from .network import Network
from .progress import Progress, StopCheck, never_stop, run_to_end
from .targets import ClassLogit, Target, as_target

__all__ = ["METHODS", "LABELS", "compare", "compare_iter", "Comparison", "comparison_settings", "occlusion_logit",
           "saliency_attribution", "smoothgrad_attribution", "guided_backprop_attribution", "class_list"]


def class_list(net: Network, target: Any, n: int) -> list[int]:
    """The class of a class target for each of n images (a class index or name, a list of
    them, a `ClassLogit` / `ClassProbability`)."""
    checked = as_target(net, target, n)
    classes = getattr(checked, "classes", None)
    if classes is None:
        raise ValueError("this method explains a class: give a class index or name")
    return classes * n if len(classes) == 1 else list(classes)


def saliency_attribution(net: Network, image, target: Any) -> Attribution:
    """Saliency (lesson 07), named "saliency"."""
    from .saliency import saliency

    return saliency(net, image, target)


def smoothgrad_attribution(net: Network, image, target: Any, *, samples: int = 25, noise: float = 0.15,
                           seed: int = 0) -> Attribution:
    """SmoothGrad over saliency (`attribution.smoothgrad`), named "smoothgrad"."""
    from .saliency import saliency

    result = smoothgrad(saliency, net, image, target, samples=samples, noise=noise, seed=seed)
    result.method = "smoothgrad"
    return result


def guided_backprop_attribution(net: Network, image, target: Any) -> Attribution:
    """Guided backprop of the target (lesson 08): map |gradient| max over colour channels."""
    from .guided import guided_backprop

    result = guided_backprop(net, image, target, rule="guided")
    result.method = "guided_backprop"
    return result


def occlusion_logit(net: Network, image, target: Any, *, patch: int | None = None,
                    stride: int | None = None) -> Attribution:
    """Occlusion (lesson 06) as a per-pixel map: the class *logit*'s drop when a grey patch
    hides the pixel, averaged over the patch positions that cover it
    (`occlusion.occlusion_attribution`; the logit, as the gradient methods explain it,
    rather than the probability, which a confident network barely moves). A `Target`
    (e.g. ``ClassProbability(c)``) is used as it is."""
    from .occlusion import occlusion_attribution

    x = net.as_batch(image, what="occlusion")
    if not isinstance(target, Target):
        target = ClassLogit(tuple(class_list(net, target, x.shape[0])))
    return occlusion_attribution(net, x, target, patch=patch, stride=stride)


METHODS: dict[str, Callable[..., Attribution]] = {
    "saliency": saliency_attribution,
    "smoothgrad": smoothgrad_attribution,
    "guided_backprop": guided_backprop_attribution,
    "grad_cam": grad_cam,
    "guided_grad_cam": guided_grad_cam,
    "integrated_gradients": integrated_gradients,
    "occlusion": occlusion_logit,
}

LABELS = {
    "saliency": "saliency",
    "smoothgrad": "SmoothGrad",
    "guided_backprop": "guided backprop",
    "grad_cam": "Grad-CAM",
    "guided_grad_cam": "Guided Grad-CAM",
    "integrated_gradients": "Integrated Gradients",
    "occlusion": "occlusion",
}


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


def compare_iter(net: Network, image, target: Any, methods: Sequence[str] = tuple(METHODS), *, mask=None,
                 settings: Mapping[str, Mapping[str, Any]] | None = None, steps: int = 32,
                 curves: bool = True, reference: bool = True, seed: int = 0,
                 should_stop: StopCheck = None) -> Iterator[Progress[Comparison]]:
    """Compute and score each method's map for one image (see `compare`). Progress comes
    after every map and every score; the partial `Comparison` holds the methods done."""
    x = net.as_batch(image, single=True, what="the comparison")
    methods = [checks.choice(m, "method", list(METHODS)) for m in methods]
    if not methods:
        raise ValueError("choose at least one method")
    settings = dict(settings or {})
    for name in settings:
        checks.choice(name, "settings for method", list(METHODS))
    cls = class_list(net, target, 1)[0]
    steps = checks.integer(steps, "steps", low=2)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != tuple(x.shape[-2:]):
            raise ValueError(f"the mask is {mask.shape[0]}x{mask.shape[1]} but the image is "
                             f"{x.shape[-2]}x{x.shape[-1]}: resize it with net.preprocess_mask")
    should_stop = should_stop or never_stop
    result = Comparison(target=cls, methods=list(methods))
    total = len(methods) * (2 if curves else 1) + (1 if reference and curves else 0)
    done = 0

    fill = blurred_copy(x)  # the curves' default fill, made once for every map

    def curves_of(heat) -> Iterator[Progress]:
        for kind in ("deletion", "insertion"):
            for p in curve_iter(kind, net, x, cls, heat, steps=steps, fill=fill,
                                 batch_size=None, seed=seed, should_stop=should_stop):
                if p.done:
                    yield p.result.auc

    for name in methods:
        if should_stop():
            result.ended = "stopped"
            break
        attribution = METHODS[name](net, x, cls, **dict(settings.get(name, {})))
        heat = attribution.map[0]
        s = Scores()
        if mask is not None:
            s.pointing, s.mask_mass = pointing_game(heat, mask), mask_mass(heat, mask)
        result.attributions[name] = attribution
        result.scores[name] = s
        done += 1
        yield Progress(done, total, _snapshot(result))
        if curves:
            s.deletion, s.insertion = list(curves_of(heat))
            done += 1
            yield Progress(done, total, _snapshot(result))
    if reference and curves and result.ended == "done" and not should_stop():
        heat = random_map(tuple(x.shape[-2:]), seed)
        ref = Scores()
        if mask is not None:
            ref.pointing, ref.mask_mass = pointing_game(heat, mask), mask_mass(heat, mask)
        ref.deletion, ref.insertion = list(curves_of(heat))
        result.reference = ref
        done += 1
    elif should_stop():
        result.ended = "stopped"
    yield Progress(done, total, result, done=True)


def _snapshot(result: Comparison) -> Comparison:
    """A preview: a copy of the partial result that later steps do not change (maps are
    shared), ``ended == ""``."""
    return replace(result, methods=list(result.methods), attributions=dict(result.attributions),
                   scores={k: replace(v) for k, v in result.scores.items()}, ended="")


def compare(net: Network, image, target: Any, methods: Sequence[str] = tuple(METHODS), *, mask=None,
            settings: Mapping[str, Mapping[str, Any]] | None = None, steps: int = 32, curves: bool = True,
            reference: bool = True, seed: int = 0) -> Comparison:
    """The chosen methods' maps for one image and class, each with its scores: pointing
    game and mask mass where a `mask` (H x W bool, at the network's input size) is given,
    deletion and insertion AUC (`steps` steps) when `curves`; a random map's scores as
    the chance level when `reference`. `settings` per method, e.g.
    ``{"integrated_gradients": {"steps": 64}, "smoothgrad": {"samples": 10}}``."""
    return run_to_end(compare_iter(net, image, target, methods, mask=mask, settings=settings, steps=steps,
                                   curves=curves, reference=reference, seed=seed))
