"""Lesson 09's exercise, `ascent_step`: the inputs it is tried on and the mistakes its checker names."""

from __future__ import annotations

import torch

from ..checker import Case, Mistake
from ..fixtures import shapes_net, effnet, shape_image, sample_photo, class_label, image_grad, seeded
from ..kinds import StepChecker

__all__ = ["AscentStepChecker"]


def _ascent(net, image, target, lr, l2, direction=1.0, l2_sign=-1.0, centre=0.5, reduce="sum", score="logit",
            returned="image"):
    def objective(logits, x):
        s = {"logit": logits[0, target], "prob": logits.softmax(1)[0, target]}[score]
        penalty = (x - centre) ** 2
        return s + l2_sign * l2 * (penalty.sum() if reduce == "sum" else penalty.mean())

    g = image_grad(net, image, objective)
    if returned == "gradient":
        return g
    return image + direction * lr * g



class AscentStepChecker(StepChecker):
    name = "ascent_step"
    models = ("shapes", "efficientnet_lite0")
    arg_names = ("net", "image", "target", "lr", "l2")
    mistakes = (
        Mistake("descent", "a step down instead of up",
                "Your step goes *down* the objective. Gradient ascent adds the gradient: "
                "`image + lr * gradient`.",
                lambda c: _ascent(*c.args, direction=-1.0)),
        Mistake("no_l2", "the L2 penalty is missing",
                "Your step follows the logit alone: the penalty - l2 * sum((image - 0.5)^2) is missing "
                "from the objective.",
                lambda c: _ascent(*c.args, l2_sign=0.0)),
        Mistake("l2_sign", "the L2 penalty has the wrong sign",
                "Your objective *adds* l2 * sum((image - 0.5)^2), which rewards pixels far from grey. It is a "
                "penalty: subtract it.",
                lambda c: _ascent(*c.args, l2_sign=1.0)),
        Mistake("l2_towards_zero", "the L2 penalty pulls towards 0, not grey",
                "Your penalty is l2 * sum(image^2): it pulls pixels towards black. Here it pulls them towards "
                "mid-grey, sum((image - 0.5)^2).",
                lambda c: _ascent(*c.args, centre=0.0)),
        Mistake("l2_mean", "the L2 penalty is a mean, not a sum",
                "Your penalty averages over the pixels instead of summing them, so it is thousands of times "
                "too weak. The exercise's penalty is l2 * sum((image - 0.5)^2).",
                lambda c: _ascent(*c.args, reduce="mean")),
        Mistake("probability", "the probability instead of the logit",
                "You climbed the softmax probability. Simonyan et al. climb the logit (before the softmax): "
                "`net(x)[0, target]`.",
                lambda c: _ascent(*c.args, score="prob")),
    )

    def build_cases(self):
        shapes, eff = shapes_net(), effnet()
        a, label_a, name_a = shape_image(5, shapes.device)
        grey = (0.5 + 0.05 * torch.randn(1, 3, 64, 64, generator=seeded(909))).clamp(0, 1).to(shapes.device)
        photo = sample_photo("rocket", 64, 64, eff.device)
        cases = [
            Case(f"the shapes net, a {name_a}, target {class_label(shapes, label_a)}, lr 0.01, l2 0.1",
                 (shapes, a, label_a, 0.01, 0.1)),
            Case(f"the shapes net, a grey noisy start image, target {class_label(shapes, 7)}, lr 0.02, l2 10",
                 (shapes, grey, 7, 0.02, 10.0)),
            Case("EfficientNet-Lite0, the rocket photo at 64 x 64, target 1 ('goldfish'), lr 0.05, l2 200",
                 (eff, photo, 1, 0.05, 200.0)),
            Case(f"the shapes net, a {name_a}, target {class_label(shapes, label_a)}, a strong penalty: lr 0.0001, "
                 "l2 2000", (shapes, a, label_a, 1e-4, 2000.0)),
        ]
        for c in cases:
            c.networks = (c.args[0],)
            c.expected = _ascent(*c.args).detach().double().cpu()  # the checker's own step, no slip
            c.extra["gradient"] = _ascent(*c.args, returned="gradient")
        return cases
