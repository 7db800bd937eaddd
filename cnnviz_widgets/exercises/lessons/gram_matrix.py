"""Lesson 14's first exercise, `gram_matrix`: the inputs it is tried on and the mistakes its
checker names. The reference is the engine's `engine.optimize.style.gram_matrix`."""

from __future__ import annotations

import torch

from ...engine.optimize.style import gram_matrix
from ..checker import Case, Mistake
from ..fixtures import seeded
from ..kinds import NumericChecker

__all__ = ["GramMatrixChecker"]


def gram_variant(features, flatten="channel", normalise="chw", transposed=False, batch=True):
    """The Gram matrix with one of the mistakes switched on (all off: the right one); style_loss's
    mistakes use it too."""
    n, c, h, w = features.shape
    if not batch:  # every image's positions in one matrix
        flat = features.transpose(0, 1).reshape(c, n * h * w)[None]
    elif flatten == "channel":
        flat = features.reshape(n, c, h * w)
    else:  # reshaped as H*W rows of C values straight from the memory order: channels mixed up
        flat = features.reshape(n, h * w, c).transpose(1, 2)
    g = flat.transpose(1, 2) @ flat if transposed else flat @ flat.transpose(1, 2)
    return g / {"chw": c * h * w, "hw": h * w, "none": 1, "c": c}[normalise]


class GramMatrixChecker(NumericChecker):
    name = "gram_matrix"
    arg_names = ("features",)
    wanted = "N x C x C"
    rtol = 1e-5
    mistakes = (
        Mistake("no_normalisation", "not divided by C * H * W",
                "Your Gram matrix is F F^T itself. Divide it by C * H * W (channels times positions), as "
                "CS231n's assignment does, so that its size does not depend on the image's size.",
                lambda c: gram_variant(c.args[0], normalise="none")),
        Mistake("positions_only", "divided by H * W only",
                "You divided by the number of positions H * W; divide by C * H * W (the channels too).",
                lambda c: gram_variant(c.args[0], normalise="hw")),
        Mistake("channels_only", "divided by C only",
                "You divided by the number of channels C; divide by C * H * W (the positions too).",
                lambda c: gram_variant(c.args[0], normalise="c")),
        Mistake("transposed", "the product the wrong way round (positions x positions)",
                "You computed F^T F, an (H*W) x (H*W) matrix of how alike two positions are. The Gram matrix "
                "compares channels: F F^T, with F of shape N x C x (H*W), gives N x C x C.",
                lambda c: gram_variant(c.args[0], transposed=True)),
        Mistake("not_flattened_per_channel", "the features not flattened per channel",
                "Your C x C matrix mixes channels: `features.reshape(N, H*W, C)` does not put one channel in "
                "each row (the memory order is channel first). Flatten each channel: "
                "`features.reshape(N, C, H*W)`.",
                lambda c: gram_variant(c.args[0], flatten="memory")),
        Mistake("batch_mixed", "the images of the batch mixed into one matrix",
                "You flattened the whole batch into one C x (N*H*W) matrix. Keep one Gram matrix per image: "
                "N x C x C (`torch.bmm`, or `@` on N x C x HW tensors).",
                lambda c: gram_variant(c.args[0], batch=False)),
    )

    def build_cases(self):
        g = seeded(1414)
        cases = [
            Case("random features, 1 x 4 x 5 x 7", (torch.randn(1, 4, 5, 7, generator=g),)),
            Case("random features, 2 x 3 x 6 x 4 (two images)", (torch.randn(2, 3, 6, 4, generator=g),)),
            Case("ReLU features, 1 x 16 x 8 x 8", (torch.randn(1, 16, 8, 8, generator=g).clamp_min(0),)),
        ]
        for c in cases:
            c.expected = gram_matrix(c.args[0].double())  # the engine's, no slip
        return cases
