"""Lesson 14's second exercise, `style_loss`: the inputs it is tried on and the mistakes its
checker names. The reference is the engine's `engine.optimize.style.style_loss`."""

from __future__ import annotations

import torch

from ...engine.optimize.style import gram_matrix, style_loss
from ..checker import Case, Mistake
from ..fixtures import seeded
from ..kinds import NumericChecker
from ..result import failure
from .gram_matrix import gram_variant

__all__ = ["StyleLossChecker"]


def _loss(features, style_grams, weights, reduce="sum", weighted=True, layers="weights", power=2,
          normalise="chw"):
    names = list(features) if layers == "all" else list(weights)
    total = 0.0
    for layer in names:
        diff = gram_variant(features[layer], normalise=normalise) - style_grams[layer]
        term = diff.abs() ** power if power != "norm" else diff.norm()
        term = term.sum() if reduce == "sum" or power == "norm" else term.mean()
        total = total + (weights.get(layer, 1.0) if weighted else 1.0) * term
    return torch.as_tensor(total)


class StyleLossChecker(NumericChecker):
    name = "style_loss"
    arg_names = ("features", "style_grams", "weights")
    wanted = "a scalar (a 0-dimensional tensor)"
    rtol = 1e-5
    mistakes = (
        Mistake("mean", "a mean instead of a sum",
                "You averaged the squared differences of each Gram matrix; CS231n's style loss sums them "
                "(over all C x C entries), then weighs each layer's sum.",
                lambda c: _loss(*c.args, reduce="mean")),
        Mistake("no_weights", "the layer weights left out",
                "You added the layers' terms without their weights: multiply layer l's sum by `weights[l]`.",
                lambda c: _loss(*c.args, weighted=False)),
        Mistake("content_layer", "the content layer used for style",
                "You summed over every layer in `features`, the content layer too. The style layers are the "
                "keys of `weights`: loop over those.",
                lambda c: _loss(*c.args, layers="all")),
        Mistake("not_squared", "absolute differences instead of squared",
                "You summed |G - A|. The style loss squares the differences: `((G - A) ** 2).sum()`.",
                lambda c: _loss(*c.args, power=1)),
        Mistake("norm", "the norm, not its square",
                "You took `torch.norm(G - A)`, the square root of the sum of squares. The style loss is the "
                "sum of squares itself (the squared norm).",
                lambda c: _loss(*c.args, power="norm")),
        Mistake("no_normalisation", "Gram matrices not divided by C * H * W",
                "Your image's Gram matrices are F F^T, but the style's (`style_grams`) are divided by "
                "C * H * W: compute yours as `gram_matrix` does.",
                lambda c: _loss(*c.args, normalise="none")),
    )

    def build_cases(self):
        g = seeded(1415)

        def layers(shapes, seed_scale=1.0):
            return {name: (seed_scale * torch.randn(*shape, generator=g)).clamp_min(0) for name, shape in shapes}

        shapes = [("conv1", (1, 4, 8, 8)), ("conv2", (1, 6, 4, 4)), ("conv3", (1, 5, 2, 3))]
        cases = []
        for label, weights in [("features of conv1-conv3, style layers conv1 and conv2 (weights 1, 0.5); conv3 "
                                "is the content layer", {"conv1": 1.0, "conv2": 0.5}),
                               ("one style layer (weight 3)", {"conv2": 3.0}),
                               ("all three layers, weights 0.2, 1, 4", {"conv1": 0.2, "conv2": 1.0, "conv3": 4.0})]:
            features = layers(shapes)
            grams = {name: gram_matrix(f) for name, f in layers(shapes, 1.5).items()}
            cases.append(Case(label, (features, grams, weights)))
        for c in cases:
            features, grams, weights = c.args  # the engine's loss in float64, no slip
            c.expected = style_loss({k: v.double() for k, v in features.items()},
                                    {k: v.double() for k, v in grams.items()}, weights)
        return cases

    def generic(self, value, case):
        if value.dim() > 0 and value.numel() == 1:
            raise failure("not_scalar", "a 1-element tensor, not a scalar",
                          f"Your result has shape {tuple(value.shape)}; return a 0-dimensional tensor (a plain "
                          "`.sum()`), so that `.backward()` works on it.")
        return super().generic(value, case)
