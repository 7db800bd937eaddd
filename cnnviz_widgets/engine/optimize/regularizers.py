"""Regularisers: what keeps an optimised image looking like an image.

Two kinds, one interface (`Regularizer`):

- loss terms, added to the objective (``penalty(image)``): `L2` decay,
  `TotalVariation`, `AlphaNorm`;
- operators applied to the pixels after each step (``after_step``): `Blur`, `Clip`,
  `LinfBall`, `ClipNorm`, `ClipContribution`.

Yosinski, Clune, Nguyen, Fuchs & Lipson 2015 ("Understanding Neural Networks Through
Deep Visualization", arXiv:1506.06579) use four, all here: L2 decay, Gaussian blur,
clipping pixels with small norm and clipping pixels with small contribution.
Mahendran & Vedaldi 2015 ("Understanding Deep Image Representations by Inverting
Them", arXiv:1412.0035) use total variation and the alpha-norm; Madry et al. 2018
("Towards Deep Learning Models Resistant to Adversarial Attacks", arXiv:1706.06083)
project into the L-inf ball.

"Zero" in these papers is the mean image, since their pixels are mean-subtracted; the
network here takes [0, 1] pixels, so decay and clipping go towards mid-grey (0.5).
"""

from __future__ import annotations

import torch

from ..core import checks
from ..core.blur import gaussian_blur
from .param import PixelParam

__all__ = ["Regularizer", "L2", "TotalVariation", "AlphaNorm", "Blur", "Clip", "LinfBall", "GreyBelowPercentile",
           "ClipNorm", "ClipContribution", "GREY"]

GREY = 0.5  # the "zero" image of [0, 1] pixels


class Regularizer:
    """A loss term (`penalty`) and/or an operator on the pixels after each step
    (`after_step`). `needs_gradient`: the loop passes the step's gradient with respect
    to the image to `after_step` (computed only when some regulariser asks for it)."""

    name = ""
    needs_gradient = False

    def check(self, param) -> None:
        """Raise ValueError if this regulariser cannot work on `param` (asked before the run)."""

    def penalty(self, image: torch.Tensor) -> torch.Tensor | None:
        return None

    def after_step(self, param, step: int, gradient: torch.Tensor | None) -> None:
        pass


def _pixels_of(param, what: str) -> PixelParam:
    if not isinstance(param, PixelParam):
        raise ValueError(f"{what} works on pixels: use PixelParam (the Fourier parametrisation is smooth already)")
    return param


class L2(Regularizer):
    """L2 decay towards mid-grey (Simonyan et al. 2014; Yosinski et al. 2015 decay the
    image by a factor each step, here a loss term so it works with any optimiser):
    weight * mean((x - 0.5)^2)."""

    name = "L2"

    def __init__(self, weight: float):
        self.weight = checks.number(weight, "L2 weight", low=0.0)

    def penalty(self, image):
        return self.weight * (image - GREY).pow(2).mean() if self.weight else None


class TotalVariation(Regularizer):
    """Mean of (dx^2 + dy^2)^(beta/2): penalises high-frequency noise (Mahendran &
    Vedaldi's V^beta)."""

    name = "TV"

    def __init__(self, weight: float, beta: float = 2.0):
        self.weight = checks.number(weight, "TV weight", low=0.0)
        self.beta = checks.number(beta, "TV beta", low=0.0, low_open=True)

    def penalty(self, image):
        if not self.weight:
            return None
        dy = image[..., 1:, :-1] - image[..., :-1, :-1]
        dx = image[..., :-1, 1:] - image[..., :-1, :-1]
        return self.weight * (dx * dx + dy * dy + 1e-8).pow(self.beta / 2).mean()


class AlphaNorm(Regularizer):
    """Mean of |2 (x - 0.5)|^alpha (alpha = 6 in Mahendran & Vedaldi): keeps pixels from
    drifting to extreme values without touching moderate ones."""

    name = "alpha"

    def __init__(self, weight: float, alpha: float = 6.0):
        self.weight = checks.number(weight, "alpha-norm weight", low=0.0)
        self.alpha = checks.number(alpha, "alpha", low=0.0, low_open=True)

    def penalty(self, image):
        return self.weight * (2 * (image - GREY)).abs().pow(self.alpha).mean() if self.weight else None


class Blur(Regularizer):
    """Gaussian-blur the pixels every `every` steps (Yosinski et al. 2015): trades
    sharpness for fewer high frequencies. Needs a `PixelParam`."""

    name = "blur"

    def __init__(self, every: int = 4, sigma: float = 0.5):
        self.every = checks.integer(every, "blur every", low=1)
        self.sigma = checks.number(sigma, "blur sigma", low=0.0)

    def check(self, param):
        if self.sigma > 0:
            _pixels_of(param, "Blur")

    def after_step(self, param, step, gradient):
        if self.sigma <= 0 or step % self.every:
            return
        pixels = _pixels_of(param, "Blur")
        pixels.set_image(gaussian_blur(pixels.image().detach(), self.sigma))


class Clip(Regularizer):
    """Clamp the pixels to [lo, hi] after each step (the valid range by default)."""

    name = "clip"

    def __init__(self, lo: float = 0.0, hi: float = 1.0):
        self.lo, self.hi = checks.fraction(lo, "clip low"), checks.fraction(hi, "clip high")

    def after_step(self, param, step, gradient):
        if isinstance(param, PixelParam):
            param.set_image(param.image().detach().clamp(self.lo, self.hi))


class LinfBall(Regularizer):
    """Project the pixels back into the L-inf ball of radius `eps` around `center`
    (and into [0, 1]): the budget of projected gradient descent (Madry et al. 2018)."""

    name = "Linf"

    def __init__(self, center: torch.Tensor, eps: float):
        self.center = center.detach()
        self.eps = checks.fraction(eps, "eps")

    def after_step(self, param, step, gradient):
        x = param.image().detach()
        c = self.center.to(x)
        param.set_image(torch.max(torch.min(x, c + self.eps), c - self.eps).clamp(0, 1))


class GreyBelowPercentile(Regularizer):
    """After each step, set to grey every pixel whose `score` is below the
    `percentile`-th percentile of its image's scores (0 = off). Yosinski et al. 2015's
    two clippings are this with two scores; a pixel image only (a Fourier image has no
    pixels to clip)."""

    setting = "percentile"  # the keyword a learner sets, named in the error messages

    def __init__(self, percentile: float):
        self.percentile = checks.percentile(percentile, self.setting)

    def score(self, image: torch.Tensor, gradient: torch.Tensor | None) -> torch.Tensor:
        """N x H x W: how much each pixel matters (low scores are greyed)."""
        raise NotImplementedError

    def check(self, param):
        if self.percentile:
            _pixels_of(param, type(self).__name__)

    def after_step(self, param, step, gradient):
        if not self.percentile:
            return
        pixels = _pixels_of(param, type(self).__name__)
        image = pixels.image().detach()
        flat = self.score(image, gradient).flatten(1)
        threshold = torch.quantile(flat.float(), self.percentile / 100, dim=1, keepdim=True).to(flat)
        small = (flat < threshold).view(image.shape[0], 1, *image.shape[2:])  # the same for every colour
        pixels.set_image(torch.where(small, torch.full_like(image, GREY), image))


class ClipNorm(GreyBelowPercentile):
    """Yosinski et al. 2015's "clipping pixels with small norm": after each step, every
    pixel whose colour vector (x - 0.5 over R, G, B) has a norm below the `percentile`-th
    percentile of the image is set to grey. Only the pixels that matter keep a colour,
    so the picture shows the object and not a texture over the whole canvas."""

    name = "clip norm"
    setting = "clip_norm_percentile"

    def score(self, image, gradient):
        return (image - GREY).norm(dim=1)


class ClipContribution(GreyBelowPercentile):
    """Yosinski et al. 2015's "clipping pixels with small contribution": after each
    step, every pixel whose contribution is below the `percentile`-th percentile of the
    image is set to grey.

    A pixel's contribution is how much the objective would change if the pixel were
    set to grey. Measuring it takes one forward pass per pixel, so, as in the paper,
    it is linearised around the image: |sum over colours of (x - 0.5) * gradient|,
    with the gradient of the step's loss with respect to the image.
    """

    name = "clip contribution"
    setting = "clip_contribution_percentile"

    @property
    def needs_gradient(self) -> bool:
        return bool(self.percentile)

    def score(self, image, gradient):
        if gradient is None:
            raise ValueError("ClipContribution needs the step's gradient: run it in optimize_iter")
        return ((image - GREY) * gradient.to(image)).sum(dim=1).abs()
