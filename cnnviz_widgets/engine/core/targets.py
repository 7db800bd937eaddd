"""What a technique explains or maximises, as a small callable (pytorch-grad-cam's
``ClassifierOutputTarget`` idea).

A target maps the output of one layer (``target.layer``; ``None`` means the logits)
for a batch to one score per image: ``target(output) -> N``. Occlusion, saliency,
guided backprop, Grad-CAM, Integrated Gradients and the optimisation objectives all
take the same targets, so "the tabby logit", "the tabby probability" and "conv5
channel 3 at (6, 6)" mean the same thing everywhere.

Techniques accept a class index, a class name, a list with one class per image, a
`Target`, or None (the class the model predicts for each image); `as_target(net, target)`
turns any of these into a `Target` and checks it against the network once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from . import checks

__all__ = ["Target", "ClassLogit", "ClassProbability", "Neuron", "as_target", "predicted_classes", "score"]


class Target:
    """One score per image from the output of ``self.layer`` (None: the logits)."""

    def __call__(self, output: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def bind(self, net) -> "Target":
        """Check this target against `net` (class range, layer, channel); returns self."""
        return self


def _per_image(value: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    if classes.dim() == 0:
        return value[:, int(classes)]
    if classes.numel() != value.shape[0]:
        raise ValueError(f"{classes.numel()} targets for {value.shape[0]} images: give one class, or one per image")
    return value.gather(1, classes.to(value.device).view(-1, 1))[:, 0]


@dataclass(frozen=True)
class ClassLogit(Target):
    """The logit (score before the softmax) of one class, or of one class per image."""

    index: int | tuple[int, ...]
    layer = None  # reads the logits

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return _per_image(output, torch.as_tensor(self.index))

    @property
    def classes(self) -> list[int]:
        return list(self.index) if isinstance(self.index, tuple) else [self.index]


@dataclass(frozen=True)
class ClassProbability(Target):
    """The softmax probability of one class (or one per image)."""

    index: int | tuple[int, ...]
    layer = None  # reads the logits

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return _per_image(output.softmax(dim=1), torch.as_tensor(self.index))

    @property
    def classes(self) -> list[int]:
        return list(self.index) if isinstance(self.index, tuple) else [self.index]


@dataclass(frozen=True)
class Neuron(Target):
    """Channel `channel` of `layer`: at (row, col) when `position` is given, otherwise its
    mean over the map (what channel visualisation maximises)."""

    layer: str
    channel: int
    position: tuple[int, int] | None = None

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        values = output[:, self.channel]
        if self.position is None:
            return values.flatten(1).mean(dim=1) if values.dim() > 1 else values
        row, col = self.position
        return values[:, row, col]

    def bind(self, net) -> "Neuron":
        shape = net.layer_shape(self.layer)
        checks.channel(net, self.layer, self.channel, channels=shape[0])
        if self.position is not None:
            checks.position(self.position, tuple(shape[1:3]))
        return self


def predicted_classes(net, x: torch.Tensor) -> list[int]:
    """The model's top-1 class index for each image of the batch `x` (one forward, no gradient)."""
    with torch.no_grad(), net.guard():
        return [int(i) for i in net(x).argmax(-1)]


def as_target(net, target: Any, n: int | None = None, *, image: torch.Tensor | None = None) -> Target:
    """A class index or name, a list of them (one per image), a `Target`, or None -> a checked `Target`.

    `n`: the number of images, to check a per-image list against. None means the class
    the model predicts for each image of `image` (the batch, as `Network.as_batch` gives
    it): the logit of that class, one per image (a single image: a plain index)."""
    checks.network(net)
    if target is None:
        if image is None:
            raise ValueError("target is None but no image was given to predict the class of: "
                             "give a class index or name, or a Target")
        predicted = predicted_classes(net, image)
        return ClassLogit(predicted[0] if len(predicted) == 1 else tuple(predicted))
    if isinstance(target, Target):
        return target.bind(net)
    if isinstance(target, torch.Tensor) and target.dim() > 0 or isinstance(target, (list, tuple, np.ndarray)):
        items: Sequence = target.tolist() if hasattr(target, "tolist") else list(target)
        if n is not None and len(items) != n:
            raise ValueError(f"{len(items)} targets for {n} images: give one class, or one per image")
        return ClassLogit(tuple(net.class_index(_plain(t)) for t in items))
    return ClassLogit(net.class_index(_plain(target)))


def _plain(t: Any):
    if isinstance(t, torch.Tensor):
        return t.item()
    if isinstance(t, np.generic):
        return t.item()
    return t


def score(net, x: torch.Tensor, target: Target) -> torch.Tensor:
    """One forward of `x` (as far as the target's layer) -> one score per image."""
    output = net(x) if target.layer is None else net.forward_to(x, target.layer)
    return target(output)
