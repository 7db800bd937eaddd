"""Lesson 01's exercise, `filter_tiles`: the inputs it is tried on and the mistakes its checker names."""

from __future__ import annotations

import torch

from ...engine.inspect.filters import first_layer_filters
from ..checker import Case, Mistake
from ..fixtures import shapes_net, effnet, seeded
from ..kinds import NumericChecker

__all__ = ["FilterTilesChecker"]


def _minmax(w, dims, guard=False):
    lo, hi = w.amin(dim=dims, keepdim=True), w.amax(dim=dims, keepdim=True)
    return (w - lo) / ((hi - lo).clamp_min(1e-12) if guard else (hi - lo))


class FilterTilesChecker(NumericChecker):
    name = "filter_tiles"
    models = ("shapes", "efficientnet_lite0")
    arg_names = ("weights",)
    wanted = "the same shape as the weights, C x 3 x k x k"
    rtol = 1e-5
    mistakes = (
        Mistake("global", "one scale for all filters",
                "You scaled all the filters together, with one minimum and one maximum for the whole bank. "
                "Each filter needs its own: take min and max over dims (1, 2, 3) with keepdim=True.",
                lambda c: _minmax(c.args[0], (0, 1, 2, 3))),
        Mistake("per_channel", "one scale per colour channel",
                "You scaled each colour channel of each filter on its own (min/max over the k x k weights "
                "only). That changes the filter's colours: red, green and blue of one filter must share "
                "one scale. Take min and max over dims (1, 2, 3).",
                lambda c: _minmax(c.args[0], (2, 3))),
        Mistake("flat_filter", "a flat filter gives 0/0",
                "A filter whose weights are all equal has max - min = 0, and your division gives NaN for it. "
                "Guard the denominator, e.g. `(hi - lo).clamp_min(1e-12)`, so a flat filter becomes 0.",
                lambda c: _minmax(c.args[0], (1, 2, 3))),
        Mistake("max_only", "divided by the maximum without subtracting the minimum",
                "You divided each filter by its maximum but did not subtract its minimum first, so negative "
                "weights stay negative. Min-max scaling is (w - min) / (max - min).",
                lambda c: c.args[0] / c.args[0].amax(dim=(1, 2, 3), keepdim=True)),
        Mistake("no_range", "subtracted the minimum but did not divide by the range",
                "You subtracted each filter's minimum but did not divide by max - min, so the largest value "
                "is the range, not 1.",
                lambda c: c.args[0] - c.args[0].amin(dim=(1, 2, 3), keepdim=True)),
        Mistake("symmetric", "0 drawn as grey (the kit's drawing), not min-max",
                "You mapped 0 to 0.5 and scaled by the largest |weight|: the kit's own `filter_grid` drawing. "
                "This exercise asks for min-max scaling: the smallest weight of each filter becomes 0 and the "
                "largest 1.",
                lambda c: c.args[0] / (2 * c.args[0].abs().amax(dim=(1, 2, 3), keepdim=True)) + 0.5),
        Mistake("clamped", "clamped instead of scaled",
                "You clamped the weights to [0, 1] instead of stretching each filter's range onto [0, 1].",
                lambda c: c.args[0].clamp(0, 1)),
    )

    def build_cases(self):
        g = seeded(101)
        flat = torch.randn(5, 3, 4, 4, generator=g)
        flat[2] = 0.3
        offset = torch.randn(6, 3, 7, 7, generator=g) * 0.5 + 2.0
        cases = [
            Case("the shapes net's conv1 filters (32 x 3 x 9 x 9)", (first_layer_filters(shapes_net()).weights,)),
            Case("EfficientNet-Lite0's stem filters (32 x 3 x 3 x 3)", (first_layer_filters(effnet()).weights,)),
            Case("random filters 6 x 3 x 7 x 7, all weights positive", (offset,)),
            Case("random filters 5 x 3 x 4 x 4, filter 2 flat (all weights 0.3)", (flat,)),
            Case("one random 1 x 1 filter (1 x 3 x 1 x 1)", (torch.randn(1, 3, 1, 1, generator=g),)),
        ]
        for c in cases:
            c.expected = _minmax(c.args[0], (1, 2, 3), guard=True)  # per filter; a flat one becomes 0
        return cases

    def properties(self, value, case):
        if value.shape == case.expected.shape and torch.isfinite(value).all() and (value.min() < -1e-6 or value.max() > 1 + 1e-6):
            return ("range", "values outside [0, 1]",
                    f"Your tiles range from {float(value.min()):.4g} to {float(value.max()):.4g}; each filter "
                    "should run from exactly 0 (its smallest weight) to 1 (its largest).")
        return None
