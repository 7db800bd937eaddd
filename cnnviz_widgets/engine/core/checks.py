"""Argument checks shared by every technique: one wording, numpy integers welcome.

Each check returns the value in its plain Python form (``int``, ``float``, ``str``)
so the technique can use it without thinking about where it came from: a widget's
int, a numpy integer from an ``argmax``, a 0-d tensor. Every failure is a
``ValueError`` (``TypeError`` for a value of the wrong kind) whose message names the
argument, the value and what was expected, e.g.
``channel 300 is out of range: conv5 has channels 0..255``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["is_integer", "integer", "number", "fraction", "percentile", "choice", "channel", "layer", "position",
           "index", "pixels", "pixel_band", "network"]


def _plain_integer(value: Any) -> int | None:
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_floating_point() \
            and value.dtype != torch.bool:
        return int(value.item())
    return None


def is_integer(value: Any) -> bool:
    """Whether `value` is a whole number in any of the accepted forms (not a bool)."""
    return _plain_integer(value) is not None


def integer(value: Any, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """An integer in [low, high] (either bound optional). Python and numpy integers and
    0-d integer tensors are accepted alike; bools and floats are not."""
    v = _plain_integer(value)
    if v is None:
        raise TypeError(f"{name} is a whole number, not {value!r} ({type(value).__name__})")
    if (low is not None and v < low) or (high is not None and v > high):
        if low is not None and high is not None:
            wanted = f"{low}..{high}"
        elif low is not None:
            wanted = f">= {low}"
        else:
            wanted = f"<= {high}"
        raise ValueError(f"{name} {v} is out of range: it must be {wanted}")
    return v


def number(value: Any, name: str, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, unit: str = "") -> float:
    """A finite real number in [low, high] ((low, high] with ``low_open``). `unit` is
    added to an out-of-range message, e.g. ``"[0, 1] pixels: 8/255 = 0.031"``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)) \
            and not (isinstance(value, torch.Tensor) and value.dim() == 0):
        raise TypeError(f"{name} is a number, not {value!r} ({type(value).__name__})")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, not {v}")
    below = low is not None and (v <= low if low_open else v < low)
    above = high is not None and v > high
    if below or above:
        left = "(" if low_open else "["
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        tail = f" ({unit})" if unit else ""
        raise ValueError(f"{name} {v:g} is out of range: it must be in {left}{lo}, {hi}]{tail}")
    return v


def fraction(value: Any, name: str) -> float:
    """A number in [0, 1]: a share, a probability, a budget in pixel units."""
    return number(value, name, low=0.0, high=1.0)


def percentile(value: Any, name: str) -> float:
    """A percentile in [0, 100] (0 switches a percentile threshold off)."""
    return number(value, name, low=0.0, high=100.0)


def choice(value: Any, name: str, options: Sequence[str]) -> str:
    """One of a few named options."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(repr(o) for o in options)}, not {value!r}")
    return value


def layer(net, name: Any) -> str:
    """A layer of `net` by its readable name (the message lists the layers it has)."""
    return network(net).check_layer(name)


def channel(net, layer_name: str, value: Any, *, channels: int | None = None) -> int:
    """A channel index of `layer_name`: ``channel 300 is out of range: conv5 has channels 0..255``.

    ``channels`` saves a forward pass when the caller already knows the count (then
    `net` may be None: a result that knows its layer checks without the network)."""
    if net is not None:
        layer(net, layer_name)
    v = _plain_integer(value)
    if v is None:
        raise TypeError(f"channel is a whole number, not {value!r} ({type(value).__name__})")
    count = channels if channels is not None else net.layer_shape(layer_name)[0]
    if not 0 <= v < count:
        raise ValueError(f"channel {v} is out of range: {layer_name} has channels 0..{count - 1}")
    return v


def index(value: Any, name: str, count: int, of: str) -> int:
    """An index into `count` things: ``query 12 is out of range: the set has items 0..9``
    (`of` says what has them, e.g. ``"the set has items"``)."""
    v = _plain_integer(value)
    if v is None:
        raise TypeError(f"{name} is a whole number, not {value!r} ({type(value).__name__})")
    if not 0 <= v < count:
        raise ValueError(f"{name} {v} is out of range: {of} 0..{count - 1}")
    return v


def position(value: Any, size: tuple[int, int], what: str = "position") -> tuple[int, int]:
    """A (row, col) inside a rows x cols map."""
    try:
        row, col = value
    except (TypeError, ValueError):
        raise TypeError(f"{what} is a (row, col) pair, not {value!r}") from None
    rows, cols = size
    row = integer(row, f"{what} row", low=0, high=rows - 1)
    col = integer(col, f"{what} col", low=0, high=cols - 1)
    return row, col


def pixels(x: torch.Tensor, name: str = "image") -> torch.Tensor:
    """A float tensor of pixels: finite values in [0, 1] (what the optimisation
    techniques start from and stay in)."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} is a float tensor of [0, 1] pixels, not {type(x).__name__}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} has NaN or infinite values")
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > 1:
        raise ValueError(f"{name} must hold pixels in [0, 1]; its values go from {low:.3g} to {high:.3g}"
                         f"{_pixel_fix(low, high)}")
    return x


def _pixel_fix(low: float, high: float) -> str:
    """What to do about pixels outside [0, 1], by what they look like."""
    if low >= 0 and high > 2:
        return ": pixels are in [0, 1]: divide by 255 (x / 255)"
    if low < 0:
        return (": pixels are in [0, 1], not normalised: the network normalises inside, so give the image "
                "before transforms.Normalize (or clamp it to [0, 1])")
    return ": clamp it to [0, 1]"


def pixel_band(x: torch.Tensor, name: str, band: tuple[float, float]) -> torch.Tensor:
    """Pixels that are [0, 1] pixels, give or take some noise: values inside `band`
    (a noisy copy of an image passes; an image in 0..255, or one normalised with
    ImageNet's statistics, does not: the message says what to do)."""
    low, high = float(x.min()), float(x.max())
    if low < band[0] or high > band[1]:
        raise ValueError(f"{name} has values from {low:.3g} to {high:.3g}{_pixel_fix(low, high)}")
    return x


def network(net: Any, what: str = "this technique"):
    """`net` if it is the kit's `Network`; a bare PyTorch module (or anything else) is
    refused with the one call that makes it one."""
    if hasattr(net, "as_batch") and hasattr(net, "layers"):
        return net
    if isinstance(net, torch.nn.Module):
        raise TypeError(f"{what} takes a Network, not a bare {type(net).__name__} module: wrap it with "
                        f"load_model(model, classes=...) (from cnnviz_widgets), which finds its layers, "
                        f"input size and preprocessing")
    raise TypeError(f"{what} takes a Network (from load_model(...)), not {type(net).__name__}")
