"""Regularisers of the optimisation loop (engine/optimize/regularizers.py) and the one
Gaussian blur (engine/blur.py), including Yosinski et al. 2015's two clipping
regularisers, tested against brute force on a network where the linearisation is exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnviz_widgets.engine.optimize import ascent
from cnnviz_widgets.engine.core.blur import gaussian_blur
from cnnviz_widgets.engine.core.network import Network
from cnnviz_widgets.engine.optimize import (ClipContribution, ClipNorm, FourierParam, PixelParam, optimize_iter)
from cnnviz_widgets.engine.optimize import objectives as O
from tests.helpers import assert_restored


def random_image(seed=0, size=16):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, size, size, generator=g)


def linear_network(seed=0) -> Network:
    """A network that is one 3x3 convolution: its channel means are affine in the pixels,
    so a first-order estimate of a pixel's contribution is exact."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    return Network("linear", model, {"conv": "0", "logits": "3"}, ["a", "b"], mean=(0.5, 0.5, 0.5),
                   std=(0.25, 0.25, 0.25), input_size=16, resize_size=16)


def greyed(before: torch.Tensor, after: torch.Tensor) -> np.ndarray:
    """H x W: the pixels the regulariser set to grey; every other pixel must be untouched."""
    grey = (after[0] == 0.5).all(dim=0)
    unchanged = (after[0] == before[0]).all(dim=0)
    assert bool((grey | unchanged).all()), "a pixel was changed to something other than grey"
    return grey.numpy()


@pytest.mark.parametrize("percentile", [10, 37.5, 80])
def test_clip_norm_greys_exactly_the_pixels_of_smallest_colour_norm(percentile):
    x = random_image(1)
    param = PixelParam(x)
    ClipNorm(percentile).after_step(param, 1, None)
    out = param.image().detach()
    norms = (x[0] - 0.5).norm(dim=0).flatten().numpy()
    expected = norms < np.percentile(norms, percentile)
    assert np.array_equal(greyed(x, out).flatten(), expected)
    assert abs(expected.mean() - percentile / 100) <= 1 / norms.size


def test_clip_contribution_matches_brute_force_on_a_linear_network():
    # Yosinski et al.'s definition: a pixel's contribution is how much the objective
    # changes when that pixel is set to "zero" (grey here). On a linear network the
    # linearised estimate |sum_c (x - 0.5) * grad| is exact, so the greyed pixels must be
    # the ones whose greying, tried one by one, changes the objective least.
    net = linear_network()
    objective = O.channel("conv", 1)
    x = random_image(2)

    def value(image):
        with torch.no_grad():
            return float(objective({"conv": net.forward_to(image, "conv")})[0])

    image = x.clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(objective({"conv": net.forward_to(image, "conv")})[0], image)
    base = value(x)
    change = np.zeros((16, 16))
    for r in range(16):
        for c in range(16):
            y = x.clone()
            y[0, :, r, c] = 0.5
            change[r, c] = abs(value(y) - base)
    param = PixelParam(x)
    with assert_restored(net):
        ClipContribution(25).after_step(param, 1, grad)
    threshold = np.percentile(change, 25)
    got = greyed(x, param.image().detach())
    assert abs(got.mean() - 0.25) <= 1 / got.size
    # The same pixels, but for a float near-tie at the threshold (relative to its scale).
    mismatch = got != (change < threshold)
    assert mismatch.sum() <= 2 and np.all(np.abs(change[mismatch] - threshold) <= 1e-3 * threshold)


def test_clip_contribution_in_the_loop_greys_its_share_and_the_class_still_rises(effnet):
    start = ascent.visualize_class(effnet, 1, size=64, steps=0).image
    r = ascent.visualize_class(effnet, 1, size=64, steps=6, clip_contribution_percentile=40,
                               clip_norm_percentile=20, blur_sigma=0)
    grey = (r.image[0] == 0.5).all(dim=0).float().mean()
    assert 0.39 <= float(grey) <= 0.5  # the contribution share; the norm clip's pixels are among them
    with torch.no_grad():
        assert float(effnet(r.image)[0, 1]) > float(effnet(start)[0, 1])


def test_clipping_needs_pixels_and_a_percentile(effnet):
    fourier = FourierParam(32)
    for reg in (ClipNorm(10), ClipContribution(10)):
        with pytest.raises(ValueError, match="works on pixels"):
            optimize_iter(effnet, O.class_score(1), fourier, steps=2, step_size=0.05, regularizers=[reg])
    with pytest.raises(ValueError, match="clip_norm_percentile 120 is out of range"):
        ClipNorm(120)
    with pytest.raises(ValueError, match="clip_contribution_percentile -1 is out of range"):
        ascent.visualize_class(effnet, 1, size=64, steps=1, clip_contribution_percentile=-1)


@pytest.mark.parametrize("sigma", [1.0, 2.5, 4.0])
def test_the_one_blur_equals_torchvisions_at_occlusions_kernel_size(sigma):
    # Occlusion's "blur" fill uses the engine's blur with a kernel of 2 * int(2 sigma) + 1:
    # the same picture as torchvision's blur, which it used before.
    from torchvision.transforms.functional import gaussian_blur as tv_blur

    x = random_image(3, size=40)
    radius = int(2 * sigma)
    ours = gaussian_blur(x, sigma, radius=radius)
    theirs = tv_blur(x, [2 * radius + 1, 2 * radius + 1], [sigma, sigma])
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6 * float(x.abs().max()))


def test_blur_keeps_a_flat_image_and_the_mean_and_checks_sigma():
    flat = torch.full((1, 3, 9, 9), 0.3)
    assert torch.allclose(gaussian_blur(flat, 1.5), flat, rtol=1e-6)
    x = random_image(4, size=24)
    y = gaussian_blur(x, 1.0)
    assert y.shape == x.shape and float(y.std()) < float(x.std())
    assert float(y.mean()) == pytest.approx(float(x.mean()), rel=0.02)
    with pytest.raises(ValueError, match="sigma 0 is out of range"):
        gaussian_blur(x, 0)
