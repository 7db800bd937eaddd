"""Lesson 14's checkers (`notebooks/14_style_transfer.ipynb`): `gram_matrix` and
`style_loss`, each with the mistakes it names.

Kept in a module of their own (registered in `checks.CHECKERS`), so the lesson's
checkers read in one place. The references are the model solutions (`solutions.py`);
tests/test_exercise_references.py shows they equal the engine's `engine.optimize.style`.
"""

from __future__ import annotations

import torch

from . import solutions as S
from .harness import (Case, Checker, Mistake, as_array, check_finite, check_shape, generic_numeric,
                      relative_difference, tensors_close)

__all__ = ["GramMatrix", "StyleLoss", "LESSON14_CHECKERS"]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class _Numeric(Checker):
    """Arrays of numbers, compared within `rtol` of the reference's scale."""

    rtol = 1e-5
    wanted = "an array"

    def convert(self, output, case, given):
        return as_array(output)

    def compare(self, value, expected, case):
        expected = as_array(expected)
        if value.shape != expected.shape:
            return f"Your result has shape {tuple(value.shape)}, the reference {tuple(expected.shape)}."
        return relative_difference(value, expected, self.rtol)

    def matches(self, value, wrong, case):
        wrong = as_array(wrong)
        return value.shape == wrong.shape and tensors_close(value, wrong, self.rtol)

    def generic(self, value, case):
        expected = as_array(case.expected)
        check_shape(value, expected, self.wanted)
        check_finite(value)
        return generic_numeric(value, expected, self.rtol)


# --- gram_matrix ---------------------------------------------------------------------------------

def _gram(features, flatten="channel", normalise="chw", transposed=False, batch=True):
    n, c, h, w = features.shape
    if not batch:  # every image's positions in one matrix
        flat = features.transpose(0, 1).reshape(c, n * h * w)[None]
    elif flatten == "channel":
        flat = features.reshape(n, c, h * w)
    else:  # reshaped as H*W rows of C values straight from the memory order: channels mixed up
        flat = features.reshape(n, h * w, c).transpose(1, 2)
    g = flat.transpose(1, 2) @ flat if transposed else flat @ flat.transpose(1, 2)
    return g / {"chw": c * h * w, "hw": h * w, "none": 1, "c": c}[normalise]


class GramMatrix(_Numeric):
    name = "gram_matrix"
    arg_names = ("features",)
    wanted = "N x C x C"
    mistakes = (
        Mistake("no_normalisation", "not divided by C * H * W",
                "Your Gram matrix is F F^T itself. Divide it by C * H * W (channels times positions), as "
                "CS231n's assignment does, so that its size does not depend on the image's size.",
                lambda c: _gram(c.args[0], normalise="none")),
        Mistake("positions_only", "divided by H * W only",
                "You divided by the number of positions H * W; divide by C * H * W (the channels too).",
                lambda c: _gram(c.args[0], normalise="hw")),
        Mistake("channels_only", "divided by C only",
                "You divided by the number of channels C; divide by C * H * W (the positions too).",
                lambda c: _gram(c.args[0], normalise="c")),
        Mistake("transposed", "the product the wrong way round (positions x positions)",
                "You computed F^T F, an (H*W) x (H*W) matrix of how alike two positions are. The Gram matrix "
                "compares channels: F F^T, with F of shape N x C x (H*W), gives N x C x C.",
                lambda c: _gram(c.args[0], transposed=True)),
        Mistake("not_flattened_per_channel", "the features not flattened per channel",
                "Your C x C matrix mixes channels: `features.reshape(N, H*W, C)` does not put one channel in "
                "each row (the memory order is channel first). Flatten each channel: "
                "`features.reshape(N, C, H*W)`.",
                lambda c: _gram(c.args[0], flatten="memory")),
        Mistake("batch_mixed", "the images of the batch mixed into one matrix",
                "You flattened the whole batch into one C x (N*H*W) matrix. Keep one Gram matrix per image: "
                "N x C x C (`torch.bmm`, or `@` on N x C x HW tensors).",
                lambda c: _gram(c.args[0], batch=False)),
    )

    def build_cases(self):
        g = _gen(1414)
        cases = [
            Case("random features, 1 x 4 x 5 x 7", (torch.randn(1, 4, 5, 7, generator=g),)),
            Case("random features, 2 x 3 x 6 x 4 (two images)", (torch.randn(2, 3, 6, 4, generator=g),)),
            Case("ReLU features, 1 x 16 x 8 x 8", (torch.randn(1, 16, 8, 8, generator=g).clamp_min(0),)),
        ]
        for c in cases:
            c.expected = S.gram_matrix(c.args[0]).double()
        return cases


# --- style_loss ----------------------------------------------------------------------------------

def _loss(features, style_grams, weights, reduce="sum", weighted=True, layers="weights", power=2,
          normalise="chw"):
    names = list(features) if layers == "all" else list(weights)
    total = 0.0
    for layer in names:
        diff = _gram(features[layer], normalise=normalise) - style_grams[layer]
        term = diff.abs() ** power if power != "norm" else diff.norm()
        term = term.sum() if reduce == "sum" or power == "norm" else term.mean()
        total = total + (weights.get(layer, 1.0) if weighted else 1.0) * term
    return torch.as_tensor(total)


class StyleLoss(_Numeric):
    name = "style_loss"
    arg_names = ("features", "style_grams", "weights")
    wanted = "a scalar (a 0-dimensional tensor)"
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
        g = _gen(1415)

        def layers(shapes, seed_scale=1.0):
            return {name: (seed_scale * torch.randn(*shape, generator=g)).clamp_min(0) for name, shape in shapes}

        shapes = [("conv1", (1, 4, 8, 8)), ("conv2", (1, 6, 4, 4)), ("conv3", (1, 5, 2, 3))]
        cases = []
        for label, weights in [("features of conv1-conv3, style layers conv1 and conv2 (weights 1, 0.5); conv3 "
                                "is the content layer", {"conv1": 1.0, "conv2": 0.5}),
                               ("one style layer (weight 3)", {"conv2": 3.0}),
                               ("all three layers, weights 0.2, 1, 4", {"conv1": 0.2, "conv2": 1.0, "conv3": 4.0})]:
            features = layers(shapes)
            grams = {name: S.gram_matrix(f) for name, f in layers(shapes, 1.5).items()}
            cases.append(Case(label, (features, grams, weights)))
        for c in cases:
            c.expected = S.style_loss(*c.args).double()
        return cases

    def generic(self, value, case):
        if value.dim() > 0 and value.numel() == 1:
            from .harness import failure

            raise failure("not_scalar", "a 1-element tensor, not a scalar",
                          f"Your result has shape {tuple(value.shape)}; return a 0-dimensional tensor (a plain "
                          "`.sum()`), so that `.backward()` works on it.")
        return super().generic(value, case)


LESSON14_CHECKERS: dict[str, type[Checker]] = {c.name: c for c in (GramMatrix, StyleLoss)}
