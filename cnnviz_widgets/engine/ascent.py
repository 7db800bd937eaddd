"""Gradient ascent: synthesise an image that a class or a channel likes best.

Lesson `notebooks/09_gradient_ascent.ipynb`. Simonyan et al. 2014 maximise a class
score with L2 decay; Yosinski et al. 2015 add blur and jitter; Olah et al. 2017
optimise in a decorrelated Fourier space instead. All of them are one call of the
shared loop (`engine.optimize`) with different pieces, chosen here by name:

    for p in visualize_class_iter(net, "goldfish", param="fourier"):
        preview(p.image)
"""

from __future__ import annotations

from typing import Iterator

import torch

from . import objectives as O
from .optimize import (Blur, FourierParam, Jitter, L2, PixelParam, Progress, RandomRotate, RandomScale,
                       TotalVariation, optimize_iter)

__all__ = ["PARAMETRISATIONS", "DEFAULTS", "make_param", "ascent_iter", "visualize_class_iter",
           "visualize_class", "visualize_channel_iter", "visualize_channel"]

PARAMETRISATIONS = ("pixel", "fourier")

# The lecture's recipe per parametrisation: pixels need decay and blur to stay
# readable; the Fourier image is smooth by construction and wants a larger step.
DEFAULTS = {
    "pixel": dict(lr=0.02, l2=0.5, tv=0.0, blur_every=4, blur_sigma=0.5),
    "fourier": dict(lr=0.05, l2=0.0, tv=0.0, blur_every=0, blur_sigma=0.0),
}


def make_param(kind: str, size: int, seed: int = 0, device=None):
    """A fresh image to optimise: mid-grey with faint seeded noise, or a Fourier one."""
    if kind not in PARAMETRISATIONS:
        raise ValueError(f"unknown parametrisation {kind!r}: choose one of {', '.join(PARAMETRISATIONS)}")
    size = int(size)
    if size < 32:
        raise ValueError(f"image size must be at least 32 pixels, not {size}")
    if kind == "fourier":
        return FourierParam(size, decorrelate=True, seed=seed, device=device)
    gen = torch.Generator().manual_seed(int(seed))
    return PixelParam(0.5 + 0.02 * torch.randn(1, 3, size, size, generator=gen))


def ascent_iter(net, objective: O.Objective, *, size: int = 160, steps: int = 40, param: str = "pixel",
                lr: float | None = None, l2: float | None = None, tv: float | None = None,
                blur_every: int | None = None, blur_sigma: float | None = None, jitter: int = 2,
                scale: float = 0.0, rotate: float = 0.0, seed: int = 0, every: int = 5,
                should_stop=None) -> Iterator[Progress]:
    """Maximise `objective` from a blank image; settings left as None take `DEFAULTS[param]`.

    `scale` (e.g. 0.05 for +-5%) and `rotate` (degrees) add Lucid's random
    transforms on top of the jitter.
    """
    if param not in PARAMETRISATIONS:
        raise ValueError(f"unknown parametrisation {param!r}: choose one of {', '.join(PARAMETRISATIONS)}")
    d = DEFAULTS[param]
    lr = d["lr"] if lr is None else lr
    l2 = d["l2"] if l2 is None else l2
    tv = d["tv"] if tv is None else tv
    blur_every = d["blur_every"] if blur_every is None else blur_every
    blur_sigma = d["blur_sigma"] if blur_sigma is None else blur_sigma
    regs = [L2(l2), TotalVariation(tv)]
    if blur_every and blur_sigma > 0:
        regs.append(Blur(blur_every, blur_sigma))
    transforms = [Jitter(jitter)]
    if scale:
        transforms.append(RandomScale((1 - scale, 1 + scale)))
    if rotate:
        transforms.append(RandomRotate(rotate))
    p = make_param(param, size, seed=seed, device=net.device)
    yield from optimize_iter(net, objective, p, steps=steps, lr=lr, transforms=transforms,
                             regularizers=regs, every=every, seed=seed, should_stop=should_stop)


def visualize_class_iter(net, target: int | str, **kwargs) -> Iterator[Progress]:
    """Maximise the logit of class `target` (index or name). See `ascent_iter` for settings."""
    return ascent_iter(net, O.class_score(net.class_index(target)), **kwargs)


def visualize_channel_iter(net, layer: str, channel: int, **kwargs) -> Iterator[Progress]:
    """Maximise the mean activation of `channel` of `layer`. See `ascent_iter` for settings."""
    net.check_layer(layer)
    if isinstance(channel, bool) or not isinstance(channel, int) or channel < 0:
        raise ValueError(f"channel must be a whole number >= 0, not {channel!r}")
    return ascent_iter(net, O.channel(layer, channel), **kwargs)


def _last(it) -> Progress:
    last = None
    for last in it:
        pass
    return last


def visualize_class(net, target: int | str, **kwargs) -> Progress:
    """`visualize_class_iter` run to the end: the final `Progress` (`.image`, `.losses`)."""
    return _last(visualize_class_iter(net, target, **kwargs))


def visualize_channel(net, layer: str, channel: int, **kwargs) -> Progress:
    """`visualize_channel_iter` run to the end."""
    return _last(visualize_channel_iter(net, layer, channel, **kwargs))
