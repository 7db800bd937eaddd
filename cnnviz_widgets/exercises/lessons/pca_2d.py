"""Lesson 03's exercise, `pca_2d`: the inputs it is tried on and the mistakes its checker names."""

from __future__ import annotations

import torch

from ..checker import Case, Mistake
from ..comparison import as_array, check_finite, check_shape, generic_numeric, relative_difference, tensors_close
from ..fixtures import shapes_net, shape_image, seeded
from ..kinds import NumericChecker

__all__ = ["Pca2dChecker"]


def _svd_axes(x):
    return torch.linalg.svd(x, full_matrices=False)


def _aligned(value: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Each column of value with the sign that best matches reference's (axes are sign-free)."""
    signs = torch.sign((value * reference).sum(dim=0))
    signs[signs == 0] = 1
    return value * signs


class Pca2dChecker(NumericChecker):
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
                lambda c: _pca(c.args[0])[:, [1, 0]]),
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
                lambda c: _pca(_centred(c.args[0]) / _centred(c.args[0]).std(dim=0).clamp_min(1e-12))),
    )

    def build_cases(self):
        net = shapes_net()
        with torch.no_grad():
            fc7 = torch.cat([net.forward_to(shape_image(i, net.device)[0], "fc7").flatten(1) for i in range(20)]).cpu()
        g = seeded(303)
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
            c.expected = _pca(c.args[0])
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


def _pca(x):
    """The reference: the centred data on the first two right singular vectors, in float64."""
    centred = _centred(x.double())
    return centred @ _svd_axes(centred)[2][:2].T


def _centred(x):
    return x - x.mean(dim=0)


def _smallest(x):
    centred = _centred(x)
    values, vectors = torch.linalg.eigh(centred.T @ centred)
    return centred @ vectors[:, :2]
