"""Lesson 04's exercise, `top_channels`: the inputs it is tried on and the mistakes its checker names."""

from __future__ import annotations

import torch

from ...engine.inspect.activations import top_channels as engine_top_channels
from ..checker import Case, Mistake
from ..fixtures import shapes_net, effnet, shape_image, sample_photo, seeded
from ..kinds import IndexChecker

__all__ = ["TopChannelsChecker"]


class TopChannelsChecker(IndexChecker):
    name = "top_channels"
    models = ("shapes", "efficientnet_lite0")
    arg_names = ("acts", "k")
    what = "channel indices"
    mistakes = (
        Mistake("max_not_mean", "ranked by the largest value, not the mean",
                "You ranked channels by their single strongest position (max). The exercise ranks them by "
                "their mean activation over all H x W positions: a channel that is moderately active "
                "everywhere beats one with a single bright spot.",
                lambda c: c.args[0].amax(dim=(1, 2)).argsort(descending=True)[: c.args[1]]),
        Mistake("weakest", "the weakest channels, not the strongest",
                "You returned the channels with the *smallest* mean activation. Sort in descending order.",
                lambda c: c.args[0].mean(dim=(1, 2)).argsort()[: c.args[1]]),
        Mistake("abs_mean", "ranked by the mean of |activation|",
                "You ranked by the mean of the absolute values. Activations can be negative (EfficientNet's "
                "stages end without a ReLU): rank by the plain mean.",
                lambda c: c.args[0].abs().mean(dim=(1, 2)).argsort(descending=True)[: c.args[1]]),
        Mistake("positions", "ranked positions, not channels",
                "You averaged over the channels and ranked the positions (the mean over dim 0). Average "
                "over the positions instead, `acts.mean(dim=(1, 2))`: one number per channel.",
                lambda c: c.args[0].mean(dim=0).flatten().argsort(descending=True)[: c.args[1]]),
        Mistake("wrong_axis", "averaged over the wrong dimensions",
                "You averaged over the channel dimension and one spatial dimension. acts is C x H x W: "
                "average over dims (1, 2) for one number per channel.",
                lambda c: c.args[0].mean(dim=(0, 2)).argsort(descending=True)[: c.args[1]]),
    )

    def build_cases(self):
        eff, shapes = effnet(), shapes_net()
        with torch.no_grad():
            stage6 = eff.forward_to(sample_photo("cat", 96, 96, eff.device), "stage6")[0].cpu()
            conv5 = shapes.forward_to(shape_image(3, shapes.device)[0], "conv5")[0].cpu()
        g = seeded(404)
        spiky = torch.randn(7, 3, 5, generator=g) * 0.3
        spiky[4, 1, 2] = 9.0       # one bright spot: the largest max, a middling mean
        spiky[1] -= 2.0            # strongly negative: the largest mean |a|
        cases = [
            Case("EfficientNet-Lite0 stage6 activations of the cat photo at 96 px (192 x 3 x 3), k = 5", (stage6, 5)),
            Case("shapes net conv5 activations of a shape (64 x 4 x 4), k = 3", (conv5, 3)),
            Case("random 7 x 3 x 5 activations with one bright spot and one negative channel, k = 2", (spiky, 2)),
            Case("random 10 x 1 x 1 activations (a vector layer), k = 10 (all)", (torch.randn(10, 1, 1, generator=g), 10)),
        ]
        for c in cases:
            c.expected = [int(i) for i in engine_top_channels(*c.args)]
        return cases

    def scores(self, case):
        return case.args[0].double().mean(dim=(1, 2))
