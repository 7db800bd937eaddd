"""Batch sizes from a memory budget, not constants.

A learner on Binder has 1-2 GB, and the imports and a model already hold most of it
(the CUDA build of torch alone takes about 0.65 GB, EfficientNet-Lite0 and timm another
0.25 GB). So a technique that batches images asks how many fit in a *working budget*:
what one image costs it, measured once per network, input size and kind of pass, into
the budget (default 128 MiB; ``$CNNVIZ_MEMORY_BUDGET``, e.g. ``512MB`` or ``1GB``).
Why 128 MiB: a lesson's kernel holds about 0.95 GB before any technique runs, and the
course promises a peak of at most 1.3 GB; the rest of the 350 MB goes to the lesson's
pictures, an app computing in its thread at the same time, and the allocator's slack
(freed memory that is not handed back: a kernel's peak creeps up by tens of MB a cell).
Measured with 192 MiB, lesson 07 peaked at 1.30 GB; with 128 MiB, 1.25 GB.

    batch_size(net, backward=True)            # images per forward+backward at the net's size
    batch_size_for(bytes_per_image, budget)   # the arithmetic alone

What one image costs:

* a forward and backward (saliency and SmoothGrad, in `saliency` and `attribution`)
  keeps every tensor autograd saves for the backward: counted exactly with
  ``torch.autograd.graph.saved_tensors_hooks`` as the difference between a batch of two
  and a batch of one (so the weights, saved once per batch, are not counted), times 1.25
  for the gradients alive during the backward (measured: EfficientNet-Lite0 at 224 px
  saves 75 MB per image, and its peak grows by 89 MB per image);
* a forward without gradients (occlusion's batches of occluded copies) holds only a few layer outputs
  at a time: 1.5 x the four largest, per image (measured: EfficientNet-Lite0 at 224 px,
  15.5 MB for the four, and its peak grows by 19-24 MB per image).

Lessons 06, 07 and 08 rely on this to stay under 1.3 GB (``benchmarks/bench_lessons.py``).
"""

from __future__ import annotations

import os
import re
import torch

from . import checks
from .cache import cache_for

__all__ = ["DEFAULT_BUDGET", "memory_budget", "parse_bytes", "batch_size_for", "image_cost", "batch_size"]

DEFAULT_BUDGET = 128 * 2**20
BACKWARD_OVERHEAD = 1.25  # gradients alive during the backward, over the saved tensors
FORWARD_OVERHEAD = 1.5  # a forward's live tensors over its four largest layer outputs
_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": 2**20, "mb": 2**20, "mib": 2**20,
          "g": 2**30, "gb": 2**30, "gib": 2**30}


def parse_bytes(text: str | int) -> int:
    """'512MB', '1.5 GB', '300m' or a number of bytes -> bytes (powers of 1024)."""
    if checks.is_integer(text):
        value = checks.integer(text, "a memory size")
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
        if not m or m.group(2).lower() not in _UNITS:
            raise ValueError(f"a memory size is a number with an optional unit (KB, MB, GB), not {text!r}")
        value = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if value <= 0:
        raise ValueError(f"a memory size must be positive, not {text!r}")
    return value


def memory_budget() -> int:
    """The working budget in bytes: ``$CNNVIZ_MEMORY_BUDGET`` if set, else 128 MiB."""
    text = os.environ.get("CNNVIZ_MEMORY_BUDGET", "").strip()
    if not text:
        return DEFAULT_BUDGET
    try:
        return parse_bytes(text)
    except ValueError as e:
        raise ValueError(f"$CNNVIZ_MEMORY_BUDGET: {e}") from None


def batch_size_for(bytes_per_image: int, budget: int | None = None, most: int = 64) -> int:
    """How many images of `bytes_per_image` fit in `budget` (default `memory_budget()`):
    at least 1 (one image always runs), at most `most`."""
    if bytes_per_image <= 0:
        raise ValueError(f"bytes_per_image must be positive, not {bytes_per_image}")
    most = checks.integer(most, "most", low=1)
    budget = memory_budget() if budget is None else parse_bytes(budget)
    return max(1, min(most, int(budget // bytes_per_image)))


def _saved_bytes(net, n: int, size: int) -> int:
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()  # a tensor saved twice counts once
        return t

    x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0)).to(net.device)
    with net.guard(), torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(net.gradient_input(x))
    return sum(storages.values())


def _largest_outputs(net, size: int, count: int = 4) -> int:
    sizes: list[int] = []
    leaves = [m for m in net.modules() if next(m.children(), None) is None]

    def hook(_m, _inp, out):
        if isinstance(out, torch.Tensor):
            sizes.append(out.numel() * out.element_size())

    with net.guard():
        handles = [m.register_forward_hook(hook) for m in leaves]
        try:
            with torch.no_grad():
                net(torch.zeros(1, 3, size, size, device=net.device))
        finally:
            for h in handles:
                h.remove()
    return sum(sorted(sizes, reverse=True)[:count])


def image_cost(net, size: int | None = None, backward: bool = False) -> int:
    """Bytes one image of `size` x `size` pixels (default: the net's input size) costs in
    a forward pass of `net`, with its backward if `backward`. Measured once, then kept in
    the network's cache (`engine.core.cache`)."""
    size = net.input_size if size is None else checks.integer(size, "size", low=1)
    key = (size, bool(backward))
    known = cache_for(net).part("image costs")
    cost = known.get(key)  # a dict's get and setdefault are atomic: no lock of its own
    if cost is None:
        if backward:
            cost = int(BACKWARD_OVERHEAD * max(1, _saved_bytes(net, 2, size) - _saved_bytes(net, 1, size)))
        else:
            cost = max(1, int(FORWARD_OVERHEAD * _largest_outputs(net, size)))
        cost = known.setdefault(key, cost)
    return cost


def batch_size(net, *, size: int | None = None, backward: bool = False, budget: int | str | None = None,
               most: int = 64) -> int:
    """Images per pass of `net` that fit in the working budget (see the module's docstring)."""
    return batch_size_for(image_cost(net, size, backward), budget, most)
