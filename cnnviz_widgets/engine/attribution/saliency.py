"""Saliency maps (Simonyan, Vedaldi & Zisserman 2014, "Deep Inside Convolutional
Networks: Visualising Image Classification Models and Saliency Maps",
arXiv:1312.6034). Lesson ``07_saliency_maps``.

The map is max over colour channels of |d score / d pixel|, where the score is the
target's: by default the class's logit (before the softmax, as in the paper: the
probability's gradient also depends on every other class); any `engine.targets`
target works. Pixels are the network's [0, 1] input, so the map is in "score per
unit of pixel value".

SmoothGrad is `engine.attribution.smoothgrad(saliency, net, image, target, ...)`: the
same map averaged over noisy copies of the image.
"""

from __future__ import annotations

from typing import Any, Iterator

from ..core.progress import Progress, StopCheck, run_to_end
from ..core.targets import Target
from .base import Attribution, batched_iter, input_gradient

__all__ = ["saliency", "saliency_iter"]


def _explain(net, x, target: Target) -> Attribution:
    gradient = input_gradient(net, x, target)
    return Attribution(map=gradient.abs().amax(dim=1).cpu(), per_channel=gradient.cpu(), method="saliency")


def saliency_iter(net, image, target: Any, *, batch_size: int | None = None,
                  should_stop: StopCheck = None) -> Iterator[Progress[Attribution]]:
    """`saliency`, `batch_size` images at a time (None: from the memory budget,
    `engine.memory`), yielding `Progress` after each batch."""
    return batched_iter(_explain, net, image, target, batch_size=batch_size, should_stop=should_stop,
                        what="saliency")


def saliency(net, image, target: Any, *, batch_size: int | None = None) -> Attribution:
    """Saliency of `target` (a class index or name, one per image, or a `Target`) for
    one image or a batch: ``.map`` N x H x W (max over channels of |gradient|),
    ``.per_channel`` the signed gradient N x 3 x H x W."""
    return run_to_end(saliency_iter(net, image, target, batch_size=batch_size))
