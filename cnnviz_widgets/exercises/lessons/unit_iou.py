"""Lesson 15's exercise, `unit_iou`: `unit_iou`, one unit's IoU with one concept over a dataset, as
network dissection measures it (Bau et al. 2017): the threshold taken over the whole
dataset, the IoU summed over the whole dataset.

The checker's inputs are the shapes' masks with maps that fire on them, and random maps;
an answer may differ from the reference by one pixel of the threshold (a quantile
interpolated, ``>=`` for ``>``), so answers are compared within 2% of the IoU.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..checker import Case, Checker, Mistake
from ..comparison import as_array, check_finite, check_shape, tensors_close
from ..fixtures import seeded

__all__ = ["UnitIouChecker"]

RTOL = 0.02


def _iou(maps, masks, quantile, per_image_threshold=False, mean_of_images=False, bottom=False,
         over="union"):
    """The answer with one of the mistakes switched on (all off: the reference)."""
    n = maps.shape[0]
    flat = maps.reshape(n, -1) if per_image_threshold else maps.reshape(1, -1)
    share = 1 - quantile if bottom else quantile
    k = max(1, math.ceil(share * flat.shape[1]))
    thresholds = flat.topk(k, dim=1).values[:, -1]
    on = (maps.reshape(n, -1) > (thresholds if per_image_threshold else thresholds.expand(n))[:, None])
    masks = masks.reshape(n, -1)
    inter = (on & masks).sum(1).double()
    sizes = {"union": (on | masks).sum(1), "mask": masks.sum(1), "on": on.sum(1),
             "sum": on.sum(1) + masks.sum(1)}
    denominator = sizes[over].double()
    if mean_of_images:
        per = torch.where(denominator > 0, inter / denominator.clamp(min=1), torch.zeros_like(inter))
        return per.mean()
    total = denominator.sum()
    return inter.sum() / total if total > 0 else torch.tensor(0.0, dtype=torch.float64)


def _blurred(mask: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A unit that fires on the object, blurred and noisy, as upsampled maps look."""
    m = mask.float()[None, None]
    kernel = torch.ones(1, 1, 5, 5) / 25
    smooth = torch.nn.functional.conv2d(m, kernel, padding=2)[0, 0]
    return (smooth + 0.3 * torch.rand(smooth.shape, generator=generator)).clamp(min=0)


class UnitIouChecker(Checker):
    name = "unit_iou"
    arg_names = ("maps", "masks", "quantile")
    mistakes = (
        Mistake("per_image_threshold", "a threshold for each image",
                "You took the top quantile of each image on its own. Dissection takes one threshold per "
                "unit over the whole dataset: an image where the unit is silent should stay dark. Flatten "
                "all N x H x W values together, `maps.flatten()`.",
                lambda c: _iou(*c.args, per_image_threshold=True)),
        Mistake("mean_of_images", "the mean of per-image IoUs",
                "You averaged one IoU per image. Dissection sums the intersections over the dataset and the "
                "unions over the dataset, then divides once: `(on & masks).sum() / (on | masks).sum()`.",
                lambda c: _iou(*c.args, mean_of_images=True)),
        Mistake("bottom_quantile", "the threshold from the wrong end",
                "Your threshold keeps the weakest values: most pixels are on. The unit is on where it is in "
                "its top `quantile` of values, so the threshold is near the largest values (the k-th largest, "
                "k = ceil(quantile * N * H * W)).",
                lambda c: _iou(*c.args, bottom=True)),
        Mistake("over_mask", "divided by the mask's area instead of the union",
                "You divided the intersection by the area of the mask (that is recall). IoU divides by the "
                "union, `(on | masks).sum()`.",
                lambda c: _iou(*c.args, over="mask")),
        Mistake("over_on", "divided by the unit's area instead of the union",
                "You divided the intersection by the area where the unit is on (that is precision). IoU "
                "divides by the union, `(on | masks).sum()`.",
                lambda c: _iou(*c.args, over="on")),
        Mistake("sum_not_union", "the two areas added instead of their union",
                "You divided by |M| + |L|: the overlap is counted twice. The union is |M| + |L| - |M ∩ L|, "
                "or simply `(on | masks).sum()`.",
                lambda c: _iou(*c.args, over="sum")),
    )

    def build_cases(self):
        from ...engine.zoo.data import load_dataset  # deferred: the shapes are drawn on first use only

        data = load_dataset("shapes", n=12, seed=2024)
        g = seeded(1515)
        masks = torch.from_numpy(np.array(data.arrays()[2]))
        fires = torch.stack([_blurred(m, g) for m in masks])
        # One image where the unit fires five times harder: a threshold per image would miss it.
        loud = fires.clone()
        loud[3] *= 5
        rect = torch.zeros(6, 24, 40, dtype=torch.bool)
        for i in range(6):
            top, left = int(torch.randint(0, 12, (1,), generator=g)), int(torch.randint(0, 20, (1,), generator=g))
            rect[i, top:top + 10, left:left + 16] = True
        cases = [
            Case("12 shapes' masks (64 x 64), a unit that fires on the objects, quantile 0.05",
                 (fires, masks, 0.05)),
            Case("the same with the unit five times stronger on image 3, quantile 0.02", (loud, masks, 0.02)),
            Case("random maps with rectangles (6 x 24 x 40, wider than high), quantile 0.1",
                 (torch.rand(6, 24, 40, generator=g) + 0.5 * rect, rect, 0.1)),
        ]
        for c in cases:
            c.expected = _iou(*c.args)  # the checker's own formula, every mistake switched off
        return cases

    def convert(self, output, case, given):
        return as_array(output)

    def compare(self, value, expected, case):
        expected = as_array(expected)
        if value.numel() != 1:
            return f"Your result has {value.numel()} numbers; the IoU is one number."
        if tensors_close(value.reshape(()), expected.reshape(()), RTOL):
            return None
        return (f"Your IoU is {float(value.reshape(())):.4f}, the reference {float(expected):.4f} "
                f"(the tolerance is {RTOL:g} of it).")

    def matches(self, value, wrong, case):
        return value.numel() == 1 and tensors_close(value.reshape(()), as_array(wrong).reshape(()), RTOL)

    def generic(self, value, case):
        check_shape(value.reshape(-1)[:1] if value.numel() else value, torch.zeros(1), "one number")
        check_finite(value)
        return None
