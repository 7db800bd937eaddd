"""Lesson 10's exercise, `pgd_step`: the inputs it is tried on and the mistakes its checker names."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..checker import Case, Mistake
from ..fixtures import shapes_net, effnet, shape_image, sample_photo, ranked_classes, class_label, image_grad, seeded
from ..kinds import StepChecker

__all__ = ["PgdStepChecker"]


def _ce(target):
    def loss(logits, x):
        return F.cross_entropy(logits, torch.tensor([target], device=logits.device))
    return loss


def _pgd(net, image, original, target, eps, alpha, direction=-1.0, clamp=True, project=True, score="ce",
         use_sign=True, step=None):
    if score == "ce":
        g = image_grad(net, image, _ce(target))
    else:  # the target's logit: a step *up*
        g = -image_grad(net, image, lambda logits, x: logits[0, target])
    x = image + direction * (alpha if step is None else step) * (g.sign() if use_sign else g)
    if project:
        x = torch.min(torch.max(x, original - eps), original + eps)
    return x.clamp(0, 1) if clamp else x


def _in_box(original, eps, seed, share_on_edge=0.5):
    """A point inside the box |x - original| <= eps (within [0, 1]), about half of its
    pixels on the box's edge, where the projection decides."""
    g = seeded(seed)
    offset = eps * (2 * torch.rand(original.shape, generator=g) - 1)
    edge = torch.rand(original.shape, generator=g) < share_on_edge
    offset = torch.where(edge, eps * offset.sign(), offset).to(original.device)
    return (original + offset).clamp(0, 1)


class PgdStepChecker(StepChecker):
    name = "pgd_step"
    models = ("shapes", "efficientnet_lite0")
    arg_names = ("net", "image", "original", "target", "eps", "alpha")
    rtol = 1e-4
    mistakes = (
        Mistake("away_from_target", "a step away from the target",
                "Your step goes *up* the cross-entropy to the target, making the target less likely. "
                "Targeted PGD steps *down* the loss: `image - alpha * grad.sign()`.",
                lambda c: _pgd(*c.args, direction=1.0)),
        Mistake("no_projection", "no projection back into the box around the original",
                "Some of your pixels are more than eps away from the *original* photo: after the step, project "
                "back into the box around `original` (not around the current `image`): "
                "`torch.min(torch.max(x, original - eps), original + eps)`.",
                lambda c: _pgd(*c.args, project=False)),
        Mistake("no_clamp", "the result is not clamped to [0, 1]",
                "Some of your pixels leave [0, 1]: after the projection, clamp the new image, `.clamp(0, 1)`, so "
                "it is still an image.",
                lambda c: _pgd(*c.args, clamp=False)),
        Mistake("eps_step", "a step of eps instead of alpha",
                "You stepped by eps, the whole budget (that is FGSM). PGD takes a small step of `alpha` and "
                "re-reads the gradient at the next step; eps only bounds how far the image may go.",
                lambda c: _pgd(*c.args, step=c.args[4])),
        Mistake("no_sign", "the raw gradient instead of its sign",
                "You stepped along the gradient itself. PGD moves every pixel by alpha in the direction of "
                "the gradient's *sign*: `alpha * grad.sign()`.",
                lambda c: _pgd(*c.args, use_sign=False)),
        Mistake("logit", "the target's logit instead of the cross-entropy",
                "You stepped up the target's logit. Targeted PGD steps down the cross-entropy against the "
                "target (`F.cross_entropy(net(x), torch.tensor([target]))`), which also pushes the other "
                "classes down.",
                lambda c: _pgd(*c.args, score="logit")),
        Mistake("untargeted", "away from the predicted class instead of towards the target",
                "You pushed the image away from the class the network predicts (untargeted PGD). This "
                "exercise is targeted: step down the cross-entropy against `target`.",
                lambda c: _pgd(c.args[0], c.args[1], c.args[2], c.extra["predicted"], *c.args[4:],
                               direction=1.0)),
    )

    def build_cases(self):
        shapes, eff = shapes_net(), effnet()
        a, label_a, name_a = shape_image(7, shapes.device)
        target_a = next(i for i in ranked_classes(shapes, a)[1:])
        g = seeded(1010)
        saturated = (torch.rand(1, 3, 64, 64, generator=g) > 0.5).float()
        saturated[:, :, 20:44, 20:44] = 0.5 + 0.4 * torch.rand(1, 3, 24, 24, generator=g)
        saturated = saturated.to(shapes.device)
        photo = sample_photo("astronaut", 64, 64, eff.device)
        cat = sample_photo("cat", 48, 80, eff.device)
        cases = [
            Case(f"the shapes net, a {name_a} moved within its box, target {class_label(shapes, target_a)}, eps 0.03, "
                 "alpha 0.01", (shapes, _in_box(a, 0.03, 1011), a, target_a, 0.03, 0.01)),
            Case(f"the shapes net, black and white pixels around a grey square, moved within the box, target "
                 f"{class_label(shapes, 2)}, eps 0.1, alpha 0.04",
                 (shapes, _in_box(saturated, 0.1, 1012), saturated, 2, 0.1, 0.04)),
            Case("EfficientNet-Lite0, the astronaut photo at 64 x 64 moved within its box, target 1 ('goldfish'), "
                 "eps 8/255, alpha 2/255", (eff, _in_box(photo, 8 / 255, 1013), photo, 1, 8 / 255, 2 / 255)),
            Case("EfficientNet-Lite0, the cat photo at 48 x 80, the first step (image == original), target 1 "
                 "('goldfish'), eps 8/255, alpha 1/255", (eff, cat, cat, 1, 8 / 255, 1 / 255)),
        ]
        for c in cases:
            c.networks = (c.args[0],)
            c.extra["predicted"] = ranked_classes(c.args[0], c.args[1])[0]
            c.expected = _pgd(*c.args).detach().double().cpu()  # the checker's own step, no slip
            gradient = image_grad(c.args[0], c.args[1], _ce(c.args[3])).double().cpu()
            # Where the gradient is within rounding of 0 its sign is a coin toss: not compared.
            c.extra["decisive"] = gradient.abs() > 1e-4 * gradient.abs().max()
        return cases

    def view(self, value, case):
        return (value - case.args[1].detach().double().cpu()) * case.extra["decisive"]

    def accepted(self, case):
        return [case.expected]

    def properties(self, value, case):
        image = case.args[1].detach().double().cpu()
        original = case.args[2].detach().double().cpu()
        eps, alpha = case.args[4], case.args[5]
        if value.shape == image.shape and torch.isfinite(value).all():
            largest = float((value - image).abs().max())
            if largest > alpha * (1 + 1e-3):
                return ("step_too_large", "a step larger than alpha",
                        f"Your image changes some pixel by {largest:.4g}, more than alpha = {alpha:.4g}. One PGD "
                        "step moves each pixel by at most alpha (`alpha * grad.sign()`; the projection and the "
                        "clamp only shorten it).")
            outside = float((value - original).abs().max())
            if outside > eps * (1 + 1e-3):
                return ("no_projection", "no projection back into the box around the original",
                        f"Some pixel is {outside:.4g} away from the original photo, more than eps = {eps:.4g}: "
                        "project into the box around `original`, "
                        "`torch.min(torch.max(x, original - eps), original + eps)`.")
            if value.min() < 0 or value.max() > 1:
                return ("no_clamp", "the result is not clamped to [0, 1]",
                        "Some of your pixels leave [0, 1]: clamp the new image, `.clamp(0, 1)`.")
        return super().properties(value, case)
