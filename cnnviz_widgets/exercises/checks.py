"""The checkers: the inputs each exercise is tried on, and the mistakes each one names.

The reference answer is the model solution (`solutions.py`); the tests show that each
reference agrees with the kit's own technique where the engine has one. Inputs are
small and seeded: the embedded models (the shapes net at 64 x 64, EfficientNet-Lite0
at 64-96 px, non-square where a transposition would hide), the synthetic shapes, the
bundled photos, and random tensors with awkward shapes. A mistake is recognised when
the learner's answer equals, within the same tolerance, what that mistake computes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from . import solutions as S
from .lesson14 import LESSON14_CHECKERS
from .harness import (Case, Checker, Mistake, as_array, check_finite, check_shape, failure, generic_numeric,
                      relative_difference, tensors_close)

__all__ = ["CHECKERS", "checker"]


# --- inputs ---------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _net(name: str):
    from ..engine.zoo.models import load_model

    return load_model(name)


def _shapes_net():
    return _net("shapes")


def _effnet():
    return _net("efficientnet_lite0")


@lru_cache(maxsize=None)
def _shapes_items(seed: int = 2024, n: int = 20):
    from ..engine.zoo.data import load_dataset

    data = load_dataset("shapes", n=n, seed=seed)
    return [data[i] for i in range(n)], list(data.classes)


def _to_tensor(pil, device) -> torch.Tensor:
    a = np.asarray(pil.convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(a.copy()).permute(2, 0, 1)[None].to(device)


def _shape_image(i: int, device):
    items, classes = _shapes_items()
    item = items[i]
    return _to_tensor(item.image, device), int(item.label), classes[item.label]


def _photo(name: str, height: int, width: int, device) -> torch.Tensor:
    from PIL import Image

    from ..engine.zoo.samples import sample_image

    return _to_tensor(sample_image(name).convert("RGB").resize((width, height), Image.BICUBIC), device)


def _predicted(net, x) -> list[int]:
    with torch.no_grad():
        return net(x)[0].argsort(descending=True).tolist()


def _class(net, i: int) -> str:
    return f"{i} ({net.classes[i]!r})"


def _grad(net, x, score) -> torch.Tensor:
    """d score(net(x), x) / dx for a copy of x (no hooks, the model untouched)."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(score(net(x), x), x)
    return g


def _layer_grad(net, x, layer, objective) -> torch.Tensor:
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(objective(net.forward_to(x, layer)), x)
    return g


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- shared comparisons ------------------------------------------------------------------------

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

    def judge(self, value, case):
        if any(self.compare(value, ok, case) is None for ok in self.accepted(case)):
            return
        super().judge(value, case)

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


# --- 01 filter_tiles ---------------------------------------------------------------------------

def _minmax(w, dims):
    lo, hi = w.amin(dim=dims, keepdim=True), w.amax(dim=dims, keepdim=True)
    return (w - lo) / (hi - lo)


class FilterTiles(NumericChecker):
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
        from ..engine.inspect.filters import first_layer_filters

        g = _gen(101)
        flat = torch.randn(5, 3, 4, 4, generator=g)
        flat[2] = 0.3
        offset = torch.randn(6, 3, 7, 7, generator=g) * 0.5 + 2.0
        cases = [
            Case("the shapes net's conv1 filters (32 x 3 x 9 x 9)", (first_layer_filters(_shapes_net()).weights,)),
            Case("EfficientNet-Lite0's stem filters (32 x 3 x 3 x 3)", (first_layer_filters(_effnet()).weights,)),
            Case("random filters 6 x 3 x 7 x 7, all weights positive", (offset,)),
            Case("random filters 5 x 3 x 4 x 4, filter 2 flat (all weights 0.3)", (flat,)),
            Case("one random 1 x 1 filter (1 x 3 x 1 x 1)", (torch.randn(1, 3, 1, 1, generator=g),)),
        ]
        for c in cases:
            c.expected = S.filter_tiles(c.args[0])
        return cases

    def properties(self, value, case):
        if value.shape == case.expected.shape and torch.isfinite(value).all() and (value.min() < -1e-6 or value.max() > 1 + 1e-6):
            return ("range", "values outside [0, 1]",
                    f"Your tiles range from {float(value.min()):.4g} to {float(value.max()):.4g}; each filter "
                    "should run from exactly 0 (its smallest weight) to 1 (its largest).")
        return None


# --- 02 nearest_neighbors -----------------------------------------------------------------------

def _cosine(features, query):
    return (features @ query) / (features.norm(dim=1) * query.norm())


class NearestNeighbors(IndexChecker):
    name = "nearest_neighbors"
    models = ("shapes",)
    arg_names = ("features", "query", "k")
    what = "indices"
    mistakes = (
        Mistake("farthest", "the farthest rows, not the nearest",
                "You returned the rows with the *lowest* cosine similarity. Similarity is high for neighbours: "
                "sort it in descending order (or, with distances 1 - similarity, ascending).",
                lambda c: _cosine(c.args[0], c.args[1]).argsort()[: c.args[2]]),
        Mistake("nearest_last", "the right neighbours, nearest last",
                "You found the k nearest rows but listed them from the k-th nearest to the nearest. Put the "
                "nearest first.",
                lambda c: _cosine(c.args[0], c.args[1]).argsort()[-c.args[2]:]),
        Mistake("l2", "Euclidean distance instead of cosine similarity",
                "You ranked the rows by Euclidean (L2) distance. Cosine similarity compares directions only: "
                "a row twice as long points the same way and is just as similar. Divide the dot product by "
                "both norms.",
                lambda c: (c.args[0] - c.args[1]).norm(dim=1).argsort()[: c.args[2]]),
        Mistake("dot", "dot product without normalising",
                "You ranked the rows by their dot product with the query, without dividing by the rows' "
                "norms: long rows win whatever their direction. Cosine similarity is "
                "f . q / (|f| |q|).",
                lambda c: (c.args[0] @ c.args[1]).argsort(descending=True)[: c.args[2]]),
    )

    def build_cases(self):
        net = _shapes_net()
        items, _ = _shapes_items()
        with torch.no_grad():
            fc7 = torch.cat([net.forward_to(_shape_image(i, net.device)[0], "fc7").flatten(1) for i in range(20)]).cpu()
        g = _gen(202)
        directions = torch.randn(30, 8, generator=g)
        lengths = torch.exp(torch.randn(30, 1, generator=g) * 1.5)
        wide = torch.randn(12, 130, generator=g)
        cases = [
            Case("fc7 features of 19 shapes (19 x 256), query: the features of a 20th, k = 5",
                 (fc7[:19], fc7[19], 5)),
            Case("30 random rows of very different lengths (30 x 8), k = 4",
                 (directions * lengths, torch.randn(8, generator=g) * 3, 4)),
            Case("7 random rows (7 x 3), k = 7 (all of them)", (torch.randn(7, 3, generator=g), torch.randn(3, generator=g), 7)),
            Case("12 random rows of 130 numbers, k = 1", (wide, torch.randn(130, generator=g), 1)),
        ]
        for c in cases:
            c.expected = [int(i) for i in S.nearest_neighbors(*c.args)]
        return cases

    def scores(self, case):
        return _cosine(case.args[0].double(), case.args[1].double())


# --- 03 pca_2d -----------------------------------------------------------------------------------

def _svd_axes(x):
    return torch.linalg.svd(x, full_matrices=False)


def _aligned(value: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Each column of value with the sign that best matches reference's (axes are sign-free)."""
    signs = torch.sign((value * reference).sum(dim=0))
    signs[signs == 0] = 1
    return value * signs


class Pca2d(NumericChecker):
    name = "pca_2d"
    models = ("shapes",)
    arg_names = ("features",)
    wanted = "N x 2"
    rtol = 1e-4
    mistakes = (
        Mistake("no_centring", "the data was not centred",
                "You projected the features without subtracting their mean first. PCA's axes are the "
                "directions of largest variance *around the mean*; without centring, the first axis points "
                "at the mean instead. Subtract `features.mean(dim=0)`.",
                lambda c: c.args[0] @ _svd_axes(c.args[0])[2][:2].T),
        Mistake("smallest_axes", "the axes of smallest variance",
                "You projected on the two directions of *smallest* variance. torch.linalg.eigh returns "
                "eigenvalues in ascending order: the principal axes are its last columns, largest first "
                "(svd's are already in descending order).",
                lambda c: _smallest(c.args[0])),
        Mistake("swapped_axes", "the two axes in the wrong order",
                "Your two columns are the right projections in the wrong order: the first column must be "
                "the axis of largest variance.",
                lambda c: S.pca_2d(c.args[0])[:, [1, 0]]),
        Mistake("columns_of_vt", "the columns of Vh instead of its rows",
                "You used the columns of the third result of svd. torch.linalg.svd returns Vh = V transposed: "
                "the principal axes are its *rows*, so project with `centred @ vt[:2].T`.",
                lambda c: _centred(c.args[0]) @ _svd_axes(_centred(c.args[0]))[2][:, :2]),
        Mistake("u_only", "the unit-length coordinates U, not the projection",
                "You returned the first two columns of U: the projections divided by their singular values, "
                "so both axes come out the same size. Multiply by the singular values (or project: "
                "`centred @ vt[:2].T`).",
                lambda c: _svd_axes(_centred(c.args[0]))[0][:, :2]),
        Mistake("standardised", "the features were standardised first",
                "You divided each feature by its standard deviation before PCA (a correlation PCA). This "
                "exercise keeps the features' own scales: only subtract the mean.",
                lambda c: S.pca_2d(_centred(c.args[0]) / _centred(c.args[0]).std(dim=0).clamp_min(1e-12))),
    )

    def build_cases(self):
        net = _shapes_net()
        with torch.no_grad():
            fc7 = torch.cat([net.forward_to(_shape_image(i, net.device)[0], "fc7").flatten(1) for i in range(20)]).cpu()
        g = _gen(303)
        rotation = torch.linalg.qr(torch.randn(6, 6, generator=g))[0]
        blob = (torch.randn(50, 6, generator=g) * torch.tensor([5.0, 3.0, 1.5, 1.0, 0.5, 0.2])) @ rotation + 10.0
        scaled = torch.randn(40, 5, generator=g) * torch.tensor([0.1, 4.0, 0.2, 2.0, 0.05])
        cases = [
            Case("50 random points in 6-D, stretched along rotated axes, centred far from 0", (blob,)),
            Case("40 random points in 5-D, features of very different scales", (scaled,)),
            Case("fc7 features of 20 shapes (20 x 256)", (fc7,)),
            Case("5 random points in 40-D (fewer points than dimensions)", (torch.randn(5, 40, generator=g) + 1,)),
        ]
        for c in cases:
            c.expected = S.pca_2d(c.args[0])
        return cases

    def compare(self, value, expected, case):
        expected = as_array(expected)
        if value.shape != expected.shape:
            return f"Your result has shape {tuple(value.shape)}, the reference {tuple(expected.shape)}."
        return relative_difference(_aligned(value, expected), expected, self.rtol)

    def matches(self, value, wrong, case):
        wrong = as_array(wrong)
        return value.shape == wrong.shape and tensors_close(_aligned(value, wrong), wrong, self.rtol)

    def generic(self, value, case):
        expected = as_array(case.expected)
        check_shape(value, expected, self.wanted)
        check_finite(value)
        return generic_numeric(_aligned(value, expected), expected, self.rtol)


def _centred(x):
    return x - x.mean(dim=0)


def _smallest(x):
    centred = _centred(x)
    values, vectors = torch.linalg.eigh(centred.T @ centred)
    return centred @ vectors[:, :2]


# --- 04 top_channels --------------------------------------------------------------------------

class TopChannels(IndexChecker):
    name = "top_channels"
    models = ("shapes", "efficientnet_lite0")
    arg_names = ("acts", "k")
    what = "channel indices"
    mistakes = (
        Mistake("max_not_mean", "ranked by the largest value, not the mean",
                "You ranked channels by their single strongest position (max). The exercise ranks them by "
                "their mean activation over all H x W positions: a channel that is moderately active "
                "everywhere beats one with a single bright spot.",
                lambda c: c.args[0].amax(dim=(1, 2)).argsort(descending=True)[: c.args[1]]),
        Mistake("weakest", "the weakest channels, not the strongest",
                "You returned the channels with the *smallest* mean activation. Sort in descending order.",
                lambda c: c.args[0].mean(dim=(1, 2)).argsort()[: c.args[1]]),
        Mistake("abs_mean", "ranked by the mean of |activation|",
                "You ranked by the mean of the absolute values. Activations can be negative (EfficientNet's "
                "stages end without a ReLU): rank by the plain mean.",
                lambda c: c.args[0].abs().mean(dim=(1, 2)).argsort(descending=True)[: c.args[1]]),
        Mistake("positions", "ranked positions, not channels",
                "You averaged over the channels and ranked the positions (the mean over dim 0). Average "
                "over the positions instead, `acts.mean(dim=(1, 2))`: one number per channel.",
                lambda c: c.args[0].mean(dim=0).flatten().argsort(descending=True)[: c.args[1]]),
        Mistake("wrong_axis", "averaged over the wrong dimensions",
                "You averaged over the channel dimension and one spatial dimension. acts is C x H x W: "
                "average over dims (1, 2) for one number per channel.",
                lambda c: c.args[0].mean(dim=(0, 2)).argsort(descending=True)[: c.args[1]]),
    )

    def build_cases(self):
        eff, shapes = _effnet(), _shapes_net()
        with torch.no_grad():
            stage6 = eff.forward_to(_photo("cat", 96, 96, eff.device), "stage6")[0].cpu()
            conv5 = shapes.forward_to(_shape_image(3, shapes.device)[0], "conv5")[0].cpu()
        g = _gen(404)
        spiky = torch.randn(7, 3, 5, generator=g) * 0.3
        spiky[4, 1, 2] = 9.0       # one bright spot: the largest max, a middling mean
        spiky[1] -= 2.0            # strongly negative: the largest mean |a|
        cases = [
            Case("EfficientNet-Lite0 stage6 activations of the cat photo at 96 px (192 x 3 x 3), k = 5", (stage6, 5)),
            Case("shapes net conv5 activations of a shape (64 x 4 x 4), k = 3", (conv5, 3)),
            Case("random 7 x 3 x 5 activations with one bright spot and one negative channel, k = 2", (spiky, 2)),
            Case("random 10 x 1 x 1 activations (a vector layer), k = 10 (all)", (torch.randn(10, 1, 1, generator=g), 10)),
        ]
        for c in cases:
            c.expected = [int(i) for i in S.top_channels(*c.args)]
        return cases

    def scores(self, case):
        return case.args[0].double().mean(dim=(1, 2))


# --- 05 receptive_field ------------------------------------------------------------------------

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


class ReceptiveField(Checker):
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
            c.expected = S.receptive_field(list(c.args[0]))
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


# --- 06 occlusion_map ---------------------------------------------------------------------------

def _occlude(net, image, target, patch, stride, fill=0.5, score="prob", cumulative=False, last=True):
    """What an occlusion loop with one of the known slips computes (all positions in one batch)."""
    h, w = image.shape[-2:]
    end = 1 if last else 0
    tops, lefts = range(0, h - patch + end, stride), range(0, w - patch + end, stride)
    value = image.mean() if fill == "mean" else fill
    copies, x = [], image.clone()
    for top in tops:
        for left in lefts:
            if not cumulative:
                x = image.clone()
            x[:, :, top:top + patch, left:left + patch] = value
            copies.append(x.clone() if cumulative else x)
    with torch.no_grad():
        logits = torch.cat([net(torch.cat(copies[i:i + 64])) for i in range(0, len(copies), 64)])
    scores = {"prob": logits.softmax(1), "logit": logits, "log_prob": logits.log_softmax(1)}[score][:, target]
    return scores.double().cpu().reshape(len(tops), len(lefts))


class OcclusionMap(NumericChecker):
    name = "occlusion_map"
    models = ("shapes", "efficientnet_lite0")
    arg_names = ("net", "image", "target", "patch", "stride")
    wanted = "rows x cols (one probability per patch position)"
    rtol = 1e-4
    mistakes = (
        Mistake("logit", "the logit instead of the probability",
                "Your map holds the target's logit (the score before the softmax). The exercise maps its "
                "probability: `net(x).softmax(dim=1)[0, target]`.",
                lambda c: _occlude(*c.args, score="logit")),
        Mistake("log_prob", "the log-probability instead of the probability",
                "Your map holds log P(target) (log_softmax). Take the softmax itself.",
                lambda c: _occlude(*c.args, score="log_prob")),
        Mistake("black", "a black patch instead of a grey one",
                "Your patch is black (0). Zeiler and Fergus used grey: fill it with 0.5, the middle of the "
                "[0, 1] pixel range.",
                lambda c: _occlude(*c.args, fill=0.0)),
        Mistake("mean_fill", "the image's mean colour instead of grey",
                "Your patch is filled with the image's mean; the exercise asks for plain grey, 0.5.",
                lambda c: _occlude(*c.args, fill="mean")),
        Mistake("cumulative", "the patches add up: the image is never restored",
                "Your patches accumulate: each position keeps the grey squares of the positions before it, so "
                "the map darkens towards the end. Start every position from a fresh copy, "
                "`x = image.clone()`, inside the loop.",
                lambda c: _occlude(*c.args, cumulative=True)),
        Mistake("drop", "the drop in probability instead of the probability",
                "Your map holds how much the probability *fell* (clean minus occluded). The exercise maps "
                "the probability itself.",
                lambda c: _clean_prob(c) - _occlude(*c.args)),
        Mistake("predicted_class", "the predicted class instead of `target`",
                "Your map follows the class the network predicts, not the `target` you were given.",
                lambda c: _occlude(c.args[0], c.args[1], c.extra["predicted"], *c.args[3:])),
        Mistake("missing_last", "the last row and column of positions are missing",
                "Your map is one position short in each direction: the last top-left corner that fits is "
                "height - patch, so the range must include it: `range(0, height - patch + 1, stride)`.",
                lambda c: _occlude(*c.args, last=False)),
    )

    def build_cases(self):
        shapes, eff = _shapes_net(), _effnet()
        a, label_a, name_a = _shape_image(1, shapes.device)
        b, label_b, _ = _shape_image(6, shapes.device)
        other = next(i for i in _predicted(shapes, b) if i != label_b)
        photo = _photo("coffee", 64, 96, eff.device)
        cases = [
            Case(f"the shapes net, a {name_a} (64 x 64), target {_class(shapes, label_a)}, patch 16, stride 8",
                 (shapes, a, label_a, 16, 8)),
            Case(f"the shapes net, another shape, target {_class(shapes, other)} (not the predicted class), "
                 "patch 20, stride 11", (shapes, b, other, 20, 11)),
            Case("EfficientNet-Lite0, the coffee photo at 64 x 96 (wider than high), its predicted class, "
                 "patch 32, stride 16", (eff, photo, _predicted(eff, photo)[0], 32, 16)),
        ]
        for c in cases:
            c.networks = (c.args[0],)
            c.extra["predicted"] = _predicted(c.args[0], c.args[1])[0]
            c.expected = S.occlusion_map(*c.args).double()
        return cases


def _clean_prob(case):
    with torch.no_grad():
        return float(case.args[0](case.args[1]).softmax(1)[0, case.args[2]])


# --- 07 saliency ----------------------------------------------------------------------------------

def _saliency(net, image, target, score="logit", reduce="max", absolute=True):
    def objective(logits, x):
        return {"logit": logits[0, target], "prob": logits.softmax(1)[0, target],
                "log_prob": logits.log_softmax(1)[0, target]}[score]

    g = _grad(net, image, objective)[0]
    g = g.abs() if absolute else g
    return {"max": g.amax(dim=0), "mean": g.mean(dim=0), "sum": g.sum(dim=0), "norm": g.norm(dim=0)}[reduce]


class Saliency(NumericChecker):
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
        shapes, eff = _shapes_net(), _effnet()
        a, label_a, name_a = _shape_image(2, shapes.device)
        b, label_b, _ = _shape_image(8, shapes.device)
        other = next(i for i in _predicted(shapes, b) if i != label_b)
        photo = _photo("cat", 64, 80, eff.device)
        cases = [
            Case(f"the shapes net, a {name_a} (64 x 64), target {_class(shapes, label_a)}", (shapes, a, label_a)),
            Case(f"the shapes net, another shape, target {_class(shapes, other)} (not the predicted class)",
                 (shapes, b, other)),
            Case("EfficientNet-Lite0, the cat photo at 64 x 80, its predicted class",
                 (eff, photo, _predicted(eff, photo)[0])),
        ]
        for c in cases:
            c.networks = (c.args[0],)
            c.extra["predicted"] = _predicted(c.args[0], c.args[1])[0]
            c.expected = S.saliency(*c.args).double()
        return cases


# --- 08 guided_relu_backward ---------------------------------------------------------------------

class GuidedReluBackward(NumericChecker):
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
        g = _gen(808)
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
            c.expected = S.guided_relu_backward(*c.args).double()
        return cases


def _real_relu_pair():
    net = _shapes_net()
    x = _shape_image(4, net.device)[0]
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


# --- 09 ascent_step ----------------------------------------------------------------------------------

def _ascent(net, image, target, lr, l2, direction=1.0, l2_sign=-1.0, centre=0.5, reduce="sum", score="logit",
            returned="image"):
    def objective(logits, x):
        s = {"logit": logits[0, target], "prob": logits.softmax(1)[0, target]}[score]
        penalty = (x - centre) ** 2
        return s + l2_sign * l2 * (penalty.sum() if reduce == "sum" else penalty.mean())

    g = _grad(net, image, objective)
    if returned == "gradient":
        return g
    return image + direction * lr * g


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


class AscentStep(StepChecker):
    name = "ascent_step"
    models = ("shapes", "efficientnet_lite0")
    arg_names = ("net", "image", "target", "lr", "l2")
    mistakes = (
        Mistake("descent", "a step down instead of up",
                "Your step goes *down* the objective. Gradient ascent adds the gradient: "
                "`image + lr * gradient`.",
                lambda c: _ascent(*c.args, direction=-1.0)),
        Mistake("no_l2", "the L2 penalty is missing",
                "Your step follows the logit alone: the penalty - l2 * sum((image - 0.5)^2) is missing "
                "from the objective.",
                lambda c: _ascent(*c.args, l2_sign=0.0)),
        Mistake("l2_sign", "the L2 penalty has the wrong sign",
                "Your objective *adds* l2 * sum((image - 0.5)^2), which rewards pixels far from grey. It is a "
                "penalty: subtract it.",
                lambda c: _ascent(*c.args, l2_sign=1.0)),
        Mistake("l2_towards_zero", "the L2 penalty pulls towards 0, not grey",
                "Your penalty is l2 * sum(image^2): it pulls pixels towards black. Here it pulls them towards "
                "mid-grey, sum((image - 0.5)^2).",
                lambda c: _ascent(*c.args, centre=0.0)),
        Mistake("l2_mean", "the L2 penalty is a mean, not a sum",
                "Your penalty averages over the pixels instead of summing them, so it is thousands of times "
                "too weak. The exercise's penalty is l2 * sum((image - 0.5)^2).",
                lambda c: _ascent(*c.args, reduce="mean")),
        Mistake("probability", "the probability instead of the logit",
                "You climbed the softmax probability. Simonyan et al. climb the logit (before the softmax): "
                "`net(x)[0, target]`.",
                lambda c: _ascent(*c.args, score="prob")),
    )

    def build_cases(self):
        shapes, eff = _shapes_net(), _effnet()
        a, label_a, name_a = _shape_image(5, shapes.device)
        grey = (0.5 + 0.05 * torch.randn(1, 3, 64, 64, generator=_gen(909))).clamp(0, 1).to(shapes.device)
        photo = _photo("rocket", 64, 64, eff.device)
        cases = [
            Case(f"the shapes net, a {name_a}, target {_class(shapes, label_a)}, lr 0.01, l2 0.1",
                 (shapes, a, label_a, 0.01, 0.1)),
            Case(f"the shapes net, a grey noisy start image, target {_class(shapes, 7)}, lr 0.02, l2 10",
                 (shapes, grey, 7, 0.02, 10.0)),
            Case("EfficientNet-Lite0, the rocket photo at 64 x 64, target 1 ('goldfish'), lr 0.05, l2 200",
                 (eff, photo, 1, 0.05, 200.0)),
            Case(f"the shapes net, a {name_a}, target {_class(shapes, label_a)}, a strong penalty: lr 0.0001, "
                 "l2 2000", (shapes, a, label_a, 1e-4, 2000.0)),
        ]
        for c in cases:
            c.networks = (c.args[0],)
            c.expected = S.ascent_step(*c.args).double().cpu()
            c.extra["gradient"] = _ascent(*c.args, returned="gradient")
        return cases


# --- 10 pgd_step ---------------------------------------------------------------------------------

def _ce(target):
    def loss(logits, x):
        return F.cross_entropy(logits, torch.tensor([target], device=logits.device))
    return loss


def _pgd(net, image, original, target, eps, alpha, direction=-1.0, clamp=True, project=True, score="ce",
         use_sign=True, step=None):
    if score == "ce":
        g = _grad(net, image, _ce(target))
    else:  # the target's logit: a step *up*
        g = -_grad(net, image, lambda logits, x: logits[0, target])
    x = image + direction * (alpha if step is None else step) * (g.sign() if use_sign else g)
    if project:
        x = torch.min(torch.max(x, original - eps), original + eps)
    return x.clamp(0, 1) if clamp else x


def _in_box(original, eps, seed, share_on_edge=0.5):
    """A point inside the box |x - original| <= eps (within [0, 1]), about half of its
    pixels on the box's edge, where the projection decides."""
    g = _gen(seed)
    offset = eps * (2 * torch.rand(original.shape, generator=g) - 1)
    edge = torch.rand(original.shape, generator=g) < share_on_edge
    offset = torch.where(edge, eps * offset.sign(), offset).to(original.device)
    return (original + offset).clamp(0, 1)


class PgdStep(StepChecker):
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
        shapes, eff = _shapes_net(), _effnet()
        a, label_a, name_a = _shape_image(7, shapes.device)
        target_a = next(i for i in _predicted(shapes, a)[1:])
        g = _gen(1010)
        saturated = (torch.rand(1, 3, 64, 64, generator=g) > 0.5).float()
        saturated[:, :, 20:44, 20:44] = 0.5 + 0.4 * torch.rand(1, 3, 24, 24, generator=g)
        saturated = saturated.to(shapes.device)
        photo = _photo("astronaut", 64, 64, eff.device)
        cat = _photo("cat", 48, 80, eff.device)
        cases = [
            Case(f"the shapes net, a {name_a} moved within its box, target {_class(shapes, target_a)}, eps 0.03, "
                 "alpha 0.01", (shapes, _in_box(a, 0.03, 1011), a, target_a, 0.03, 0.01)),
            Case(f"the shapes net, black and white pixels around a grey square, moved within the box, target "
                 f"{_class(shapes, 2)}, eps 0.1, alpha 0.04",
                 (shapes, _in_box(saturated, 0.1, 1012), saturated, 2, 0.1, 0.04)),
            Case("EfficientNet-Lite0, the astronaut photo at 64 x 64 moved within its box, target 1 ('goldfish'), "
                 "eps 8/255, alpha 2/255", (eff, _in_box(photo, 8 / 255, 1013), photo, 1, 8 / 255, 2 / 255)),
            Case("EfficientNet-Lite0, the cat photo at 48 x 80, the first step (image == original), target 1 "
                 "('goldfish'), eps 8/255, alpha 1/255", (eff, cat, cat, 1, 8 / 255, 1 / 255)),
        ]
        for c in cases:
            c.networks = (c.args[0],)
            c.extra["predicted"] = _predicted(c.args[0], c.args[1])[0]
            c.expected = S.pgd_step(*c.args).double().cpu()
            gradient = _grad(c.args[0], c.args[1], _ce(c.args[3])).double().cpu()
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


# --- 11 guided_dream_step -------------------------------------------------------------------------------

def _guided_dream(net, image, guide, layer, lr, wanted="guide", objective="guided", norm="mean_abs",
                  direction=1.0):
    with torch.no_grad():
        reference = net.forward_to(guide if wanted == "guide" else image, layer)
    means = reference.mean(dim=(2, 3), keepdim=True)
    objectives = {"guided": lambda a: (a * means).sum(),
                  "positions": lambda a: (a * reference).sum(),  # raises when the sizes differ
                  "square": lambda a: a.pow(2).sum() / 2}
    g = _layer_grad(net, image, layer, objectives[objective])
    scale = {"mean_abs": g.abs().mean(), "max_abs": g.abs().max(), "l2": g.norm(),
             "none": torch.tensor(1.0, device=g.device)}[norm]
    return image + direction * lr * g / scale


class GuidedDreamStep(StepChecker):
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
        shapes, eff = _shapes_net(), _effnet()
        a, label_a, name_a = _shape_image(9, shapes.device)
        b, _, name_b = next((_shape_image(i, shapes.device) for i in range(20)
                             if _shape_image(i, shapes.device)[1] != label_a))
        noise = torch.rand(1, 3, 48, 80, generator=_gen(1111)).to(eff.device)
        cases = [
            Case(f"the shapes net, a {name_a} guided by a {name_b} (both 64 x 64), layer 'conv3', lr 0.01",
                 (shapes, a, b, "conv3", 0.01)),
            Case("EfficientNet-Lite0, the cat photo at 64 x 64 guided by the astronaut at 80 x 96, layer 'stage4', "
                 "lr 0.02", (eff, _photo("cat", 64, 64, eff.device), _photo("astronaut", 80, 96, eff.device),
                             "stage4", 0.02)),
            Case("EfficientNet-Lite0, random noise 48 x 80 guided by the coffee photo at 64 x 64, layer 'stage2', "
                 "lr 0.05", (eff, noise, _photo("coffee", 64, 64, eff.device), "stage2", 0.05)),
        ]
        for c in cases:
            c.networks = (c.args[0],)
            c.expected = S.guided_dream_step(*c.args).double().cpu()
            net, image, guide, layer, _ = c.args
            with torch.no_grad():
                means = net.forward_to(guide, layer).mean(dim=(2, 3), keepdim=True)
            c.extra["gradient"] = _layer_grad(net, image, layer, lambda act: (act * means).sum())
        return cases


# --- 12 total_variation ---------------------------------------------------------------------------------

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


class TotalVariation(NumericChecker):
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
        g = _gen(1212)
        shape, _, name = _shape_image(0, torch.device("cpu"))
        cases = [
            Case(f"a shape image (a {name}, 1 x 3 x 64 x 64)", (shape,)),
            Case("the coffee photo at 40 x 24 (higher than wide)", (_photo("coffee", 40, 24, torch.device("cpu")),)),
            Case("random pixels, 1 x 3 x 5 x 9", (torch.rand(1, 3, 5, 9, generator=g),)),
            Case("random pixels, 1 x 3 x 2 x 2 (one pixel with both neighbours)", (torch.rand(1, 3, 2, 2, generator=g),)),
            Case("random pixels 1 x 3 x 6 x 7, which must get a gradient (TV is used as a loss)",
                 (torch.rand(1, 3, 6, 7, generator=g),), extra={"needs_grad": True}),
        ]
        for c in cases:
            c.expected = S.total_variation(c.args[0]).double()
            if c.extra.get("needs_grad"):
                x = c.args[0].clone().requires_grad_(True)
                (c.extra["gradient"],) = torch.autograd.grad(S.total_variation(x), x)
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


# --- 13 deletion_curve -----------------------------------------------------------------------------------

def _delete(net, image, target, heat, steps, descending=True, score="prob", channels=(0, 1, 2), fill=0.0,
            cumulative=True, swap=False):
    """What a deletion loop with one of the known slips computes (all steps in one batch)."""
    rows, cols = heat.shape
    n = rows * cols
    order = heat.flatten().argsort(descending=descending)
    copies = []
    for k in range(steps + 1):
        first = 0 if cumulative or k == 0 else (k - 1) * n // steps
        gone = order[first: k * n // steps]
        r, c = (gone % cols, gone // cols) if swap else (gone // cols, gone % cols)
        x = image.clone()
        for channel in channels:
            x[0, channel, r, c] = fill
        copies.append(x)
    with torch.no_grad():
        logits = net(torch.cat(copies))
    scores = {"prob": logits.softmax(1), "logit": logits, "log_prob": logits.log_softmax(1)}[score]
    return scores[:, target].double().cpu()


class DeletionCurve(NumericChecker):
    name = "deletion_curve"
    models = ("shapes", "efficientnet_lite0")
    arg_names = ("net", "image", "target", "heat", "steps")
    wanted = "steps + 1 probabilities"
    rtol = 1e-4
    mistakes = (
        Mistake("least_first", "the least important pixels deleted first",
                "You deleted the pixels with the *smallest* heat first. Deletion removes what the map says "
                "matters most first: sort in descending order, `heat.flatten().argsort(descending=True)`.",
                lambda c: _delete(*c.args, descending=False)),
        Mistake("logit", "the logit instead of the probability",
                "Your curve holds the target's logit. Deletion follows its probability (Petsiuk et al.), which "
                "keeps the area under the curve in [0, 1]: `net(x).softmax(dim=1)[0, target]`.",
                lambda c: _delete(*c.args, score="logit")),
        Mistake("log_prob", "the log-probability instead of the probability",
                "Your curve holds log P(target) (log_softmax). Take the softmax itself.",
                lambda c: _delete(*c.args, score="log_prob")),
        Mistake("one_channel", "only one colour channel deleted",
                "You set only one colour channel of each deleted pixel to 0; a deleted pixel is black in all "
                "three: `x[0, :, rows, cols] = 0`.",
                lambda c: _delete(*c.args, channels=(0,))),
        Mistake("grey", "pixels made grey instead of black",
                "Your deleted pixels are grey (0.5). The exercise makes them black: 0 in all three channels.",
                lambda c: _delete(*c.args, fill=0.5)),
        Mistake("not_cumulative", "each step deletes only its own pixels: the earlier ones come back",
                "At each step you deleted only the newest slice of pixels, and the ones deleted at the steps "
                "before were back. Step k deletes the first k * n // steps pixels of the order, all of them: "
                "start from a fresh copy of the image and delete `order[:k * n // steps]`.",
                lambda c: _delete(*c.args, cumulative=False)),
        Mistake("swapped", "rows and columns swapped when placing the pixels",
                "You turned a flat pixel index i into (i % W, i // W): column and row swapped. Row-major order "
                "puts pixel i at row i // W, column i % W.",
                lambda c: _delete(*c.args, swap=True)),
        Mistake("predicted_class", "the predicted class instead of `target`",
                "Your curve follows the class the network predicts, not the `target` you were given.",
                lambda c: _delete(c.args[0], c.args[1], c.extra["predicted"], *c.args[3:])),
    )

    def build_cases(self):
        shapes, eff = _shapes_net(), _effnet()
        items, _ = _shapes_items()
        g = _gen(1313)
        a, label_a, name_a = _shape_image(5, shapes.device)
        near_oracle = torch.from_numpy(items[5].mask.astype(np.float32)) + 0.01 * torch.rand(64, 64, generator=g)
        b, label_b, _ = _shape_image(9, shapes.device)
        other = next(i for i in _predicted(shapes, b) if i != label_b)
        photo = _photo("astronaut", 64, 80, eff.device)
        cases = [
            Case(f"the shapes net, a {name_a} (64 x 64), target {_class(shapes, label_a)}, heat = its mask "
                 "(plus a little noise), 8 steps", (shapes, a, label_a, near_oracle, 8)),
            Case(f"the shapes net, another shape, target {_class(shapes, other)} (not the predicted class), "
                 "heat = random noise, 5 steps (4096 pixels do not divide by 5)",
                 (shapes, b, other, torch.rand(64, 64, generator=g), 5)),
            Case("EfficientNet-Lite0, the astronaut photo at 64 x 80 (wider than high), its predicted class, "
                 "heat = random noise, 4 steps",
                 (eff, photo, _predicted(eff, photo)[0], torch.rand(64, 80, generator=g), 4)),
        ]
        for c in cases:
            c.networks = (c.args[0],)
            c.extra["predicted"] = _predicted(c.args[0], c.args[1])[0]
            c.expected = S.deletion_curve(*c.args).double()
        return cases


# --- the registry ---------------------------------------------------------------------------------------

from .lesson15 import UnitIou  # noqa: E402 - lesson 15's checker lives in its own module

CHECKERS: dict[str, type[Checker]] = {c.name: c for c in (
    FilterTiles, NearestNeighbors, Pca2d, TopChannels, ReceptiveField, OcclusionMap, Saliency,
    GuidedReluBackward, AscentStep, PgdStep, GuidedDreamStep, TotalVariation, DeletionCurve, UnitIou)}
CHECKERS.update(LESSON14_CHECKERS)  # lesson 14's checkers live in their own module

_INSTANCES: dict[str, Checker] = {}


def checker(name: str) -> Checker:
    """The (cached) checker of exercise `name`: its cases are built once per session."""
    if name not in _INSTANCES:
        _INSTANCES[name] = CHECKERS[name]()
    return _INSTANCES[name]
