"""Lesson 12's exercise, `total_variation`: the inputs it is tried on and the mistakes its checker names."""

from __future__ import annotations

import torch

from ..checker import Case, Mistake
from ..comparison import as_array, tensors_close
from ..fixtures import shape_image, sample_photo, seeded
from ..kinds import NumericChecker
from ..result import failure

__all__ = ["TotalVariationChecker"]


def _tv(x, power=2, reduce="mean", directions=("down", "right"), mode="crop"):
    if mode == "roll":
        parts = []
        if "down" in directions:
            parts.append(torch.roll(x, -1, dims=2) - x)
        if "right" in directions:
            parts.append(torch.roll(x, -1, dims=3) - x)
        total = sum(p.abs() ** power for p in parts)
        return total.mean() if reduce == "mean" else total.sum()
    if mode in ("separate", "full"):  # each direction over all of its own pairs
        down = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs() ** power
        right = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs() ** power
        parts = [d for name, d in (("down", down), ("right", right)) if name in directions]
        return sum(p.mean() if reduce == "mean" else p.sum() for p in parts)
    down = x[:, :, 1:, :-1] - x[:, :, :-1, :-1]
    right = x[:, :, :-1, 1:] - x[:, :, :-1, :-1]
    if mode == "isotropic":
        total = (down ** 2 + right ** 2).sqrt()
    else:
        total = sum((d.abs() ** power) for name, d in (("down", down), ("right", right)) if name in directions)
    return total.mean() if reduce == "mean" else total.sum()


class TotalVariationChecker(NumericChecker):
    name = "total_variation"
    arg_names = ("image",)
    wanted = "a scalar (a 0-dimensional tensor)"
    rtol = 1e-5
    mistakes = (
        Mistake("abs", "absolute differences instead of squared",
                "You used |difference| (the L1, anisotropic total variation). This exercise squares the "
                "differences: `down ** 2 + right ** 2`.",
                lambda c: _tv(c.args[0], power=1)),
        Mistake("isotropic", "the square root of the sum of squares",
                "You took sqrt(down^2 + right^2) per pixel (isotropic TV, beta = 1). This exercise uses the "
                "squares themselves (beta = 2): no square root.",
                lambda c: _tv(c.args[0], mode="isotropic")),
        Mistake("sum", "a sum instead of a mean",
                "You summed over the pixels; take the mean, so the value does not grow with the image size.",
                lambda c: _tv(c.args[0], reduce="sum")),
        Mistake("abs", "absolute differences instead of squared", "",
                lambda c: _tv(c.args[0], power=1, mode="separate")),
        Mistake("sum", "a sum instead of a mean", "", lambda c: _tv(c.args[0], reduce="sum", mode="separate")),
        Mistake("down_only", "only the vertical differences",
                "You used only the differences to the pixel below; add the differences to the pixel on the "
                "right.",
                lambda c: _tv(c.args[0], directions=("down",))),
        Mistake("right_only", "only the horizontal differences",
                "You used only the differences to the pixel on the right; add the differences to the pixel "
                "below.",
                lambda c: _tv(c.args[0], directions=("right",))),
        Mistake("down_only", "", "", lambda c: _tv(c.args[0], directions=("down",), mode="full")),
        Mistake("right_only", "", "", lambda c: _tv(c.args[0], directions=("right",), mode="full")),
        Mistake("wraparound", "the image wraps around (torch.roll)",
                "Your differences include the last row against the first (and the last column against the "
                "first): torch.roll wraps around the border. Slice instead, `x[:, :, 1:, :-1] - "
                "x[:, :, :-1, :-1]`.",
                lambda c: _tv(c.args[0], mode="roll")),
        Mistake("separate_means", "each direction averaged over its own pixels",
                "You averaged the vertical differences over H-1 x W pixels and the horizontal ones over "
                "H x W-1, then added the two means. The exercise averages down^2 + right^2 over the pixels "
                "that have both neighbours, the (H-1) x (W-1) top-left block: "
                "`x[:, :, 1:, :-1] - x[:, :, :-1, :-1]` and `x[:, :, :-1, 1:] - x[:, :, :-1, :-1]`.",
                lambda c: _tv(c.args[0], mode="separate")),
    )

    def build_cases(self):
        g = seeded(1212)
        shape, _, name = shape_image(0, torch.device("cpu"))
        cases = [
            Case(f"a shape image (a {name}, 1 x 3 x 64 x 64)", (shape,)),
            Case("the coffee photo at 40 x 24 (higher than wide)", (sample_photo("coffee", 40, 24, torch.device("cpu")),)),
            Case("random pixels, 1 x 3 x 5 x 9", (torch.rand(1, 3, 5, 9, generator=g),)),
            Case("random pixels, 1 x 3 x 2 x 2 (one pixel with both neighbours)", (torch.rand(1, 3, 2, 2, generator=g),)),
            Case("random pixels 1 x 3 x 6 x 7, which must get a gradient (TV is used as a loss)",
                 (torch.rand(1, 3, 6, 7, generator=g),), extra={"needs_grad": True}),
        ]
        for c in cases:
            c.expected = _tv(c.args[0].double())  # the checker's own formula, no slip
            if c.extra.get("needs_grad"):
                x = c.args[0].clone().requires_grad_(True)
                (c.extra["gradient"],) = torch.autograd.grad(_tv(x), x)
        return cases

    def prepare(self, given, case):
        if case.extra.get("needs_grad"):
            given[0].requires_grad_(True)

    def convert(self, output, case, given):
        if case.extra.get("needs_grad"):
            if not isinstance(output, torch.Tensor):
                raise failure("no_gradient", "the result is not a tensor, so no gradient flows",
                            f"Your function returns a {type(output).__name__}. Total variation is used as a loss "
                            "(lesson 12 minimises it), so it must be a torch tensor that autograd can "
                            "differentiate: avoid .item(), float(...) and numpy.")
            if output.grad_fn is None and not output.requires_grad:
                raise failure("no_gradient", "no gradient flows through the result",
                            "Your result does not depend on the image in a way autograd can follow (was "
                            "something detached, or computed with numpy?). It is used as a loss, so it must "
                            "be differentiable: use torch operations on the image itself.")
            if output.numel() == 1:
                (gradient,) = torch.autograd.grad(output.sum(), given[0], allow_unused=True)
                if gradient is None or not tensors_close(gradient.double(), case.extra["gradient"].double(), 1e-4):
                    value = as_array(output)
                    if value.numel() == 1 and tensors_close(value.reshape(()), case.expected, self.rtol):
                        raise failure("gradient", "the value is right but its gradient is not",
                                    "Your total variation has the right value, but its gradient with respect "
                                    "to the image differs from the reference's: was part of the computation "
                                    "detached?")
        return as_array(output)

    def generic(self, value, case):
        if value.dim() > 0 and value.numel() == 1:
            raise failure("not_scalar", "a 1-element tensor, not a scalar",
                        f"Your result has shape {tuple(value.shape)}; return a 0-dimensional tensor (plain "
                        "`.mean()` over everything, no dim or keepdim), so that `.backward()` works on it.")
        return super().generic(value, case)
