"""Lesson 13's exercise, `deletion_curve`: the inputs it is tried on and the mistakes its checker names."""

from __future__ import annotations

import numpy as np
import torch

from ..checker import Case, Mistake
from ..fixtures import shapes_net, effnet, shapes_items, shape_image, sample_photo, ranked_classes, class_label, seeded
from ..kinds import NumericChecker

__all__ = ["DeletionCurveChecker"]


def _delete(net, image, target, heat, steps, descending=True, score="prob", channels=(0, 1, 2), fill=0.0,
            cumulative=True, swap=False):
    """What a deletion loop with one of the known slips computes (all steps in one batch)."""
    rows, cols = heat.shape
    n = rows * cols
    order = heat.flatten().argsort(descending=descending)
    copies = []
    for k in range(steps + 1):
        first = 0 if cumulative or k == 0 else (k - 1) * n // steps
        gone = order[first: k * n // steps]
        r, c = (gone % cols, gone // cols) if swap else (gone // cols, gone % cols)
        x = image.clone()
        for channel in channels:
            x[0, channel, r, c] = fill
        copies.append(x)
    with torch.no_grad():
        logits = net(torch.cat(copies))
    scores = {"prob": logits.softmax(1), "logit": logits, "log_prob": logits.log_softmax(1)}[score]
    return scores[:, target].double().cpu()


class DeletionCurveChecker(NumericChecker):
    name = "deletion_curve"
    models = ("shapes", "efficientnet_lite0")
    arg_names = ("net", "image", "target", "heat", "steps")
    wanted = "steps + 1 probabilities"
    rtol = 1e-4
    mistakes = (
        Mistake("least_first", "the least important pixels deleted first",
                "You deleted the pixels with the *smallest* heat first. Deletion removes what the map says "
                "matters most first: sort in descending order, `heat.flatten().argsort(descending=True)`.",
                lambda c: _delete(*c.args, descending=False)),
        Mistake("logit", "the logit instead of the probability",
                "Your curve holds the target's logit. Deletion follows its probability (Petsiuk et al.), which "
                "keeps the area under the curve in [0, 1]: `net(x).softmax(dim=1)[0, target]`.",
                lambda c: _delete(*c.args, score="logit")),
        Mistake("log_prob", "the log-probability instead of the probability",
                "Your curve holds log P(target) (log_softmax). Take the softmax itself.",
                lambda c: _delete(*c.args, score="log_prob")),
        Mistake("one_channel", "only one colour channel deleted",
                "You set only one colour channel of each deleted pixel to 0; a deleted pixel is black in all "
                "three: `x[0, :, rows, cols] = 0`.",
                lambda c: _delete(*c.args, channels=(0,))),
        Mistake("grey", "pixels made grey instead of black",
                "Your deleted pixels are grey (0.5). The exercise makes them black: 0 in all three channels.",
                lambda c: _delete(*c.args, fill=0.5)),
        Mistake("not_cumulative", "each step deletes only its own pixels: the earlier ones come back",
                "At each step you deleted only the newest slice of pixels, and the ones deleted at the steps "
                "before were back. Step k deletes the first k * n // steps pixels of the order, all of them: "
                "start from a fresh copy of the image and delete `order[:k * n // steps]`.",
                lambda c: _delete(*c.args, cumulative=False)),
        Mistake("swapped", "rows and columns swapped when placing the pixels",
                "You turned a flat pixel index i into (i % W, i // W): column and row swapped. Row-major order "
                "puts pixel i at row i // W, column i % W.",
                lambda c: _delete(*c.args, swap=True)),
        Mistake("predicted_class", "the predicted class instead of `target`",
                "Your curve follows the class the network predicts, not the `target` you were given.",
                lambda c: _delete(c.args[0], c.args[1], c.extra["predicted"], *c.args[3:])),
    )

    def build_cases(self):
        shapes, eff = shapes_net(), effnet()
        items, _ = shapes_items()
        g = seeded(1313)
        a, label_a, name_a = shape_image(5, shapes.device)
        near_oracle = torch.from_numpy(items[5].mask.astype(np.float32)) + 0.01 * torch.rand(64, 64, generator=g)
        b, label_b, _ = shape_image(9, shapes.device)
        other = next(i for i in ranked_classes(shapes, b) if i != label_b)
        photo = sample_photo("astronaut", 64, 80, eff.device)
        cases = [
            Case(f"the shapes net, a {name_a} (64 x 64), target {class_label(shapes, label_a)}, heat = its mask "
                 "(plus a little noise), 8 steps", (shapes, a, label_a, near_oracle, 8)),
            Case(f"the shapes net, another shape, target {class_label(shapes, other)} (not the predicted class), "
                 "heat = random noise, 5 steps (4096 pixels do not divide by 5)",
                 (shapes, b, other, torch.rand(64, 64, generator=g), 5)),
            Case("EfficientNet-Lite0, the astronaut photo at 64 x 80 (wider than high), its predicted class, "
                 "heat = random noise, 4 steps",
                 (eff, photo, ranked_classes(eff, photo)[0], torch.rand(64, 80, generator=g), 4)),
        ]
        for c in cases:
            c.networks = (c.args[0],)
            c.extra["predicted"] = ranked_classes(c.args[0], c.args[1])[0]
            c.expected = _delete(*c.args)  # the checker's own deletion loop, no slip
        return cases
