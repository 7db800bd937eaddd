"""Objectives: what an image optimisation minimises, as small named terms.

Lessons 09-12 (`notebooks/09_gradient_ascent.ipynb` .. `12_feature_inversion.ipynb`).
An `Objective` is a weighted sum of terms; each term reads the outputs the loop
captured (a dict ``{layer: activation, "logits": logits}``) and returns a scalar
*loss* (lower is better, as in Lucent), so "maximise the class score" is the term
``-logit``. Terms compose: ``class_score(3) - 0.1 * channel("stage4", 5)``.

`maximise(target)` turns any `engine.targets.Target` (a class logit or probability,
a channel, a neuron) into an objective, so the optimisation lessons and the
attribution lessons mean the same thing by "the tabby logit" or "conv5 channel 3".
Objectives know no network: they name the layers they need (`layers`) and check
indices against the shapes they see, so a channel or class out of range is one
ValueError at the first step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..core import checks
from ..core.targets import ClassLogit, Neuron, Target

__all__ = [
    "Objective",
    "LOGITS",
    "maximise",
    "class_score",
    "channel",
    "activation_norm",
    "feature_match",
    "relative_error",
    "target_cross_entropy",
    "gram_similarity",
    "diversity",
]

LOGITS = "logits"  # the key under which the loop stores the network's output


@dataclass(frozen=True)
class _Term:
    name: str
    weight: float
    fn: Callable[[dict], torch.Tensor]
    layers: tuple[str, ...]


class Objective:
    """A weighted sum of named loss terms; call it on the captured outputs."""

    def __init__(self, terms: list[_Term]):
        self.terms = list(terms)

    @classmethod
    def term(cls, name: str, fn: Callable[[dict], torch.Tensor], layers: tuple[str, ...]) -> "Objective":
        return cls([_Term(name, 1.0, fn, tuple(layers))])

    @property
    def layers(self) -> list[str]:
        """Layers (and possibly ``"logits"``) the loop must capture, without repeats."""
        seen: list[str] = []
        for t in self.terms:
            for layer in t.layers:
                if layer not in seen:
                    seen.append(layer)
        return seen

    def __call__(self, outputs: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(total loss, {term name: weighted value})."""
        parts = {}
        total = None
        for t in self.terms:
            value = t.weight * t.fn(outputs)
            parts[t.name] = value
            total = value if total is None else total + value
        return total, parts

    def __add__(self, other: "Objective") -> "Objective":
        return Objective(self.terms + other.terms)

    def __mul__(self, w: float) -> "Objective":
        return Objective([_Term(t.name, t.weight * float(w), t.fn, t.layers) for t in self.terms])

    __rmul__ = __mul__

    def __neg__(self) -> "Objective":
        return self * -1.0

    def __sub__(self, other: "Objective") -> "Objective":
        return self + (-other)

    def __repr__(self) -> str:
        return " + ".join(f"{t.weight:g}*{t.name}" for t in self.terms)


def _activation(outputs: dict, layer: str) -> torch.Tensor:
    return outputs[layer]


def _check_class(index: int, logits: torch.Tensor) -> None:
    checks.index(index, "class index", logits.shape[-1], "the model has classes")


def maximise(target: Target, name: str | None = None) -> Objective:
    """Maximise a target's score (its mean over the batch): the loss is -score."""
    layer = target.layer if target.layer is not None else LOGITS

    def fn(out):
        output = out[layer]
        if isinstance(target, ClassLogit):
            for index in target.classes:
                _check_class(index, output)
        elif isinstance(target, Neuron):
            checks.channel(None, target.layer, target.channel, channels=output.shape[1])
        return -target(output).mean()

    return Objective.term(name or repr(target), fn, (layer,))


def class_score(target: int) -> Objective:
    """Maximise the class's logit (the score before softmax, as Simonyan et al. do:
    maximising the probability would also push the other classes down)."""
    index = checks.integer(target, "class index", low=0)
    return maximise(ClassLogit(index), f"class {index}")


def channel(layer: str, index: int) -> Objective:
    """Maximise the mean activation of one channel of a layer."""
    index = checks.integer(index, "channel", low=0)
    return maximise(Neuron(layer, index), f"{layer}:{index}")


def activation_norm(layer: str) -> Objective:
    """DeepDream: maximise the squared L2 norm of a layer's activations (per element,
    so the value does not grow with the image size)."""
    return Objective.term(f"{layer} norm", lambda out: -_activation(out, layer).pow(2).mean(), (layer,))


def relative_error(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||f - f0|| / ||f0||: the feature distance Mahendran & Vedaldi normalise by."""
    return (features - target).flatten().norm() / target.flatten().norm().clamp_min(1e-12)


def feature_match(layer: str, target: torch.Tensor) -> Objective:
    """Inversion: the squared relative distance of the layer's features to `target`."""
    target = target.detach()

    def fn(out):
        a = _activation(out, layer)
        if a.shape != target.shape:
            raise ValueError(f"layer {layer!r} gives features of shape {tuple(a.shape)}, the target has "
                             f"{tuple(target.shape)}: invert at the size the target was computed at.")
        return relative_error(a, target).pow(2)

    return Objective.term(f"{layer} match", fn, (layer,))


def target_cross_entropy(target: int) -> Objective:
    """Fooling: the cross-entropy of the logits against `target` (lower = more `target`)."""
    target = checks.integer(target, "class index", low=0)

    def fn(out):
        logits = out[LOGITS]
        _check_class(target, logits)
        labels = torch.full((logits.shape[0],), target, dtype=torch.long, device=logits.device)
        return F.cross_entropy(logits, labels)

    return Objective.term(f"CE to {target}", fn, (LOGITS,))


def gram_similarity(a: torch.Tensor) -> torch.Tensor:
    """The mean cosine similarity of the Gram matrices of a batch's activations
    (N x C x H x W), over all pairs of different images: 1 when the images excite the
    layer's channels together in the same way, lower the more their styles differ.
    A batch of one has no pair: 0."""
    n, c = a.shape[:2]
    if n < 2:
        return a.sum() * 0.0
    flat = a.reshape(n, c, -1)
    grams = torch.bmm(flat, flat.transpose(1, 2)).reshape(n, -1)
    grams = F.normalize(grams, dim=1, eps=1e-10)
    cosines = grams @ grams.T
    return (cosines.sum() - cosines.diagonal().sum()) / (n * (n - 1))


def diversity(layer: str) -> Objective:
    """Olah, Mordvintsev & Schubert 2017's diversity term: optimise a batch of images
    at once and penalise them for being alike, as the similarity (`gram_similarity`)
    of their Gram matrices at `layer` (a loss: lower = more diverse). Weigh it against
    the unit, e.g. ``channel("stage5", 3) + 0.5 * diversity("stage4")``."""
    return Objective.term(f"{layer} diversity", lambda out: gram_similarity(_activation(out, layer)), (layer,))
