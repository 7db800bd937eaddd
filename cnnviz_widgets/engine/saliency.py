"""Saliency maps (Simonyan, Vedaldi & Zisserman 2014) and SmoothGrad (Smilkov et al.
2017). Lesson ``07_saliency_maps``.

The map is max over colour channels of |d score / d pixel|, where the score is the
class's logit (before the softmax, as in the paper: the probability's gradient also
depends on every other class). Pixels are the network's [0, 1] input, so the map is
in "logit per unit of pixel value".

SmoothGrad averages the same map over noisy copies of the image (noise standard
deviation = `noise` x the image's value range, as in the paper), drawn from a seeded
generator so a map is reproducible and the global random state is left alone.
"""

from __future__ import annotations

from typing import Sequence

import torch

from . import memory
from .models import Network

__all__ = ["saliency", "gradient_map", "targets_for"]


def targets_for(net: Network, target: int | str | Sequence[int | str], n: int) -> torch.Tensor:
    """One class index per image: a single class for all, or a list with one each."""
    if isinstance(target, (list, tuple)) or (isinstance(target, torch.Tensor) and target.dim() > 0):
        items = list(target.tolist() if isinstance(target, torch.Tensor) else target)
        if len(items) != n:
            raise ValueError(f"{len(items)} targets for {n} images: give one class, or one per image")
    else:
        items = [target.item() if isinstance(target, torch.Tensor) else target] * n
    return torch.tensor([net.class_index(t) for t in items], dtype=torch.long, device=net.device)


def gradient_map(net: Network, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """d logit[target] / d x for each image: N x 3 x H x W (the raw gradient)."""
    with net.guard(), torch.enable_grad():
        x = net.gradient_input(x)
        logits = net(x)
        # Images are independent, so one backward of the sum gives every image its own gradient.
        score = logits.gather(1, targets.view(-1, 1)).sum()
        (grad,) = torch.autograd.grad(score, x)
    return grad.contiguous()  # NCHW for the caller, whatever layout the pass ran in


def saliency(net: Network, x, target: int | str | Sequence[int | str], smooth: int = 0,
             noise: float = 0.15, seed: int = 0, batch_size: int | None = None) -> torch.Tensor:
    """Saliency of `target` for a batch of images: N x H x W, max over channels of |gradient|.

    smooth: 0 for the plain map; k > 0 for SmoothGrad over k noisy copies per image,
    noise: their standard deviation as a fraction of the image's value range; seed: the
    noise generator's seed. batch_size: images (or noisy copies) per forward+backward;
    None picks it from the memory budget (`engine.memory`).
    """
    x = net.as_batch(x, what="saliency")
    targets = targets_for(net, target, x.shape[0])
    if isinstance(smooth, bool) or not isinstance(smooth, int) or smooth < 0:
        raise ValueError(f"smooth is a number of noisy samples (0 for none), not {smooth!r}")
    if not 0.0 <= float(noise) <= 1.0:
        raise ValueError(f"noise is a fraction of the pixel range in [0, 1], not {noise}")
    if batch_size is None:
        batch_size = memory.batch_size(net, size=max(x.shape[-2:]), backward=True)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
    if smooth == 0:
        return torch.cat([gradient_map(net, x[s:s + batch_size], targets[s:s + batch_size]).abs().amax(dim=1)
                          for s in range(0, x.shape[0], batch_size)])
    generator = torch.Generator(device=x.device).manual_seed(int(seed))
    spread = (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3))).view(-1, 1, 1, 1) * float(noise)
    total = torch.zeros(x.shape[0], *x.shape[2:], device=x.device)
    # Noisy copies go through in batches; each image keeps its own target.
    copies = x.repeat_interleave(smooth, dim=0)
    copy_targets = targets.repeat_interleave(smooth)
    copy_spread = spread.repeat_interleave(smooth, dim=0)
    owner = torch.arange(x.shape[0], device=x.device).repeat_interleave(smooth)
    for start in range(0, copies.shape[0], batch_size):
        part = slice(start, start + batch_size)
        noisy = copies[part] + torch.randn(copies[part].shape, generator=generator, device=x.device) * copy_spread[part]
        maps = gradient_map(net, noisy, copy_targets[part]).abs().amax(dim=1)
        total.index_add_(0, owner[part], maps)
    return total / smooth
