"""Parametrisations: what the optimisation loop changes, and how it becomes an image.

A parametrisation owns the tensors being optimised (`parameters()`) and turns them
into a 1 x 3 x H x W image in [0, 1] (`image()`), as Lucent's ``param`` module does.
`PixelParam` is the pixels themselves (Simonyan et al. 2014, Yosinski et al. 2015,
every fooling and inversion run); `FourierParam` is Lucid's decorrelated Fourier
image (Olah, Mordvintsev & Schubert 2017, "Feature Visualization", Distill).

Both can optimise in Lucid's decorrelated colour space (`decorrelated_to_rgb`): ImageNet's
colours are strongly correlated (a pixel's R, G and B mostly move together), so a step
in plain RGB mostly changes brightness; in the decorrelated space each of the three
directions (luminance, then two colour-opponent axes) is scaled to its share of
ImageNet's colour variance, and a step changes colour as readily as brightness.
"""

from __future__ import annotations

import torch

from ..core import checks

__all__ = ["PARAMETRISATIONS", "COLOR_CORRELATION_SQRT", "decorrelated_to_rgb", "rgb_to_decorrelated",
           "PixelParam", "FourierParam", "make_param"]

PARAMETRISATIONS = ("pixel", "fourier")


def _images(x, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} is a Nx3xHxW tensor of [0, 1] pixels, not {type(x).__name__}")
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[0] < 1 or x.shape[1] != 3:
        raise ValueError(f"{name} must have shape Nx3xHxW (or 3xHxW), not {tuple(x.shape)}")
    return checks.pixels(x.detach().float(), name)


class PixelParam:
    """The pixels themselves (a batch of N images: N x 3 x H x W). ``mode="clip"`` keeps
    them in [0, 1] by clamping after each step (what Simonyan and Yosinski do);
    ``mode="sigmoid"`` stores logits, so the image is in (0, 1) by construction.
    ``decorrelate=True`` stores them in Lucid's decorrelated colour space
    (`decorrelated_to_rgb`), which changes the steps' directions, not the image."""

    def __init__(self, init: torch.Tensor, mode: str = "clip", decorrelate: bool = False):
        self.mode = checks.choice(mode, "PixelParam mode", ("clip", "sigmoid"))
        self.decorrelate = bool(decorrelate)
        init = _images(init, "the initial image")
        self.raw = self._raw_of(init).clone().requires_grad_(True)

    def _raw_of(self, image: torch.Tensor) -> torch.Tensor:
        raw = torch.logit(image.clamp(1e-4, 1 - 1e-4)) if self.mode == "sigmoid" else image
        return rgb_to_decorrelated(raw) if self.decorrelate else raw

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.raw.shape[-2:])

    def to(self, device) -> "PixelParam":
        self.raw = self.raw.detach().to(device).requires_grad_(True)
        return self

    def parameters(self) -> list[torch.Tensor]:
        return [self.raw]

    def image(self) -> torch.Tensor:
        x = decorrelated_to_rgb(self.raw) if self.decorrelate else self.raw
        return torch.sigmoid(x) if self.mode == "sigmoid" else x

    @torch.no_grad()
    def set_image(self, image: torch.Tensor) -> None:
        self.raw.copy_(self._raw_of(image.to(self.raw)))

    @torch.no_grad()
    def after_step(self) -> None:
        if self.mode == "clip":
            if self.decorrelate:
                self.set_image(self.image().clamp(0, 1))
            else:
                self.raw.clamp_(0, 1)


# The square root of ImageNet's 3x3 colour covariance (Lucid's ``color_correlation_svd_sqrt``,
# U sqrt(S) of its SVD): its columns are the principal colour directions (the first is
# the luminance, R = G = B), each as long as the standard deviation along it.
COLOR_CORRELATION_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
# Scaled so that the longest column has norm 1: unit noise stays in a sensible range.
_COLOR_TO_RGB = COLOR_CORRELATION_SQRT / COLOR_CORRELATION_SQRT.norm(dim=0).max()
_RGB_TO_COLOR = torch.linalg.inv(_COLOR_TO_RGB)


def decorrelated_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W values in the decorrelated colour space -> (pre-sigmoid) RGB:
    each pixel's colour vector multiplied by the normalised square root of ImageNet's
    colour covariance."""
    return torch.einsum("bchw,dc->bdhw", x, _COLOR_TO_RGB.to(x))


def rgb_to_decorrelated(x: torch.Tensor) -> torch.Tensor:
    """The inverse of `decorrelated_to_rgb`."""
    return torch.einsum("bchw,dc->bdhw", x, _RGB_TO_COLOR.to(x))


class FourierParam:
    """Lucid's Fourier-space parametrisation: the image is the inverse real FFT of a
    spectrum scaled by 1/frequency^decay_power (`scale`), so every Adam step moves low
    frequencies as easily as high ones, whose natural images have far less energy;
    optionally in the decorrelated colour space (`decorrelated_to_rgb`); a sigmoid maps
    it into (0, 1). `batch` images at once. Seeded: same seed, same start."""

    def __init__(self, size: int | tuple[int, int], decorrelate: bool = True, sd: float = 0.01,
                 seed: int = 0, decay_power: float = 1.0, batch: int = 1, device=None):
        h, w = (size, size) if not isinstance(size, (tuple, list)) else tuple(size)
        h, w = checks.integer(h, "image height", low=8), checks.integer(w, "image width", low=8)
        self.h, self.w = h, w
        self.decorrelate = decorrelate
        fy = torch.fft.fftfreq(self.h)[:, None]
        fx = torch.fft.rfftfreq(self.w)[None, :]
        freqs = (fy * fy + fx * fx).sqrt()
        self.scale = (1.0 / freqs.clamp_min(1.0 / max(self.h, self.w)) ** decay_power)
        gen = torch.Generator().manual_seed(checks.integer(seed, "seed"))
        batch = checks.integer(batch, "batch", low=1)
        spectrum = torch.randn(batch, 3, self.h, self.w // 2 + 1, 2, generator=gen) * sd
        self.spectrum = spectrum.requires_grad_(True)
        if device is not None:
            self.to(device)

    @property
    def size(self) -> tuple[int, int]:
        return (self.h, self.w)

    def to(self, device) -> "FourierParam":
        self.spectrum = self.spectrum.detach().to(device).requires_grad_(True)
        self.scale = self.scale.to(device)
        return self

    def parameters(self) -> list[torch.Tensor]:
        return [self.spectrum]

    def image(self) -> torch.Tensor:
        spec = torch.view_as_complex(self.spectrum) * self.scale
        x = torch.fft.irfftn(spec, s=(self.h, self.w), norm="ortho") / 4.0  # Lucid's "magic" 4
        if self.decorrelate:
            x = decorrelated_to_rgb(x)
        return torch.sigmoid(x)

    def after_step(self) -> None:
        pass


def make_param(kind: str, size: int, *, seed: int = 0, image: torch.Tensor | None = None, device=None,
               batch: int = 1, decorrelate: bool | None = None):
    """A fresh image (or `batch` of them) to optimise: ``"pixel"`` starts from `image` if
    given, otherwise from mid-grey with faint seeded noise; ``"fourier"`` from a seeded
    random spectrum. `decorrelate` (default: on for Fourier, off for pixels) optimises
    in Lucid's decorrelated colour space; decorrelated pixels are kept in (0, 1) by a
    sigmoid, as in Lucid, instead of clamping."""
    kind = checks.choice(kind, "parametrisation", PARAMETRISATIONS)
    size = checks.integer(size, "size", low=32)
    seed = checks.integer(seed, "seed")
    batch = checks.integer(batch, "batch", low=1)
    decorrelate = (kind == "fourier") if decorrelate is None else bool(decorrelate)
    if kind == "fourier":
        if image is not None:
            raise ValueError("the Fourier parametrisation starts from noise: use param='pixel' to start from an image")
        return FourierParam(size, decorrelate=decorrelate, seed=seed, batch=batch, device=device)
    mode = "sigmoid" if decorrelate else "clip"
    if image is None:
        gen = torch.Generator().manual_seed(seed)
        image = 0.5 + 0.02 * torch.randn(batch, 3, size, size, generator=gen)
    elif batch > 1:
        image = _images(image, "the initial image").expand(batch, -1, -1, -1)
    param = PixelParam(image, mode=mode, decorrelate=decorrelate)
    return param.to(device) if device is not None else param
