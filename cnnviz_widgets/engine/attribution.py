"""What every attribution method returns, and SmoothGrad as a wrapper over any of them.

An attribution method is ``method(net, image, target, **settings) -> Attribution``
(saliency, guided backprop, Grad-CAM, Integrated Gradients, occlusion as a map).
`smoothgrad` wraps any of them, as Captum's ``NoiseTunnel`` does: the method runs
on noisy copies of the image and the maps are averaged (Smilkov et al. 2017,
*SmoothGrad: removing noise by adding noise*, arXiv:1706.03825). Lessons 07, 08, 13.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

import torch

from . import checks, memory
from .targets import ClassLogit, ClassProbability, Target, as_target

__all__ = ["Attribution", "smoothgrad", "smoothed"]


@dataclass
class Attribution:
    """An attribution map for a batch of images, on the CPU.

    map: N x H x W, what is drawn (for saliency max over channels of |gradient|).
    per_channel: N x 3 x H x W signed values before the reduction over colour
        channels (None where the method has none, e.g. Grad-CAM).
    method: the method's name; extra: what a method adds (Integrated Gradients'
        completeness gap, Grad-CAM's layer-resolution map, ...).
    """

    map: torch.Tensor
    per_channel: torch.Tensor | None = None
    method: str = ""
    extra: dict = field(default_factory=dict)


def _repeat_target(target: Target, n_images: int, samples: int) -> Target:
    if isinstance(target, (ClassLogit, ClassProbability)) and isinstance(target.index, tuple):
        return replace(target, index=tuple(i for i in target.index for _ in range(samples)))
    return target


def smoothgrad(method: Callable[..., Attribution], net, image, target: Any, *, samples: int = 25,
               noise: float = 0.15, seed: int = 0, batch_size: int | None = None, **settings) -> Attribution:
    """Average `method`'s maps over `samples` noisy copies of each image.

    noise: the noise's standard deviation as a fraction of each image's value range
    (as in the paper); seed: the noise generator's seed (the global random state is
    left alone); batch_size: noisy copies per call of `method` (memory scales with it;
    None picks it from the memory budget for a forward+backward, `engine.memory`).
    """
    samples = checks.integer(samples, "samples", low=1)
    noise = checks.fraction(noise, "noise")
    x = net.as_batch(image, what="SmoothGrad")
    if batch_size is None:
        batch_size = memory.batch_size(net, size=max(x.shape[-2:]), backward=True)
    batch_size = checks.integer(batch_size, "batch_size", low=1)
    n = x.shape[0]
    target = as_target(net, target, n)
    generator = torch.Generator(device=x.device).manual_seed(checks.integer(seed, "seed"))
    spread = (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3))).view(-1, 1, 1, 1) * noise
    copies = x.repeat_interleave(samples, dim=0)
    copy_spread = spread.repeat_interleave(samples, dim=0)
    copy_target = _repeat_target(target, n, samples)
    owner = torch.arange(n).repeat_interleave(samples)
    total_map = per_channel = None
    first = None
    for start in range(0, copies.shape[0], batch_size):
        part = slice(start, start + batch_size)
        noisy = copies[part] + torch.randn(copies[part].shape, generator=generator, device=x.device) * copy_spread[part]
        part_target = copy_target
        if isinstance(copy_target, (ClassLogit, ClassProbability)) and isinstance(copy_target.index, tuple):
            part_target = replace(copy_target, index=copy_target.index[part])
        result = method(net, noisy, part_target, **settings)
        first = first or result
        if total_map is None:
            total_map = torch.zeros(n, *result.map.shape[1:], dtype=result.map.dtype)
        total_map.index_add_(0, owner[part], result.map.cpu())
        if result.per_channel is not None:
            if per_channel is None:
                per_channel = torch.zeros(n, *result.per_channel.shape[1:], dtype=result.per_channel.dtype)
            per_channel.index_add_(0, owner[part], result.per_channel.cpu())
    name = getattr(method, "__name__", "method")
    return Attribution(
        map=total_map / samples,
        per_channel=None if per_channel is None else per_channel / samples,
        method=f"smoothgrad({first.method or name})",
        extra={"samples": samples, "noise": noise, "seed": seed},
    )


def smoothed(method: Callable[..., Attribution], **defaults) -> Callable[..., Attribution]:
    """`method` wrapped in SmoothGrad, with the same call shape: ``smoothed(saliency)(net, image, target)``."""

    def run(net, image, target, **settings):
        return smoothgrad(method, net, image, target, **{**defaults, **settings})

    run.__name__ = f"smoothgrad_{getattr(method, '__name__', 'method')}"
    run.__doc__ = f"SmoothGrad over {getattr(method, '__name__', 'a method')} (see `smoothgrad`)."
    return run
