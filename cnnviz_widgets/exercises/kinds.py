"""The three kinds of checker the lessons share: `NumericChecker` (arrays of numbers within a
relative tolerance), `IndexChecker` (k indices, ties in either order) and `StepChecker`
(an image after one step: the change is compared)."""

from __future__ import annotations

import numpy as np
import torch

from .checker import Case, Checker
from .comparison import as_array, check_finite, check_shape, generic_numeric, relative_difference, tensors_close
from .result import failure

__all__ = ["NumericChecker", "IndexChecker", "StepChecker"]


class NumericChecker(Checker):
    """Answers that are arrays of numbers, compared within `rtol` of the reference's scale."""

    rtol = 1e-4
    wanted = "an array"

    def convert(self, output, case, given):
        return as_array(output)

    def view(self, value: torch.Tensor, case: Case) -> torch.Tensor:
        """What is compared: the answer itself, or (for steps) the change it makes."""
        return value

    def accepted(self, case: Case) -> list:
        """Every answer that counts as right (the reference, and any allowed variant)."""
        return [case.expected]

    def compare(self, value, expected, case):
        expected = as_array(expected)
        if value.shape != expected.shape:
            return f"Your result has shape {tuple(value.shape)}, the reference {tuple(expected.shape)}."
        return relative_difference(self.view(value, case), self.view(expected, case), self.rtol)

    def judge(self, value, case, keys=None):
        if any(self.compare(value, ok, case) is None for ok in self.accepted(case)):
            return
        super().judge(value, case, keys)

    def matches(self, value, wrong, case):
        wrong = as_array(wrong)
        return value.shape == wrong.shape and tensors_close(self.view(value, case), self.view(wrong, case), self.rtol)

    def generic(self, value, case):
        expected = as_array(case.expected)
        check_shape(value, expected, self.wanted)
        check_finite(value)
        return generic_numeric(self.view(value, case), self.view(expected, case), self.rtol)


class IndexChecker(Checker):
    """Answers that are k indices, nearest or largest first. Equal scores (ties) may come in
    either order: the scores of the chosen indices are compared, not the indices."""

    what = "indices"

    def scores(self, case: Case) -> torch.Tensor:
        raise NotImplementedError

    def convert(self, output, case, given):
        if isinstance(output, tuple) and len(output) == 2 and all(hasattr(o, "__len__") for o in output):
            raise failure("pair", "the result is a pair",
                        "Your function returns two things (indices and values?); return only the indices.")
        try:
            t = torch.as_tensor(output.detach().cpu() if isinstance(output, torch.Tensor) else np.asarray(output))
        except (TypeError, ValueError):
            raise failure("type", "the result is not a list of indices",
                        f"Your function returned a {type(output).__name__}; return the {self.what} as a "
                        "tensor (or a list) of whole numbers.") from None
        if t.dim() != 1:
            raise failure("shape", "the result is not a flat list of indices",
                        f"Your result has shape {tuple(t.shape)}; return a 1-D tensor of {self.what}.")
        if t.is_floating_point():
            if not torch.isfinite(t).all() or not torch.equal(t, t.round()):
                raise failure("values_not_indices", f"the result holds values, not {self.what}",
                            f"Your result holds fractional numbers ({_few(t)}): those look like the scores "
                            f"themselves. Return their positions: `argsort` (or `topk(...).indices`) gives "
                            "indices, `sort` gives values.")
        elif t.dtype == torch.bool or t.is_complex():
            raise failure("type", "the result is not a list of indices", f"Return the {self.what} as whole numbers.")
        return [int(v) for v in t.tolist()]

    def compare(self, value, expected, case):
        k, n = len(expected), len(self.scores(case))
        if len(value) != k:
            return f"You returned {len(value)} {self.what}; the exercise asks for k = {k}."
        if any(not 0 <= i < n for i in value):
            return f"Some of your {self.what} ({_few(value)}) are outside 0..{n - 1}."
        if len(set(value)) != len(value):
            return f"Your {self.what} repeat: {value}."
        scores = self.scores(case)
        mine, right = scores[value], scores[list(expected)]
        tol = 1e-6 * max(1.0, float(scores.abs().max()))
        if torch.all((mine - right).abs() <= tol):
            return None
        return f"Your {self.what} are {value}; the reference's are {list(expected)}."

    def matches(self, value, wrong, case):
        return list(value) == [int(i) for i in wrong]

    def generic(self, value, case):
        k = len(case.expected)
        if len(value) != k:
            key = "off_by_one" if abs(len(value) - k) == 1 else "count"
            raise failure(key, f"{len(value)} {self.what} instead of {k}",
                        f"You returned {len(value)} {self.what}; the exercise asks for exactly k = {k}. "
                        + ("An off-by-one in a slice? `[:k]` takes k items." if key == "off_by_one" else ""))
        if set(value) == set(case.expected) and value != list(case.expected):
            raise failure("order", f"the right {self.what} in the wrong order",
                        f"You found the right {self.what} but in a different order: {value} instead of "
                        f"{list(case.expected)}. The best goes first (sort in descending order).")
        return None


def _few(values, n: int = 4) -> str:
    values = list(values.tolist() if hasattr(values, "tolist") else values)
    text = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in values[:n])
    return text + (", ..." if len(values) > n else "")


class StepChecker(NumericChecker):
    """An image after one step: the *change* is compared, relative to the change's scale
    (the pixels themselves would hide it). Clamping to [0, 1] afterwards is allowed."""

    wanted = "1 x 3 x H x W (the new image)"
    rtol = 2e-3

    def view(self, value, case):
        return value - case.args[1].detach().double().cpu()

    def accepted(self, case):
        return [case.expected, case.expected.clamp(0, 1)]

    def properties(self, value, case):
        image = case.args[1].detach().double().cpu()
        if value.shape == image.shape and torch.equal(value, image):
            return ("unchanged", "the image did not change",
                    "Your function returned the image unchanged: no step was taken. Add the step to the image "
                    "and return the result.")
        gradient = case.extra.get("gradient")
        if gradient is not None and value.shape == gradient.shape and tensors_close(value, gradient.double().cpu(), self.rtol):
            return ("returned_gradient", "returned the gradient, not the new image",
                    "Your function returned the gradient. Return the image after the step: "
                    "`image + lr * gradient`.")
        return None

