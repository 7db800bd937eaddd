"""Converting a learner's answer to numbers and comparing it with the reference: within a
tolerance relative to the reference's scale, and naming the slips any numeric answer can
have (a wrong shape, transposed, extra dimensions of size 1, NaN, the opposite sign, a
constant factor)."""

from __future__ import annotations

import math

import numpy as np
import torch

from .result import failure

__all__ = ["as_array", "check_shape", "check_finite", "tensors_close", "relative_difference", "generic_numeric"]


def as_array(output, what: str = "your function's result") -> torch.Tensor:
    """A tensor, numpy array or nested list of numbers -> float64 CPU tensor, or `failure`."""
    if isinstance(output, torch.Tensor):
        t = output.detach()
    elif isinstance(output, np.ndarray) or isinstance(output, (list, tuple, int, float, np.number)):
        try:
            t = torch.as_tensor(np.asarray(output, dtype=np.float64))
        except (TypeError, ValueError):
            raise failure("type", "the result is not an array of numbers",
                        f"{what} is a {type(output).__name__} that does not convert to an array of numbers; "
                        "return a torch tensor.") from None
    else:
        raise failure("type", "the result is not a tensor",
                    f"{what} is a {type(output).__name__}; return a torch tensor.")
    if t.is_complex():
        raise failure("type", "the result is complex", f"{what} holds complex numbers; return real values.")
    return t.to("cpu", torch.float64)


def check_shape(value: torch.Tensor, expected: torch.Tensor, wanted: str) -> None:
    """`failure` with a named slip when the shapes differ."""
    if tuple(value.shape) == tuple(expected.shape):
        return
    got, want = tuple(value.shape), tuple(expected.shape)
    if value.dim() == 2 and value.T.shape == expected.shape and tensors_close(value.T, expected):
        raise failure("transposed", "rows and columns are swapped",
                    f"Your result is the right answer transposed: shape {_shape(got)} instead of {_shape(want)}. "
                    "Rows go down the image (height), columns across (width).")
    if value.numel() == expected.numel() and value.squeeze().shape == expected.squeeze().shape:
        raise failure("extra_dims", "the result has extra dimensions of size 1",
                    f"Your result has shape {_shape(got)}; the exercise asks for {wanted}, shape {_shape(want)}. "
                    "Drop the batch (or channel) dimension, e.g. with `[0]` or `.squeeze(0)`.")
    raise failure("shape", "the result has the wrong shape",
                f"Your result has shape {_shape(got)}; the exercise asks for {wanted}, which here is {_shape(want)}.")


def _shape(shape) -> str:
    return " x ".join(str(s) for s in shape) if len(shape) else "a scalar (shape ())"


def check_finite(value: torch.Tensor) -> None:
    bad = ~torch.isfinite(value)
    if bad.any():
        nan, inf = int(torch.isnan(value).sum()), int(torch.isinf(value).sum())
        parts = ([f"{nan} NaN"] if nan else []) + ([f"{inf} infinite"] if inf else [])
        raise failure("not_finite", "the result has NaN or infinite values",
                    f"Your result has {' and '.join(parts)} value(s) out of {value.numel()}. A 0/0 or x/0 "
                    "somewhere? Look for a division by something that can be zero, or a log of 0.")


def tensors_close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-3, equal_nan: bool = True) -> bool:
    if a.shape != b.shape:
        return False
    a, b = a.double(), b.double()
    finite = torch.isfinite(b)
    if equal_nan:
        if not torch.equal(torch.isnan(a), torch.isnan(b)):
            return False
        if not torch.equal(torch.isinf(a) & (a > 0), torch.isinf(b) & (b > 0)):
            return False
        if not torch.equal(torch.isinf(a) & (a < 0), torch.isinf(b) & (b < 0)):
            return False
    elif not finite.all() or not torch.isfinite(a).all():
        return False
    if not finite.any():
        return True
    scale = float(b[finite].abs().max())
    err = float((a[finite] - b[finite]).abs().max())
    return err <= rtol * scale or err <= 1e-12


def relative_difference(value: torch.Tensor, expected: torch.Tensor, rtol: float) -> str | None:
    """None when equal within `rtol` of the reference's largest magnitude; else where and by how much."""
    if tensors_close(value, expected, rtol, equal_nan=False):
        return None
    diff = (value - expected).abs()
    diff = torch.where(torch.isfinite(diff), diff, torch.full_like(diff, math.inf))
    flat = int(diff.argmax())
    index = tuple(int(i) for i in np.unravel_index(flat, tuple(expected.shape))) if expected.dim() else ()
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    where = f" at index {index}" if index else ""
    return (f"Your result differs from the reference{where}: you have {float(value.flatten()[flat]):.6g}, "
            f"the reference {float(expected.flatten()[flat]):.6g} (the reference's values reach {scale:.3g}; "
            f"the tolerance is {rtol:g} of that).")


def generic_numeric(value: torch.Tensor, expected: torch.Tensor, rtol: float) -> tuple[str, str, str] | None:
    """Slips any numeric answer can have: the opposite sign, or a constant factor off."""
    if value.shape != expected.shape or not torch.isfinite(value).all():
        return None
    if value.dim() == 2 and value.shape[0] == value.shape[1] and tensors_close(value.T, expected, rtol):
        return ("transposed", "rows and columns are swapped",
                "Your result is the right answer transposed: rows go down the image (height), columns across "
                "(width).")
    if tensors_close(-value, expected, rtol):
        return ("negated", "the sign is flipped", "Your result is exactly minus the reference: a sign somewhere "
                "(a subtraction the wrong way round, or a minus in front of the objective).")
    denom = float((expected * expected).sum())
    if denom > 0:
        factor = float((value * expected).sum()) / denom
        if factor > 0 and abs(factor - 1) > 10 * rtol and tensors_close(value, factor * expected, rtol):
            return ("scaled", f"off by a constant factor ({factor:.4g})",
                    f"Your result is the reference multiplied by {factor:.4g}: the right shape and pattern, "
                    "the wrong scale. Look for a sum where a mean is wanted (or the other way round), or a "
                    "missing or extra constant.")
    return None
