"""What every attribution method returns, the batching they share, and SmoothGrad as a
wrapper over any of them.

An attribution method is ``method(net, image, target, **settings) -> Attribution``
(saliency, guided backprop, Grad-CAM, Integrated Gradients, occlusion as a map), with
a twin ``method_iter(..., should_stop=None)`` that yields `Progress` batch by batch.
`batched_iter` gives a method both for the price of one function that explains one
batch. `smoothgrad` wraps any method, as Captum's ``NoiseTunnel`` does: the method
runs on noisy copies of the image and the maps are averaged (Smilkov, Thorat, Kim,
Viégas & Wattenberg 2017, *SmoothGrad: removing noise by adding noise*,
arXiv:1706.03825). Lessons 07, 08, 13.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

import torch

from ..core import checks, memory
from ..core.network import noisy_copies
from ..core.progress import Progress, StopCheck, run_to_end
from ..core.targets import ClassLogit, ClassProbability, Target, as_target, score

__all__ = ["Attribution", "input_gradient", "batched_iter", "target_for_images", "smoothgrad_iter", "smoothgrad",
           "smoothed"]


@dataclass
class Attribution:
    """An attribution map for a batch of images, on the CPU.

    map: N x H x W, what is drawn (for saliency max over channels of |gradient|).
    per_channel: N x 3 x H x W signed values before the reduction over colour
        channels (None where the method has none, e.g. Grad-CAM).
    method: the method's name; extra: what a method adds (Integrated Gradients'
        completeness gap, Grad-CAM's layer-resolution map, ...).
    ended: ``"done"``; from a ``*_iter`` run, ``""`` for a preview of the images done
        so far and ``"stopped"`` when `should_stop` ended it early.
    """

    map: torch.Tensor
    per_channel: torch.Tensor | None = None
    method: str = ""
    extra: dict = field(default_factory=dict)
    ended: str = "done"


def input_gradient(net, x: torch.Tensor, target: Target) -> torch.Tensor:
    """d target-score / d x for each image: N x 3 x H x W (NCHW, on x's device).

    Images are independent, so one backward of the summed scores gives every image its
    own gradient. Runs inside ``net.guard()``; wrap it in `guided.backprop_rule` to
    change the rectifiers' backward."""
    with net.guard(), torch.enable_grad():
        xg = net.gradient_input(x)
        (grad,) = torch.autograd.grad(score(net, xg, target).sum(), xg)
    return grad.contiguous()  # NCHW for the caller, whatever layout the pass ran in


def target_for_images(target: Target, images: slice) -> Target:
    """The part of a per-image class target that belongs to `images` (other targets
    apply to every image alike)."""
    if isinstance(target, (ClassLogit, ClassProbability)) and isinstance(target.index, tuple):
        return replace(target, index=target.index[images])
    return target


def _batch_size(net, x: torch.Tensor, batch_size: int | None) -> int:
    """`batch_size`, checked; None: as many images as the memory budget allows for a
    forward and backward at x's size (`engine.memory`)."""
    if batch_size is None:
        return memory.batch_size(net, size=max(x.shape[-2:]), backward=True)
    return checks.integer(batch_size, "batch_size", low=1)


def _cat(parts: list[torch.Tensor | None]) -> torch.Tensor | None:
    return None if not parts or parts[0] is None else torch.cat(parts)


def batched_iter(explain: Callable[..., Attribution], net, image, target: Any, *, batch_size: int | None = None,
                 should_stop: StopCheck = None, what: str = "this method",
                 **settings) -> Iterator[Progress[Attribution]]:
    """Run ``explain(net, x, target, **settings)`` (one batch of images -> `Attribution`)
    over the images `batch_size` at a time (None: from the memory budget, `engine.memory`);
    yield `Progress` after each batch, whose result holds the maps of the images done so
    far. Checks its arguments at once."""
    x = checks.network(net, what).as_batch(image, what=what)
    n = x.shape[0]
    target = as_target(net, target, n, image=x)
    batch_size = _batch_size(net, x, batch_size)
    return _batches(explain, net, x, target, batch_size, should_stop, settings)


def _joined_extra(extras: list[dict], sizes: list[int]) -> dict:
    """The batches' `extra`s as one: a tensor holding one row per image of its batch
    (Grad-CAM's layer maps, a per-image gap) is joined image by image; anything else is
    the first batch's."""
    out = dict(extras[0])
    for key, value in extras[0].items():
        parts = [e.get(key) for e in extras]
        if all(isinstance(p, torch.Tensor) and p.dim() and p.shape[0] == k for p, k in zip(parts, sizes)):
            out[key] = torch.cat([p.cpu() for p in parts])
    return out


def _batches(explain, net, x, target, batch_size, should_stop, settings) -> Iterator[Progress[Attribution]]:
    n = x.shape[0]
    maps, channels, extras, sizes, first = [], [], [], [], None

    def joined(ended: str) -> Attribution:
        return Attribution(_cat(maps), _cat(channels), first.method, _joined_extra(extras, sizes), ended)

    for start in range(0, n, batch_size):
        if start and should_stop is not None and should_stop():
            yield Progress(start, n, joined("stopped"), done=True)
            return
        part = slice(start, min(n, start + batch_size))
        result = explain(net, x[part], target_for_images(target, part), **settings)
        first = first or result
        maps.append(result.map.cpu())
        channels.append(None if result.per_channel is None else result.per_channel.cpu())
        extras.append(result.extra)
        sizes.append(part.stop - part.start)
        done = part.stop == n
        yield Progress(part.stop, n, joined("done" if done else ""), done=done)


def _repeat_target(target: Target, samples: int) -> Target:
    if isinstance(target, (ClassLogit, ClassProbability)) and isinstance(target.index, tuple):
        return replace(target, index=tuple(i for i in target.index for _ in range(samples)))
    return target


def smoothgrad_iter(method: Callable[..., Attribution], net, image, target: Any, *, samples: int = 25,
                    noise: float = 0.15, seed: int = 0, batch_size: int | None = None, should_stop: StopCheck = None,
                    **settings) -> Iterator[Progress[Attribution]]:
    """`smoothgrad` yielding `Progress` after each batch of noisy copies; a preview's
    maps average the copies done so far. Checks its arguments at once."""
    samples = checks.integer(samples, "samples", low=1)
    noise = checks.fraction(noise, "noise")
    seed = checks.integer(seed, "seed")
    x = checks.network(net, "SmoothGrad").as_batch(image, what="SmoothGrad")
    batch_size = _batch_size(net, x, batch_size)
    target = as_target(net, target, x.shape[0], image=x)
    return _smooth(method, net, x, target, samples, noise, seed, batch_size, should_stop, settings)


def _smooth(method, net, x, target, samples, noise, seed, batch_size, should_stop,
            settings) -> Iterator[Progress[Attribution]]:
    n = x.shape[0]
    generator = torch.Generator(device=x.device).manual_seed(seed)
    spread = (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3))).view(-1, 1, 1, 1) * noise
    copy_target = _repeat_target(target, samples)
    # Each batch's noisy copies are made when it runs (all at once would hold n x samples images).
    owner = torch.arange(n).repeat_interleave(samples)
    total_map = per_channel = None
    counts = torch.zeros(n)
    first = None
    name = getattr(method, "__name__", "method")

    def average(ended: str) -> Attribution:
        shape = (-1,) + (1,) * (total_map.dim() - 1)
        seen = counts.clamp_min(1)
        return Attribution(
            map=total_map / seen.view(shape),
            per_channel=None if per_channel is None else per_channel / seen.view(-1, 1, 1, 1),
            method=f"smoothgrad({first.method or name})",
            extra={"samples": samples, "noise": noise, "seed": seed, **first.extra}, ended=ended)

    total = owner.numel()
    for start in range(0, total, batch_size):
        if start and should_stop is not None and should_stop():
            yield Progress(start, total, average("stopped"), done=True)
            return
        part = slice(start, start + batch_size)
        images = owner[part].to(x.device)
        noisy = x[images] + torch.randn((len(images), *x.shape[1:]), generator=generator, device=x.device) * spread[images]
        with noisy_copies():  # the noise is not clipped: as_batch lets these copies past [0, 1]
            result = method(net, noisy, target_for_images(copy_target, part), **settings)
        first = first or result
        if total_map is None:
            total_map = torch.zeros(n, *result.map.shape[1:], dtype=result.map.dtype)
        total_map.index_add_(0, owner[part], result.map.cpu())
        if result.per_channel is not None:
            if per_channel is None:
                per_channel = torch.zeros(n, *result.per_channel.shape[1:], dtype=result.per_channel.dtype)
            per_channel.index_add_(0, owner[part], result.per_channel.cpu())
        counts.index_add_(0, owner[part], torch.ones(len(owner[part])))
        done = part.stop >= total
        yield Progress(min(part.stop, total), total, average("done" if done else ""), done=done)


def smoothgrad(method: Callable[..., Attribution], net, image, target: Any, *, samples: int = 25,
               noise: float = 0.15, seed: int = 0, batch_size: int | None = None, **settings) -> Attribution:
    """Average `method`'s maps over `samples` noisy copies of each image.

    noise: the noise's standard deviation as a fraction of each image's value range
    (as in the paper); seed: the noise generator's seed (the global random state is
    left alone); batch_size: noisy copies per call of `method` (memory scales with it;
    None picks it from the memory budget for a forward+backward, `engine.memory`);
    other settings go to `method` (e.g. ``rule="deconvnet"`` for guided backprop).
    """
    return run_to_end(smoothgrad_iter(method, net, image, target, samples=samples, noise=noise, seed=seed,
                                      batch_size=batch_size, **settings))


def smoothed(method: Callable[..., Attribution], **defaults) -> Callable[..., Attribution]:
    """`method` wrapped in SmoothGrad, with the same call shape: ``smoothed(saliency)(net, image, target)``."""

    def run(net, image, target, **settings):
        return smoothgrad(method, net, image, target, **{**defaults, **settings})

    run.__name__ = f"smoothgrad_{getattr(method, '__name__', 'method')}"
    run.__doc__ = f"SmoothGrad over {getattr(method, '__name__', 'a method')} (see `smoothgrad`)."
    return run
