"""Lesson 11's exercise, `guided_dream_step`: the inputs it is tried on and the mistakes its checker names."""

from __future__ import annotations

import torch

from ..checker import Case, Mistake
from ..fixtures import shapes_net, effnet, shape_image, sample_photo, layer_image_grad, seeded
from ..kinds import StepChecker

__all__ = ["GuidedDreamStepChecker"]


def _guided_dream(net, image, guide, layer, lr, wanted="guide", objective="guided", norm="mean_abs",
                  direction=1.0):
    with torch.no_grad():
        reference = net.forward_to(guide if wanted == "guide" else image, layer)
    means = reference.mean(dim=(2, 3), keepdim=True)
    objectives = {"guided": lambda a: (a * means).sum(),
                  "positions": lambda a: (a * reference).sum(),  # raises when the sizes differ
                  "square": lambda a: a.pow(2).sum() / 2}
    g = layer_image_grad(net, image, layer, objectives[objective])
    scale = {"mean_abs": g.abs().mean(), "max_abs": g.abs().max(), "l2": g.norm(),
             "none": torch.tensor(1.0, device=g.device)}[norm]
    return image + direction * lr * g / scale


class GuidedDreamStepChecker(StepChecker):
    name = "guided_dream_step"
    models = ("shapes", "efficientnet_lite0")
    arg_names = ("net", "image", "guide", "layer", "lr")
    mistakes = (
        Mistake("plain_dream", "the plain dream: sum(a^2) / 2, the guide ignored",
                "You climbed the layer's own energy, sum(a^2) / 2: that is the lesson's DeepDream step, which "
                "amplifies what *this* image already shows. The guided dream climbs sum(a * m), with m the "
                "guide's activations averaged over positions.",
                lambda c: _guided_dream(*c.args, objective="square")),
        Mistake("own_features", "the image's own activations instead of the guide's",
                "Your m comes from the image itself. Take it from the guide: "
                "`net.forward_to(guide, layer).mean(dim=(2, 3), keepdim=True)`.",
                lambda c: _guided_dream(*c.args, wanted="image")),
        Mistake("position_by_position", "the guide's activations position by position, not averaged",
                "You multiplied by the guide's activations at each position, which asks for the guide's "
                "layout and only works when both images have the same size. Average the guide's activations "
                "over positions first (one number per channel): `.mean(dim=(2, 3), keepdim=True)`.",
                lambda c: _guided_dream(*c.args, objective="positions")),
        Mistake("not_normalised", "the gradient was not normalised",
                "You stepped along the raw gradient. DeepDream divides it by its mean absolute value, so the "
                "step size `lr` means the same at every layer: `g / g.abs().mean()`.",
                lambda c: _guided_dream(*c.args, norm="none")),
        Mistake("max_normalised", "divided by the largest |gradient|, not the mean",
                "You divided by the largest |g|; DeepDream divides by the mean |g|.",
                lambda c: _guided_dream(*c.args, norm="max_abs")),
        Mistake("l2_normalised", "divided by the gradient's L2 norm, not its mean |value|",
                "You divided by the gradient's length (L2 norm); DeepDream divides by the mean absolute value, "
                "`g.abs().mean()`.",
                lambda c: _guided_dream(*c.args, norm="l2")),
        Mistake("descent", "a step down instead of up",
                "Your step makes the image *less* like the guide for the layer. The dream climbs: "
                "`image + lr * g / g.abs().mean()`.",
                lambda c: _guided_dream(*c.args, direction=-1.0)),
    )

    def build_cases(self):
        shapes, eff = shapes_net(), effnet()
        a, label_a, name_a = shape_image(9, shapes.device)
        b, _, name_b = next((shape_image(i, shapes.device) for i in range(20)
                             if shape_image(i, shapes.device)[1] != label_a))
        noise = torch.rand(1, 3, 48, 80, generator=seeded(1111)).to(eff.device)
        cases = [
            Case(f"the shapes net, a {name_a} guided by a {name_b} (both 64 x 64), layer 'conv3', lr 0.01",
                 (shapes, a, b, "conv3", 0.01)),
            Case("EfficientNet-Lite0, the cat photo at 64 x 64 guided by the astronaut at 80 x 96, layer 'stage4', "
                 "lr 0.02", (eff, sample_photo("cat", 64, 64, eff.device), sample_photo("astronaut", 80, 96, eff.device),
                             "stage4", 0.02)),
            Case("EfficientNet-Lite0, random noise 48 x 80 guided by the coffee photo at 64 x 64, layer 'stage2', "
                 "lr 0.05", (eff, noise, sample_photo("coffee", 64, 64, eff.device), "stage2", 0.05)),
        ]
        for c in cases:
            c.networks = (c.args[0],)
            c.expected = _guided_dream(*c.args).detach().double().cpu()  # the checker's own step
            net, image, guide, layer, _ = c.args
            with torch.no_grad():
                means = net.forward_to(guide, layer).mean(dim=(2, 3), keepdim=True)
            c.extra["gradient"] = layer_image_grad(net, image, layer, lambda act: (act * means).sum())
        return cases
