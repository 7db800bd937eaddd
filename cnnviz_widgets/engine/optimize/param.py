"""Parametrisations: what the optimisation loop changes, and how it becomes an image.

A parametrisation owns the tensors being optimised (`parameters()`) and turns them
into a 1 x 3 x H x W image in [0, 1] (`image()`), as Lucent's ``param`` module does.
`PixelParam` is the pixels themselves (Simonyan et al. 2014, Yosinski et al. 2015,
every fooling and inversion run); `FourierParam` is Lucid's decorrelated Fourier
image (Olah, Mordvintsev & Schubert 2017, "Feature Visualization", Distill).
"""

from __future__ import annotations

import torch

from .. import checks

__all__ = ["PARAMETRISATIONS", "PixelParam", "FourierParam", "make_param"]

PARAMETRISATIONS = ("pixel", "fourier")


def _one_image(x, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} is a 1x3xHxW tensor of [0, 1] pixels, not {type(x).__name__}")
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise ValueError(f"{name} must have shape 1x3xHxW, not {tuple(x.shape)}")
    return checks.pixels(x.detach().float(), name)


class PixelParam:
    """The pixels themselves. ``mode="clip"`` keeps them in [0, 1] by clamping after
    each step (what Simonyan and Yosinski do); ``mode="sigmoid"`` stores logits, so the
    image is in (0, 1) by construction."""

    def __init__(self, init: torch.Tensor, mode: str = "clip"):
        self.mode = checks.choice(mode, "PixelParam mode", ("clip", "sigmoid"))
        init = _one_image(init, "the initial image")
        raw = torch.logit(init.clamp(1e-4, 1 - 1e-4)) if mode == "sigmoid" else init
        self.raw = raw.clone().requires_grad_(True)

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.raw.shape[-2:])

    def to(self, device) -> "PixelParam":
        self.raw = self.raw.detach().to(device).requires_grad_(True)
        return self

    def parameters(self) -> list[torch.Tensor]:
        return [self.raw]

    def image(self) -> torch.Tensor:
        return torch.sigmoid(self.raw) if self.mode == "sigmoid" else self.raw

    @torch.no_grad()
    def set_image(self, image: torch.Tensor) -> None:
        image = image.to(self.raw)
        self.raw.copy_(torch.logit(image.clamp(1e-4, 1 - 1e-4)) if self.mode == "sigmoid" else image)

    @torch.no_grad()
    def after_step(self) -> None:
        if self.mode == "clip":
            self.raw.clamp_(0, 1)


# Lucid's colour decorrelation: the square root of ImageNet's colour covariance.
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR_NORMALIZED = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()


class FourierParam:
    """Lucid's Fourier-space parametrisation: the image is the inverse real FFT of a
    spectrum scaled by 1/frequency, so every Adam step moves low frequencies as easily
    as high ones; optionally in a decorrelated colour space; a sigmoid maps it into
    (0, 1). Seeded: same seed, same start."""

    def __init__(self, size: int | tuple[int, int], decorrelate: bool = True, sd: float = 0.01,
                 seed: int = 0, decay_power: float = 1.0, device=None):
        h, w = (size, size) if not isinstance(size, (tuple, list)) else tuple(size)
        h, w = checks.integer(h, "image height", low=8), checks.integer(w, "image width", low=8)
        self.h, self.w = h, w
        self.decorrelate = decorrelate
        fy = torch.fft.fftfreq(self.h)[:, None]
        fx = torch.fft.rfftfreq(self.w)[None, :]
        freqs = (fy * fy + fx * fx).sqrt()
        self.scale = (1.0 / freqs.clamp_min(1.0 / max(self.h, self.w)) ** decay_power)
        gen = torch.Generator().manual_seed(checks.integer(seed, "seed"))
        spectrum = torch.randn(1, 3, self.h, self.w // 2 + 1, 2, generator=gen) * sd
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
            x = torch.einsum("bchw,dc->bdhw", x, _COLOR_NORMALIZED.to(x))
        return torch.sigmoid(x)

    def after_step(self) -> None:
        pass


def make_param(kind: str, size: int, *, seed: int = 0, image: torch.Tensor | None = None, device=None):
    """A fresh image to optimise: ``"pixel"`` starts from `image` if given, otherwise
    from mid-grey with faint seeded noise; ``"fourier"`` from a seeded random spectrum."""
    kind = checks.choice(kind, "parametrisation", PARAMETRISATIONS)
    size = checks.integer(size, "size", low=32)
    seed = checks.integer(seed, "seed")
    if kind == "fourier":
        if image is not None:
            raise ValueError("the Fourier parametrisation starts from noise: use param='pixel' to start from an image")
        return FourierParam(size, decorrelate=True, seed=seed, device=device)
    if image is not None:
        return PixelParam(image).to(device) if device is not None else PixelParam(image)
    gen = torch.Generator().manual_seed(seed)
    param = PixelParam(0.5 + 0.02 * torch.randn(1, 3, size, size, generator=gen))
    return param.to(device) if device is not None else param
