"""Lesson 08's exercise, `guided_relu_backward`: the inputs it is tried on and the mistakes its checker names."""

from __future__ import annotations

import torch

from ..checker import Case, Mistake
from ..fixtures import shapes_net, shape_image, seeded
from ..kinds import NumericChecker

__all__ = ["GuidedReluBackwardChecker"]


class GuidedReluBackwardChecker(NumericChecker):
    name = "guided_relu_backward"
    models = ("shapes",)
    arg_names = ("grad_output", "relu_input")
    wanted = "the same shape as grad_output"
    rtol = 1e-6
    mistakes = (
        Mistake("plain", "the ordinary ReLU gradient (no guidance)",
                "You passed the gradient wherever the ReLU's input was positive: the true ReLU gradient. "
                "Guided backprop also drops *negative gradients*: keep grad_output only where it is "
                "positive too.",
                lambda c: c.args[0] * (c.args[1] > 0)),
        Mistake("deconvnet", "the deconvnet rule (the input was ignored)",
                "You kept the positive gradients everywhere, whatever the ReLU's input was: Zeiler and "
                "Fergus's deconvnet. Guided backprop keeps them only where the ReLU was active (input > 0).",
                lambda c: c.args[0].clamp(min=0)),
        Mistake("at_zero", "input exactly 0 lets the gradient through",
                "You let the gradient through where the ReLU's input is exactly 0 (`>= 0`). The ReLU is "
                "flat there in the forward direction (its output is 0): use `> 0`.",
                lambda c: c.args[0].clamp(min=0) * (c.args[1] >= 0)),
        Mistake("abs", "the absolute value of the gradient",
                "You took |grad_output|, which turns negative gradients positive. Guided backprop *drops* "
                "them (sets them to 0).",
                lambda c: c.args[0].abs() * (c.args[1] > 0)),
        Mistake("times_input", "multiplied by the input instead of masking",
                "You multiplied the gradient by the ReLU's input value. The ReLU's derivative is 0 or 1: "
                "mask with `(relu_input > 0)`, do not scale.",
                lambda c: c.args[0].clamp(min=0) * c.args[1].clamp(min=0)),
    )

    def build_cases(self):
        g = seeded(808)
        a = torch.randn(2, 5, 6, 4, generator=g)
        a[a.abs() < 0.3] = 0.0  # exact zeros: a ReLU input can be exactly 0
        ga = torch.randn(2, 5, 6, 4, generator=g)
        ga[::2, ::3] = 0.0
        cases = [
            Case("a real pair from the shapes net: the input of its conv2 ReLU and the gradient of a class "
                 "logit arriving there", _real_relu_pair()),
            Case("random 2 x 5 x 6 x 4 tensors, with exact zeros in both", (ga, a)),
            Case("random vectors of 17 numbers", (torch.randn(17, generator=g), torch.randn(17, generator=g))),
        ]
        for c in cases:
            grad_output, relu_input = c.args
            # Springenberg et al.'s rule: the gradient where it and the ReLU's input are both positive.
            c.expected = (grad_output * ((relu_input > 0) & (grad_output > 0))).double()
        return cases


def _real_relu_pair():
    net = shapes_net()
    x = shape_image(4, net.device)[0]
    relu = net.module("conv2")
    seen = {}

    def keep(_m, inputs, output):
        seen["input"] = inputs[0].detach()
        output.register_hook(lambda grad: seen.__setitem__("grad", grad.detach()))

    handle = relu.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            x = x.clone().requires_grad_(True)
            logit = net(x)[0, 3]
            torch.autograd.grad(logit, x)
    finally:
        handle.remove()
    return seen["grad"].cpu(), seen["input"].cpu()
