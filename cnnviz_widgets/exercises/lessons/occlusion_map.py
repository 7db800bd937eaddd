"""Lesson 06's exercise, `occlusion_map`: the inputs it is tried on and the mistakes its checker names."""

from __future__ import annotations

import torch

from ..checker import Case, Mistake
from ..fixtures import shapes_net, effnet, shape_image, sample_photo, ranked_classes, class_label
from ..kinds import NumericChecker

__all__ = ["OcclusionMapChecker"]


def _occlude(net, image, target, patch, stride, fill=0.5, score="prob", cumulative=False, last=True):
    """What an occlusion loop with one of the known slips computes (all positions in one batch)."""
    h, w = image.shape[-2:]
    end = 1 if last else 0
    tops, lefts = range(0, h - patch + end, stride), range(0, w - patch + end, stride)
    value = image.mean() if fill == "mean" else fill
    copies, x = [], image.clone()
    for top in tops:
        for left in lefts:
            if not cumulative:
                x = image.clone()
            x[:, :, top:top + patch, left:left + patch] = value
            copies.append(x.clone() if cumulative else x)
    with torch.no_grad():
        logits = torch.cat([net(torch.cat(copies[i:i + 64])) for i in range(0, len(copies), 64)])
    scores = {"prob": logits.softmax(1), "logit": logits, "log_prob": logits.log_softmax(1)}[score][:, target]
    return scores.double().cpu().reshape(len(tops), len(lefts))


class OcclusionMapChecker(NumericChecker):
    name = "occlusion_map"
    models = ("shapes", "efficientnet_lite0")
    arg_names = ("net", "image", "target", "patch", "stride")
    wanted = "rows x cols (one probability per patch position)"
    rtol = 1e-4
    mistakes = (
        Mistake("logit", "the logit instead of the probability",
                "Your map holds the target's logit (the score before the softmax). The exercise maps its "
                "probability: `net(x).softmax(dim=1)[0, target]`.",
                lambda c: _occlude(*c.args, score="logit")),
        Mistake("log_prob", "the log-probability instead of the probability",
                "Your map holds log P(target) (log_softmax). Take the softmax itself.",
                lambda c: _occlude(*c.args, score="log_prob")),
        Mistake("black", "a black patch instead of a grey one",
                "Your patch is black (0). Zeiler and Fergus used grey: fill it with 0.5, the middle of the "
                "[0, 1] pixel range.",
                lambda c: _occlude(*c.args, fill=0.0)),
        Mistake("mean_fill", "the image's mean colour instead of grey",
                "Your patch is filled with the image's mean; the exercise asks for plain grey, 0.5.",
                lambda c: _occlude(*c.args, fill="mean")),
        Mistake("cumulative", "the patches add up: the image is never restored",
                "Your patches accumulate: each position keeps the grey squares of the positions before it, so "
                "the map darkens towards the end. Start every position from a fresh copy, "
                "`x = image.clone()`, inside the loop.",
                lambda c: _occlude(*c.args, cumulative=True)),
        Mistake("drop", "the drop in probability instead of the probability",
                "Your map holds how much the probability *fell* (clean minus occluded). The exercise maps "
                "the probability itself.",
                lambda c: _clean_prob(c) - _occlude(*c.args)),
        Mistake("predicted_class", "the predicted class instead of `target`",
                "Your map follows the class the network predicts, not the `target` you were given.",
                lambda c: _occlude(c.args[0], c.args[1], c.extra["predicted"], *c.args[3:])),
        Mistake("missing_last", "the last row and column of positions are missing",
                "Your map is one position short in each direction: the last top-left corner that fits is "
                "height - patch, so the range must include it: `range(0, height - patch + 1, stride)`.",
                lambda c: _occlude(*c.args, last=False)),
    )

    def build_cases(self):
        shapes, eff = shapes_net(), effnet()
        a, label_a, name_a = shape_image(1, shapes.device)
        b, label_b, _ = shape_image(6, shapes.device)
        other = next(i for i in ranked_classes(shapes, b) if i != label_b)
        photo = sample_photo("coffee", 64, 96, eff.device)
        cases = [
            Case(f"the shapes net, a {name_a} (64 x 64), target {class_label(shapes, label_a)}, patch 16, stride 8",
                 (shapes, a, label_a, 16, 8)),
            Case(f"the shapes net, another shape, target {class_label(shapes, other)} (not the predicted class), "
                 "patch 20, stride 11", (shapes, b, other, 20, 11)),
            Case("EfficientNet-Lite0, the coffee photo at 64 x 96 (wider than high), its predicted class, "
                 "patch 32, stride 16", (eff, photo, ranked_classes(eff, photo)[0], 32, 16)),
        ]
        for c in cases:
            c.networks = (c.args[0],)
            c.extra["predicted"] = ranked_classes(c.args[0], c.args[1])[0]
            c.expected = _occlude(*c.args)  # the checker's own loop, no slip
        return cases


def _clean_prob(case):
    with torch.no_grad():
        return float(case.args[0](case.args[1]).softmax(1)[0, case.args[2]])
