"""Integrated Gradients (Sundararajan, Taly & Yan 2017). Lesson ``13_comparing_attributions``.

Walk in a straight line from a baseline image x' (black, blurred, noise, or one of your
own) to the image x and add up the gradients met on the way:

    IG_i(x) = (x_i - x'_i) * integral over a in [0, 1] of d f(x' + a (x - x')) / d x_i  da

The integral is a weighted sum over `steps` points a_k of the path (the quadrature
`rule`: Gauss-Legendre by default, or the left/right/middle/trapezoid Riemann sums;
the names and points are Captum's). Because the path integral of a gradient is the
change of the function, the attributions add up to f(x) - f(x') (*completeness*):
the gap between the two says whether enough steps were taken; the result reports it.

M. Sundararajan, A. Taly, Q. Yan (2017). *Axiomatic Attribution for Deep Networks*.
ICML. https://arxiv.org/abs/1703.01365

The points of the path go through the network in batches (`batch_size` images per
forward+backward; by default as many as fit the memory budget, `engine.memory`);
`integrated_gradients_iter` reports progress after each batch and can be stopped
between them.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any, Iterator

import numpy as np
import torch

from ..core import checks, memory
from ..core.blur import blurred_copy
from ..core.network import Network
from ..core.progress import Progress, StopCheck, never_stop, run_to_end
from ..core.targets import as_target, score
from .base import Attribution

__all__ = ["integrated_gradients", "integrated_gradients_iter", "baseline_image", "path_points", "BASELINES",
           "RULES"]

BASELINES = ("black", "blur", "noise")
RULES = ("gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle")

def path_points(steps: int, rule: str = "gausslegendre") -> tuple[torch.Tensor, torch.Tensor]:
    """The quadrature's points a_k in [0, 1] and weights w_k (summing to 1), float64."""
    steps = checks.integer(steps, "steps", low=1 if rule == "gausslegendre" else 2)
    rule = checks.choice(rule, "rule", RULES)
    alphas, weights = _path_points(steps, rule)
    return alphas.clone(), weights.clone()


@functools.lru_cache(maxsize=32)
def _path_points(steps: int, rule: str) -> tuple[torch.Tensor, torch.Tensor]:
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return torch.from_numpy(0.5 * (1 + nodes)), torch.from_numpy(0.5 * weights)
    kind = rule.split("_")[1]
    if kind == "trapezoid":
        # Points 1/(n-1) apart, half weight at both ends. (Captum keeps the interior
        # weights at 1/n, which sum to 1 - 1/n: its trapezoid maps are (n-1)/n too small.)
        weights = torch.full((steps,), 1.0 / (steps - 1), dtype=torch.float64)
        weights[0] /= 2
        weights[-1] /= 2
        return _points(0.0, 1.0, steps), weights
    weights = torch.full((steps,), 1.0 / steps, dtype=torch.float64)
    low, high = {"left": (0.0, 1 - 1 / steps), "right": (1 / steps, 1.0),
                 "middle": (1 / (2 * steps), 1 - 1 / (2 * steps))}[kind]
    return _points(low, high, steps), weights


def _points(low: float, high: float, steps: int) -> torch.Tensor:
    # float32 linspace, as Captum: a point one float32 step away can flip a ReLU near zero
    # on the path from a black image and move the map by 1e-3.
    return torch.linspace(low, high, steps, dtype=torch.float32).double()


def baseline_image(x: torch.Tensor, baseline: Any = "black", *, seed: int = 0) -> torch.Tensor:
    """The path's start for each image of the batch x (N x 3 x H x W in [0, 1]).

    "black": zeros; "blur": the image under a Gaussian blur of sigma = 1/16 of its side
    (little detail left, the same colours; Sturmfels et al. 2020); "noise": uniform
    noise in [0, 1] from a seeded generator; a tensor: used as it is (3 x H x W or
    N x 3 x H x W)."""
    if isinstance(baseline, torch.Tensor):
        b = baseline.detach().to(x.device, x.dtype)
        if b.dim() == 3:
            b = b.unsqueeze(0)
        if b.dim() != 4 or b.shape[1:] != x.shape[1:] or b.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"a baseline tensor must be shaped like the image {tuple(x.shape[1:])} "
                             f"(or one per image), not {tuple(baseline.shape)}")
        return b.expand_as(x).contiguous()
    if isinstance(baseline, np.ndarray):
        raise TypeError("a baseline array: give it as a [0, 1] tensor 3 x H x W")
    kind = checks.choice(baseline, "baseline", BASELINES)
    if kind == "black":
        return torch.zeros_like(x)
    if kind == "noise":
        generator = torch.Generator(device="cpu").manual_seed(checks.integer(seed, "seed"))
        return torch.rand(x.shape, generator=generator).to(x.device, x.dtype)
    return blurred_copy(x)


def integrated_gradients_iter(net: Network, image, target: Any, *, baseline: Any = "black", steps: int = 32,
                              rule: str = "gausslegendre", batch_size: int | None = None, seed: int = 0,
                              should_stop: StopCheck = None) -> Iterator[Progress[Attribution]]:
    """Integrated Gradients with progress after each batch of path points (see the module).

    The result's `per_channel` is the attribution (N x 3 x H x W, signed: positive = for
    the class), `map` its sum over colour channels (N x H x W, signed), and ``extra``
    holds ``completeness_gap`` (per image |sum of attributions - (f(x) - f(x'))| /
    |f(x) - f(x')|), ``delta`` (the signed difference, Captum's convergence delta), the
    scores ``f_image``/``f_baseline``, ``baseline``, ``steps``, ``rule`` and
    ``points_done``. A preview (``ended == ""``) and a stopped run's result (``ended ==
    "stopped"``) integrate only the points done so far. Checks its settings at once.
    """
    x = checks.network(net, "Integrated Gradients").as_batch(image, what="Integrated Gradients")
    n = x.shape[0]
    alphas, weights = path_points(steps, rule)
    if batch_size is None:
        batch_size = memory.batch_size(net, size=max(x.shape[-2:]), backward=True)
    batch_size = checks.integer(batch_size, "batch_size", low=1)
    target = as_target(net, target, n)
    start = baseline_image(x, baseline, seed=seed)
    settings = {"baseline": baseline if isinstance(baseline, str) else "tensor", "steps": len(alphas), "rule": rule}
    return _integrate(net, x, start, target, alphas, weights, batch_size, should_stop, settings)


def _integrate(net: Network, x: torch.Tensor, start: torch.Tensor, target, alphas: torch.Tensor,
               weights: torch.Tensor, batch_size: int, should_stop: StopCheck,
               settings: dict) -> Iterator[Progress[Attribution]]:
    n, steps = x.shape[0], len(alphas)
    should_stop = should_stop or never_stop
    # Every (image, point) pair once: image-major, so a batch mixes points of few images.
    pairs = [(i, k) for i in range(n) for k in range(steps)]
    total = torch.zeros_like(x)
    per_image = _per_image_target(target, n)
    ends: dict[str, torch.Tensor] = {}

    def endpoint_scores() -> None:
        with net.guard(), torch.no_grad():
            both = score(net, net.fast_layout(torch.cat([x, start])), _twice(target, n)).double().cpu()
        ends["image"], ends["baseline"] = both[:n], both[n:]

    def result(done: int, ended: str) -> Attribution:
        attribution = (total * (x - start)).cpu()
        change = ends["image"] - ends["baseline"]
        delta = attribution.double().sum(dim=(1, 2, 3)) - change
        gap = delta.abs() / change.abs().clamp_min(1e-12)
        return Attribution(
            map=attribution.sum(dim=1), per_channel=attribution, method="integrated_gradients",
            extra={"completeness_gap": gap.float(), "delta": delta.float(), "f_image": ends["image"].float(),
                   "f_baseline": ends["baseline"].float(), **settings, "points_done": done},
            ended=ended)

    # f(x) and f(x') for the completeness gap: in the first batch when it has room (one
    # pass over AlexNet's 230 MB of classifier weights instead of two), else on their own.
    with_endpoints = len(pairs[:batch_size]) + 2 * n <= batch_size
    done = 0
    for first in range(0, len(pairs), batch_size):
        if should_stop():
            if not ends:
                endpoint_scores()
            yield Progress(done, len(pairs), result(done, "stopped"), done=True)
            return
        if not ends and not with_endpoints:
            endpoint_scores()
        chunk = pairs[first:first + batch_size]
        rows = [i for i, _ in chunk]
        ks = [k for _, k in chunk]
        a = alphas[ks].to(x.device, x.dtype).view(-1, 1, 1, 1)
        if n == 1:  # one image: the points broadcast, nothing to gather
            points = start + a * (x - start)
        else:
            which = torch.tensor(rows, device=x.device)
            begin = start[which]
            points = begin + a * (x[which] - begin)
        extra = not ends
        if extra:
            points, rows = torch.cat([points, x, start]), rows + list(range(n)) * 2
        # The guard is held for one batch, never across a yield: a paused run holds no state.
        with net.guard(), torch.enable_grad():
            z = net.gradient_input(points)
            s = score(net, z, per_image(rows))
            (grad,) = torch.autograd.grad(s[:len(chunk)].sum(), z)
        if extra:
            both = s[len(chunk):].detach().double().cpu()
            ends["image"], ends["baseline"], grad = both[:n], both[n:], grad[:len(chunk)]
        weighted = grad * weights[ks].to(x.device, x.dtype).view(-1, 1, 1, 1)
        if n == 1:
            total += weighted.sum(dim=0, keepdim=True)
        else:
            total.index_add_(0, which, weighted)
        done += len(chunk)
        if done < len(pairs):
            yield Progress(done, len(pairs), result(done, ""))
    yield Progress(done, len(pairs), result(done, "done"), done=True)


def integrated_gradients(net: Network, image, target: Any, *, baseline: Any = "black", steps: int = 32,
                         rule: str = "gausslegendre", batch_size: int | None = None, seed: int = 0) -> Attribution:
    """Integrated Gradients of `target` from `baseline` in `steps` path points (see the module)."""
    return run_to_end(integrated_gradients_iter(net, image, target, baseline=baseline, steps=steps, rule=rule,
                                                batch_size=batch_size, seed=seed))


def _twice(target, n: int):
    """The target for the batch [images, baselines]."""
    index = getattr(target, "index", None)
    return replace(target, index=index + index) if isinstance(index, tuple) else target


def _per_image_target(target, n: int):
    """For a batch made of images `which`, the target restricted to those images."""
    index = getattr(target, "index", None)
    if isinstance(index, tuple):
        return lambda which: replace(target, index=tuple(index[i] for i in which))
    return lambda which: target
