"""Lesson 07's exercise, `saliency`: the inputs it is tried on and the mistakes its checker names."""

from __future__ import annotations

from ...engine.attribution.saliency import saliency as engine_saliency
from ..checker import Case, Mistake
from ..fixtures import shapes_net, effnet, shape_image, sample_photo, ranked_classes, class_label, image_grad
from ..kinds import NumericChecker

__all__ = ["SaliencyChecker"]


def _saliency(net, image, target, score="logit", reduce="max", absolute=True):
    def objective(logits, x):
        return {"logit": logits[0, target], "prob": logits.softmax(1)[0, target],
                "log_prob": logits.log_softmax(1)[0, target]}[score]

    g = image_grad(net, image, objective)[0]
    g = g.abs() if absolute else g
    return {"max": g.amax(dim=0), "mean": g.mean(dim=0), "sum": g.sum(dim=0), "norm": g.norm(dim=0)}[reduce]


class SaliencyChecker(NumericChecker):
    name = "saliency"
    models = ("shapes", "efficientnet_lite0")
    arg_names = ("net", "image", "target")
    wanted = "H x W (one value per pixel)"
    rtol = 2e-3
    mistakes = (
        Mistake("no_abs", "no absolute value",
                "You took the largest *signed* derivative over the channels. A pixel matters when the score "
                "changes a lot either way: take the absolute value first, `grad.abs().amax(dim=...)`.",
                lambda c: _saliency(*c.args, absolute=False)),
        Mistake("mean_over_channels", "the mean over colour channels instead of the max",
                "You averaged |gradient| over the three colour channels; Simonyan et al. take the maximum.",
                lambda c: _saliency(*c.args, reduce="mean")),
        Mistake("sum_over_channels", "the sum over colour channels instead of the max",
                "You added |gradient| over the three colour channels; Simonyan et al. take the maximum.",
                lambda c: _saliency(*c.args, reduce="sum")),
        Mistake("norm_over_channels", "the L2 norm over colour channels instead of the max",
                "You took the length of the (r, g, b) gradient; Simonyan et al. take the maximum of the "
                "absolute values.",
                lambda c: _saliency(*c.args, reduce="norm")),
        Mistake("probability", "the probability instead of the logit",
                "You differentiated the softmax probability. The paper uses the logit (the score before the "
                "softmax): the probability's gradient also depends on every other class's score. Use "
                "`net(x)[0, target]` directly.",
                lambda c: _saliency(*c.args, score="prob")),
        Mistake("log_probability", "the log-probability (or cross-entropy) instead of the logit",
                "You differentiated log P(target) (log_softmax, or a cross-entropy loss). Use the logit, "
                "`net(x)[0, target]`, before any softmax.",
                lambda c: _saliency(*c.args, score="log_prob")),
        Mistake("predicted_class", "the predicted class instead of `target`",
                "Your map explains the class the network predicts, not the `target` you were given.",
                lambda c: _saliency(c.args[0], c.args[1], c.extra["predicted"])),
    )

    def build_cases(self):
        shapes, eff = shapes_net(), effnet()
        a, label_a, name_a = shape_image(2, shapes.device)
        b, label_b, _ = shape_image(8, shapes.device)
        other = next(i for i in ranked_classes(shapes, b) if i != label_b)
        photo = sample_photo("cat", 64, 80, eff.device)
        cases = [
            Case(f"the shapes net, a {name_a} (64 x 64), target {class_label(shapes, label_a)}", (shapes, a, label_a)),
            Case(f"the shapes net, another shape, target {class_label(shapes, other)} (not the predicted class)",
                 (shapes, b, other)),
            Case("EfficientNet-Lite0, the cat photo at 64 x 80, its predicted class",
                 (eff, photo, ranked_classes(eff, photo)[0])),
        ]
        for c in cases:
            c.networks = (c.args[0],)
            c.extra["predicted"] = ranked_classes(c.args[0], c.args[1])[0]
            c.expected = engine_saliency(*c.args).map[0].double().cpu()
        return cases
