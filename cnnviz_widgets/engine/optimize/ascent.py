"""Gradient ascent: synthesise an image that a class or a channel likes best.

Lesson `notebooks/09_gradient_ascent.ipynb`. Simonyan, Vedaldi & Zisserman 2014
("Deep Inside Convolutional Networks", arXiv:1312.6034) maximise a class score with
L2 decay; Yosinski, Clune, Nguyen, Fuchs & Lipson 2015 ("Understanding Neural
Networks Through Deep Visualization", arXiv:1506.06579) add Gaussian blur and the
clipping of pixels with small norm or small contribution; the random jitter comes
from DeepDream (Mordvintsev, Olah & Tyka 2015); Olah, Mordvintsev & Schubert 2017
("Feature Visualization", Distill) optimise in a decorrelated Fourier space
instead. All of them are one call of the shared loop (`engine.optimize`) with
different pieces, chosen here by name:

    for progress in visualize_class_iter(net, "goldfish", param="fourier"):
        preview(progress.result.image)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from ..core import checks
from ..core.progress import Progress, StopCheck, run_to_end
from ..core.targets import Neuron, Target, as_target
from . import (L2, PARAMETRISATIONS, SCHEDULES, Blur, ClipContribution, ClipNorm, Jitter, OptimizeResult, Pad,
               RandomCrop, RandomRotate, RandomScale, TotalVariation, make_param, optimize_iter)
from .objectives import diversity as diversity_term
from .objectives import maximise

__all__ = ["PARAMETRISATIONS", "DEFAULTS", "RECOGNISABLE", "DIVERSITY", "AscentResult", "visualize_class_iter", "visualize_class",
           "visualize_channel_iter", "visualize_channel"]

# The lecture's recipe per parametrisation: pixels need decay and blur to stay
# readable; the Fourier image is smooth by construction and wants a larger step.
DEFAULTS = {
    "pixel": dict(step_size=0.02, l2=0.5, tv=0.0, blur_every=4, blur_sigma=0.5),
    "fourier": dict(step_size=0.05, l2=0.0, tv=0.0, blur_every=0, blur_sigma=0.0),
}

# Settings whose class pictures an independent network recognises too (lessons 09 and 10,
# `engine.judge`): the decorrelated Fourier image under Lucid's transformation-robustness
# stack (pad, jitter, rotation, jitter; no random scale) ending in a random zoom into half
# to all of the picture (`RandomCrop`), with a larger, cosine-decayed step. Chosen by
# measurement: `benchmarks/bench_recognisability.py` makes each picture on
# efficientnet_lite0 and lets efficientnet_lite2 judge it; the search, from a mean judged
# probability of 0.01 to 0.75 over its eight classes, is in benchmarks/README.md.
RECOGNISABLE = dict(param="fourier", size=224, steps=400, step_size=0.1, pad=16, jitter=16, rotate=15,
                    final_jitter=4, crop=0.5, schedule="cosine")

# The weight of the diversity term for a batch of a unit's images: the largest that keeps
# 90% of the unit's activation (measured over six efficientnet_lite0 units by
# `benchmarks/bench_diversity.py`: Gram similarity 0.90 -> 0.44, activation 92%; at 20,
# 0.22 and 83%).
DIVERSITY = 10.0


@dataclass(kw_only=True)
class AscentResult(OptimizeResult):
    """An `OptimizeResult` (image, losses, steps_taken, ended) and the `target` it
    maximised (a `ClassLogit` for a class, a `Neuron` for a channel)."""

    target: Target


def visualize_class_iter(net, target: Any, *, image=None, size: int = 160, steps: int = 40, param: str = "pixel",
                         step_size: float | None = None, l2: float | None = None, tv: float | None = None,
                         blur_every: int | None = None, blur_sigma: float | None = None,
                         clip_norm_percentile: float = 0.0, clip_contribution_percentile: float = 0.0,
                         jitter: int = 2, scale: float = 0.0, rotate: float = 0.0, crop: float = 0.0, pad: int = 0,
                         final_jitter: int = 0, decorrelate: bool | None = None, schedule: str = "constant",
                         batch: int = 1, diversity: float = 0.0, diversity_layer: str | None = None,
                         seed: int = 0, every: int = 5,
                         should_stop: StopCheck = None) -> Iterator[Progress[AscentResult]]:
    """Maximise the logit of class `target` (index or name; any `Target` works too, e.g.
    a `Neuron`); yield `Progress` carrying an `AscentResult`.

    image: start from this picture (PIL, array or [0, 1] tensor; ``param="pixel"``
    only) instead of faint noise around grey. Settings left as None take
    `DEFAULTS[param]`. `clip_norm_percentile` / `clip_contribution_percentile` (0-100,
    0 = off) grey out the pixels of small norm / small contribution after each step
    (Yosinski et al. 2015). `scale` (e.g. 0.05 for +-5%) and `rotate` (degrees) add
    Lucid's random transforms on top of the jitter; `pad` > 0 pads with grey first and
    makes the jitters Lucid's random crops, `final_jitter` crops again after them
    (`optimize.standard_transforms` is pad 12, jitter 8, scale 0.1, rotate 10, final
    jitter 4). `crop` > 0 ends with a random square of `crop`..1 of the side, resized back
    (`RandomCrop`). `decorrelate` optimises in Lucid's decorrelated colour space (default: on
    for Fourier, off for pixels); `schedule` is the loop's step-size schedule.
    `batch` images are optimised at once (``result.image`` is batch x 3 x H x W);
    `diversity` > 0 adds Olah et al.'s diversity term at `diversity_layer` (default: the
    unit's layer, or the layer before the logits for a class) with that weight.
    Checks its settings at once.
    """
    param = checks.choice(param, "parametrisation", PARAMETRISATIONS)
    d = DEFAULTS[param]
    target = as_target(net, target, 1)
    start = None
    if image is not None:
        start = checks.pixels(net.as_batch(image, single=True, size=checks.integer(size, "size", low=32),
                                           what="gradient ascent"), "image")
    batch = checks.integer(batch, "batch", low=1)
    schedule = checks.choice(schedule, "schedule", SCHEDULES)
    diversity = checks.number(diversity, "diversity", low=0.0)
    p = make_param(param, size, seed=seed, image=start, device=net.device, batch=batch, decorrelate=decorrelate)
    blur_every = d["blur_every"] if blur_every is None else checks.integer(blur_every, "blur_every", low=0)
    blur_sigma = d["blur_sigma"] if blur_sigma is None else checks.number(blur_sigma, "blur_sigma", low=0.0)
    regularizers = [L2(d["l2"] if l2 is None else l2), TotalVariation(d["tv"] if tv is None else tv)]
    if blur_every and blur_sigma > 0:
        regularizers.append(Blur(blur_every, blur_sigma))
    # Yosinski et al.'s order: blur first, then clip, so the clipped pixels stay grey.
    regularizers += [ClipNorm(clip_norm_percentile), ClipContribution(clip_contribution_percentile)]
    pad = checks.integer(pad, "pad", low=0)
    jitter_mode = "crop" if pad else "roll"
    transforms = [Pad(pad)] if pad else []
    transforms.append(Jitter(jitter, mode=jitter_mode))
    scale = checks.number(scale, "scale", low=0.0, high=0.9)
    if scale:
        transforms.append(RandomScale((1 - scale, 1 + scale)))
    if checks.number(rotate, "rotate"):
        transforms.append(RandomRotate(rotate))
    if checks.integer(final_jitter, "final_jitter", low=0):
        transforms.append(Jitter(final_jitter, mode=jitter_mode))
    if checks.number(crop, "crop", low=0.0, high=1.0):
        transforms.append(RandomCrop(crop))
    objective = maximise(target, _name(target))
    if diversity:
        if batch < 2:
            raise ValueError("diversity compares the images of a batch: set batch to 2 or more")
        if diversity_layer is None:
            diversity_layer = target.layer if target.layer is not None else net.layers[-2]
        objective = objective + diversity * diversity_term(checks.layer(net, diversity_layer))
    loop = optimize_iter(net, objective, p, steps=steps,
                         step_size=d["step_size"] if step_size is None else step_size,
                         transforms=transforms, regularizers=regularizers, every=every, seed=seed,
                         should_stop=should_stop, schedule=schedule)
    return _results(loop, target)


def _name(target: Target) -> str:
    if isinstance(target, Neuron):
        return f"{target.layer}:{target.channel}"
    classes = getattr(target, "classes", None)
    return f"class {classes[0]}" if classes else repr(target)


def _results(loop: Iterator[Progress[OptimizeResult]], target: Target) -> Iterator[Progress[AscentResult]]:
    for progress in loop:
        r = progress.result
        yield Progress(progress.step, progress.total,
                       AscentResult(image=r.image, losses=r.losses, steps_taken=r.steps_taken, ended=r.ended,
                                    target=target), progress.done)


def visualize_class(net, target: Any, *, image=None, size: int = 160, steps: int = 40, param: str = "pixel",
                    step_size: float | None = None, l2: float | None = None, tv: float | None = None,
                    blur_every: int | None = None, blur_sigma: float | None = None,
                    clip_norm_percentile: float = 0.0, clip_contribution_percentile: float = 0.0,
                    jitter: int = 2, scale: float = 0.0, rotate: float = 0.0, crop: float = 0.0, pad: int = 0,
                    final_jitter: int = 0, decorrelate: bool | None = None, schedule: str = "constant",
                    batch: int = 1, diversity: float = 0.0, diversity_layer: str | None = None,
                    seed: int = 0, every: int = 5) -> AscentResult:
    """`visualize_class_iter` run to the end: ``.image``, ``.losses``."""
    return run_to_end(visualize_class_iter(net, target,
        image=image, size=size, steps=steps, param=param, step_size=step_size, l2=l2, tv=tv, blur_every=blur_every,
        blur_sigma=blur_sigma, clip_norm_percentile=clip_norm_percentile,
        clip_contribution_percentile=clip_contribution_percentile, jitter=jitter, scale=scale, rotate=rotate,
        crop=crop, pad=pad, final_jitter=final_jitter, decorrelate=decorrelate, schedule=schedule, batch=batch,
        diversity=diversity, diversity_layer=diversity_layer, seed=seed, every=every))


def visualize_channel_iter(net, layer: str, channel: int, *,
                           image=None, size: int = 160, steps: int = 40, param: str = "pixel",
                           step_size: float | None = None, l2: float | None = None, tv: float | None = None,
                           blur_every: int | None = None, blur_sigma: float | None = None,
                           clip_norm_percentile: float = 0.0, clip_contribution_percentile: float = 0.0,
                           jitter: int = 2, scale: float = 0.0, rotate: float = 0.0, crop: float = 0.0, pad: int = 0,
                           final_jitter: int = 0, decorrelate: bool | None = None, schedule: str = "constant",
                           batch: int = 1, diversity: float = 0.0, diversity_layer: str | None = None,
                           seed: int = 0, every: int = 5,
                           should_stop: StopCheck = None) -> Iterator[Progress[AscentResult]]:
    """Maximise the mean activation of `channel` of `layer`. See `visualize_class_iter`
    for the settings. Checks its settings when called."""
    layer = checks.layer(net, layer)
    return visualize_class_iter(net, Neuron(layer, checks.channel(net, layer, channel)),
                                image=image, size=size, steps=steps, param=param, step_size=step_size, l2=l2, tv=tv,
                                blur_every=blur_every, blur_sigma=blur_sigma,
                                clip_norm_percentile=clip_norm_percentile,
                                clip_contribution_percentile=clip_contribution_percentile, jitter=jitter,
                                scale=scale, rotate=rotate, crop=crop, pad=pad, final_jitter=final_jitter,
                                decorrelate=decorrelate, schedule=schedule, batch=batch, diversity=diversity,
                                diversity_layer=diversity_layer, seed=seed, every=every, should_stop=should_stop)


def visualize_channel(net, layer: str, channel: int, *,
                      image=None, size: int = 160, steps: int = 40, param: str = "pixel",
                      step_size: float | None = None, l2: float | None = None, tv: float | None = None,
                      blur_every: int | None = None, blur_sigma: float | None = None,
                      clip_norm_percentile: float = 0.0, clip_contribution_percentile: float = 0.0,
                      jitter: int = 2, scale: float = 0.0, rotate: float = 0.0, crop: float = 0.0, pad: int = 0,
                      final_jitter: int = 0, decorrelate: bool | None = None, schedule: str = "constant",
                      batch: int = 1, diversity: float = 0.0, diversity_layer: str | None = None,
                      seed: int = 0, every: int = 5) -> AscentResult:
    """`visualize_channel_iter` run to the end."""
    return run_to_end(visualize_channel_iter(net, layer, channel,
        image=image, size=size, steps=steps, param=param, step_size=step_size, l2=l2, tv=tv, blur_every=blur_every,
        blur_sigma=blur_sigma, clip_norm_percentile=clip_norm_percentile,
        clip_contribution_percentile=clip_contribution_percentile, jitter=jitter, scale=scale, rotate=rotate,
        crop=crop, pad=pad, final_jitter=final_jitter, decorrelate=decorrelate, schedule=schedule, batch=batch,
        diversity=diversity, diversity_layer=diversity_layer, seed=seed, every=every))
