"""Lesson 05's exercise, `receptive_field`: the inputs it is tried on and the mistakes its checker names."""

from __future__ import annotations

import numpy as np
import torch

from ..checker import Case, Checker, Mistake
from ..result import failure

__all__ = ["ReceptiveFieldChecker"]


ALEXNET_CONV5 = [(11, 4, 2), (3, 2, 0), (5, 1, 2), (3, 2, 0), (3, 1, 1), (3, 1, 1), (3, 1, 1)]
SHAPES_CONV5 = [(9, 3, 4), (3, 2, 1), (5, 1, 2), (3, 2, 1), (3, 1, 1), (3, 1, 1), (3, 1, 1)]
VGG16_CONV5_3 = ([(3, 1, 1)] * 2 + [(2, 2, 0)] + [(3, 1, 1)] * 2 + [(2, 2, 0)] + [(3, 1, 1)] * 3 + [(2, 2, 0)]
                 + [(3, 1, 1)] * 3 + [(2, 2, 0)] + [(3, 1, 1)] * 3)


def _field(layers, update_first=False, use_padding=False, accumulate=True, start=1):
    size, jump = start, 1
    for k, s, p in layers:
        if update_first:
            jump *= s
        size += (k - 1 + (2 * p if use_padding else 0)) * (jump if accumulate else 1)
        if not update_first:
            jump *= s
    return size, jump


class ReceptiveFieldChecker(Checker):
    name = "receptive_field"
    arg_names = ("layers",)
    mistakes = (
        Mistake("stride_first", "the stride multiplied in before the kernel is added",
                "You updated the stride before adding the layer's kernel. A layer's kernel spans pixels of "
                "*its input*, whose units are `stride` (the product of the strides *below* it) input pixels "
                "apart: add (kernel - 1) * stride first, then multiply the stride by this layer's.",
                lambda c: _field(c.args[0], update_first=True)),
        Mistake("no_strides", "the strides were ignored",
                "You added up (kernel - 1) without multiplying by the distance between the input's units. "
                "After a stride-4 layer, one step of a 3 x 3 kernel moves 4 input pixels: add "
                "(kernel - 1) * stride, where stride is the product of all strides so far.",
                lambda c: (_field(c.args[0], accumulate=False)[0], _field(c.args[0])[1])),
        Mistake("padding", "the padding was counted",
                "You added the padding to the field. Padding adds zeros around the input; it does not "
                "widen what one unit sees (it only shifts where the field sits).",
                lambda c: _field(c.args[0], use_padding=True)),
        Mistake("start_zero", "off by one: the field started at 0",
                "Your size is one too small. Before any layer, one unit (a pixel) sees 1 pixel: start the "
                "size at 1, not 0.",
                lambda c: _field(c.args[0], start=0)),
        Mistake("last_stride", "the stride is not accumulated",
                "Your stride is only the last layer's own stride. Units of a layer are as far apart as the "
                "product of all the strides up to and including it.",
                lambda c: (_field(c.args[0])[0], c.args[0][-1][1] if c.args[0] else 1)),
    )

    def build_cases(self):
        cases = [
            Case("AlexNet up to conv5 (conv 11/4, pool 3/2, conv 5/1, pool 3/2, conv 3/1 x 3)", (ALEXNET_CONV5,)),
            Case("the shapes net up to conv5 (conv 9/3, pool 3/2, conv 5/1, pool 3/2, conv 3/1 x 3)", (SHAPES_CONV5,)),
            Case("VGG16 up to conv5_3 (13 convolutions 3/1, 4 poolings 2/2)", (VGG16_CONV5_3,)),
            Case("two 1 x 1 layers of stride 2, then a 3 x 3 convolution", ([(1, 2, 0), (1, 2, 0), (3, 1, 1)],)),
            Case("no layers at all (the input itself)", ([],)),
        ]
        for c in cases:
            c.expected = _field(c.args[0])  # the recurrence, no slip
        return cases

    def convert(self, output, case, given):
        if isinstance(output, (int, np.integer)) or (isinstance(output, torch.Tensor) and output.numel() == 1):
            raise failure("one_number", "one number instead of two",
                        "Your function returns one number; return the pair `(size, stride)`.")
        try:
            values = [v.item() if hasattr(v, "item") else v for v in output]
        except TypeError:
            raise failure("type", "the result is not a pair",
                        f"Your function returned a {type(output).__name__}; return the pair `(size, stride)`.") from None
        if len(values) != 2:
            raise failure("type", "the result is not a pair", f"Your function returned {len(values)} values; return "
                        "the pair `(size, stride)`.")
        if not all(isinstance(v, (int, float, np.number)) and float(v) == int(v) for v in values):
            raise failure("type", "the result is not two whole numbers", f"Your function returned {values!r}; both "
                        "the size and the stride are whole numbers of pixels.")
        return tuple(int(v) for v in values)

    def compare(self, value, expected, case):
        if tuple(value) == tuple(expected):
            return None
        return f"You get (size, stride) = {tuple(value)}; the reference {tuple(expected)}."

    def matches(self, value, wrong, case):
        return tuple(value) == tuple(wrong)

    def generic(self, value, case):
        if tuple(value) == tuple(case.expected)[::-1]:
            return ("swapped", "size and stride swapped", "You returned (stride, size); return (size, stride).")
        return None
