"""The one image-optimisation loop that lessons 09-12 share.

Notebooks: `09_gradient_ascent`, `10_fooling_images`, `11_deepdream`,
`12_feature_inversion`. The pieces are separate and composable, as in Lucent:

- a parametrisation (`PixelParam`, `FourierParam`) owns the tensors being optimised
  and turns them into a 1x3xHxW image in [0, 1];
- transforms (`Jitter`, `RandomScale`, `RandomRotate`) are applied to that image
  before each forward pass, drawing from the loop's own seeded `torch.Generator`
  (never the global RNG, so a lesson's randomness never leaks into another's);
- regularisers (`L2`, `TotalVariation`, `AlphaNorm`: loss terms; `Blur`, `Clip`,
  `LinfBall`: applied to the pixels after a step);
- an objective (`engine.objectives`) over the captured activations;
- `optimize_iter`, the loop, yielding `Progress` so a caller can preview and stop.

The network is never changed: each step runs inside ``net.guard()`` and
``net.capture(...)``, entered and left within the step, so between two yields (and
after an error) the model is exactly as it was, and gradients are taken with
`torch.autograd.grad` with respect to the image only: no parameter's ``.grad`` is set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

from .objectives import LOGITS, Objective

__all__ = [
    "Progress",
    "Diverged",
    "PixelParam",
    "FourierParam",
    "Jitter",
    "RandomScale",
    "RandomRotate",
    "L2",
    "TotalVariation",
    "AlphaNorm",
    "Blur",
    "Clip",
    "LinfBall",
    "optimize_iter",
    "optimize",
    "OPTIMIZERS",
    "start_image",
]

OPTIMIZERS = ("adam", "sgd", "sign", "normalized")



def start_image(net, image, size: int | None = None) -> torch.Tensor:
    """The photo a run starts from or matches, as a 1x3xSxS tensor in [0, 1].

    A 1x3xHxW tensor is used as it is (clamped); anything else goes through the
    model's preprocessing. `size` (at least 32) resizes the square, smoothly.
    """
    if size is not None and int(size) < 32:
        raise ValueError(f"size must be at least 32 pixels, not {size}")
    if isinstance(image, torch.Tensor) and image.dim() == 4:
        if image.shape[:2] != (1, 3) or not torch.isfinite(image).all():
            raise ValueError(f"the image tensor must be 1x3xHxW with finite values, not {tuple(image.shape)}")
        x = image.detach().to(net.device, torch.float32).clamp(0, 1)
    else:
        x = net.preprocess(image)
    if size is not None and tuple(x.shape[-2:]) != (int(size), int(size)):
        x = F.interpolate(x, size=(int(size), int(size)), mode="bilinear", align_corners=False, antialias=True)
    return x

class Diverged(RuntimeError):
    """The optimisation blew up (NaN/inf loss or gradient, or an exploding image)."""


@dataclass
class Progress:
    """Where a run is: `step` of `total` steps done, the named losses of the last step,
    the image so far (1x3xHxW in [0, 1], detached), and why it ended if it has
    (``"done"``, ``"stopped"``, ``"reached"`` when `until` was met). `info` carries
    what a technique adds (DeepDream's octave, for example)."""

    step: int
    total: int
    losses: dict[str, float]
    image: torch.Tensor
    ended: str = ""
    info: dict = field(default_factory=dict)

    @property
    def loss(self) -> float:
        return float(self.losses.get("total", float("nan")))


# --- parametrisations ----------------------------------------------------------------


class PixelParam:
    """The pixels themselves. ``mode="clip"`` keeps them in [0, 1] by clamping after
    each step (what Simonyan/Yosinski do); ``mode="sigmoid"`` stores logits, so the
    image is in (0, 1) by construction."""

    def __init__(self, init: torch.Tensor, mode: str = "clip"):
        if mode not in ("clip", "sigmoid"):
            raise ValueError(f"PixelParam mode must be 'clip' or 'sigmoid', not {mode!r}")
        init = _as_image(init, "the initial image").detach().float()
        self.mode = mode
        raw = torch.logit(init.clamp(1e-4, 1 - 1e-4)) if mode == "sigmoid" else init.clamp(0, 1)
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
    """Lucid's Fourier-space parametrisation (Olah et al. 2017): the image is the
    inverse real FFT of a spectrum scaled by 1/frequency, so every Adam step moves
    low frequencies as easily as high ones; optionally in a decorrelated colour
    space; a sigmoid maps it into (0, 1). Seeded: same seed, same start."""

    def __init__(self, size: int | tuple[int, int], decorrelate: bool = True, sd: float = 0.01,
                 seed: int = 0, decay_power: float = 1.0, device=None):
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        if h < 8 or w < 8:
            raise ValueError(f"image size {h}x{w} is too small: use at least 8x8 pixels")
        self.h, self.w = int(h), int(w)
        self.decorrelate = decorrelate
        fy = torch.fft.fftfreq(self.h)[:, None]
        fx = torch.fft.rfftfreq(self.w)[None, :]
        freqs = (fy * fy + fx * fx).sqrt()
        self.scale = (1.0 / freqs.clamp_min(1.0 / max(self.h, self.w)) ** decay_power)
        gen = torch.Generator().manual_seed(int(seed))
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


def _as_image(x, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{what} must be a tensor of shape 1x3xHxW in [0, 1]")
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise ValueError(f"{what} must have shape 1x3xHxW, not {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{what} contains NaN or infinite values")
    return x


# --- transforms (applied to the image before each forward pass) ------------------------


class Jitter:
    """Shift the image by up to `pixels` in each direction (a circular roll, as the
    original DeepDream does: no border to learn from)."""

    def __init__(self, pixels: int = 4):
        if pixels < 0:
            raise ValueError(f"jitter must be >= 0 pixels, not {pixels}")
        self.pixels = int(pixels)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.pixels == 0:
            return x
        dy, dx = (torch.randint(-self.pixels, self.pixels + 1, (2,), generator=gen)).tolist()
        return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


class RandomScale:
    """Rescale by a factor drawn uniformly from `scales` (bilinear)."""

    def __init__(self, scales: Sequence[float] = (0.95, 1.05)):
        if min(scales) <= 0:
            raise ValueError(f"scales must be positive, not {tuple(scales)}")
        self.lo, self.hi = float(min(scales)), float(max(scales))

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        s = self.lo + (self.hi - self.lo) * float(torch.rand((), generator=gen))
        h, w = x.shape[-2:]
        size = (max(8, int(round(h * s))), max(8, int(round(w * s))))
        if size == (h, w):
            return x
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class RandomRotate:
    """Rotate by an angle drawn uniformly from [-degrees, degrees] (borders reflected)."""

    def __init__(self, degrees: float = 5.0):
        self.degrees = abs(float(degrees))

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.degrees == 0:
            return x
        a = math.radians(self.degrees * (2 * float(torch.rand((), generator=gen)) - 1))
        theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]],
                             dtype=x.dtype, device=x.device)[None]
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


# --- regularisers ---------------------------------------------------------------------


class _Regularizer:
    name = ""

    def penalty(self, image: torch.Tensor) -> torch.Tensor | None:
        return None

    def after_step(self, param, step: int) -> None:
        pass


class L2(_Regularizer):
    """L2 decay towards mid-grey (Simonyan et al.; Yosinski et al.'s decay as a loss
    term, so it works with any optimiser): weight * mean((x - 0.5)^2)."""

    name = "L2"

    def __init__(self, weight: float):
        self.weight = _non_negative(weight, "L2 weight")

    def penalty(self, image):
        return self.weight * (image - 0.5).pow(2).mean() if self.weight else None


class TotalVariation(_Regularizer):
    """Mean of (dx^2 + dy^2)^(beta/2): penalises high-frequency noise (Mahendran &
    Vedaldi's V^beta)."""

    name = "TV"

    def __init__(self, weight: float, beta: float = 2.0):
        self.weight = _non_negative(weight, "TV weight")
        self.beta = float(beta)

    def penalty(self, image):
        if not self.weight:
            return None
        dy = image[..., 1:, :-1] - image[..., :-1, :-1]
        dx = image[..., :-1, 1:] - image[..., :-1, :-1]
        return self.weight * (dx * dx + dy * dy + 1e-8).pow(self.beta / 2).mean()


class AlphaNorm(_Regularizer):
    """Mean of |x - 0.5|^alpha (alpha=6 in Mahendran & Vedaldi): keeps pixels from
    drifting to extreme values without touching moderate ones."""

    name = "alpha"

    def __init__(self, weight: float, alpha: float = 6.0):
        self.weight = _non_negative(weight, "alpha-norm weight")
        self.alpha = float(alpha)

    def penalty(self, image):
        return self.weight * (2 * (image - 0.5)).abs().pow(self.alpha).mean() if self.weight else None


class Blur(_Regularizer):
    """Gaussian-blur the pixels every `every` steps (Yosinski et al.): trades sharpness
    for fewer high frequencies. Needs a `PixelParam`."""

    name = "blur"

    def __init__(self, every: int = 4, sigma: float = 0.5):
        if int(every) < 1:
            raise ValueError(f"blur every must be >= 1 step, not {every}")
        self.every, self.sigma = int(every), float(sigma)

    def after_step(self, param, step):
        if self.sigma <= 0 or step % self.every:
            return
        if not isinstance(param, PixelParam):
            raise ValueError("Blur works on pixels: use PixelParam (the Fourier parametrisation is smooth already)")
        param.set_image(gaussian_blur(param.image().detach(), self.sigma))


class Clip(_Regularizer):
    """Clamp the pixels to [lo, hi] after each step (the valid range by default)."""

    name = "clip"

    def __init__(self, lo: float = 0.0, hi: float = 1.0):
        self.lo, self.hi = float(lo), float(hi)

    def after_step(self, param, step):
        if isinstance(param, PixelParam):
            param.set_image(param.image().detach().clamp(self.lo, self.hi))


class LinfBall(_Regularizer):
    """Project the pixels back into the L-inf ball of radius `eps` around `center`
    (and into [0, 1]): the budget of projected gradient descent (Madry et al.)."""

    name = "Linf"

    def __init__(self, center: torch.Tensor, eps: float):
        self.center = center.detach()
        self.eps = _non_negative(eps, "the L-inf budget eps")

    def after_step(self, param, step):
        x = param.image().detach()
        c = self.center.to(x)
        param.set_image(torch.max(torch.min(x, c + self.eps), c - self.eps).clamp(0, 1))


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(2 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t * t) / (2 * sigma * sigma))
    k = k / k.sum()
    c = x.shape[1]
    pad = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(pad, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(y, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _non_negative(v: float, what: str) -> float:
    v = float(v)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{what} must be a number >= 0, not {v}")
    return v


# --- the loop -------------------------------------------------------------------------


def _forward(net, x: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
    """Run as far as the objective needs (the whole net only when it needs logits)."""
    inner = [l for l in layers if l != LOGITS]
    x = net.fast_layout(x)  # channels-last on a CPU: a faster forward+backward, same values
    with net.capture(inner) as captured:
        if LOGITS in layers or not inner:
            logits = net(x)
            return {**captured, LOGITS: logits}
        net.forward_to(x, max(inner, key=net.layers.index))
        return dict(captured)


def _check_settings(steps, lr, every, optimizer):
    if not isinstance(steps, (int,)) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be a whole number >= 0, not {steps!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"the learning rate must be > 0, not {lr!r}")
    if int(every) < 1:
        raise ValueError(f"every must be >= 1 step, not {every!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")


def optimize_iter(
    net,
    objective: Objective,
    param,
    *,
    steps: int,
    lr: float,
    optimizer: str = "adam",
    transforms: Sequence[Callable] = (),
    regularizers: Sequence[_Regularizer] = (),
    every: int = 1,
    seed: int = 0,
    should_stop: Callable[[], bool] | None = None,
    until: Callable[[dict], bool] | None = None,
    schedule: str = "constant",
) -> Iterator[Progress]:
    """Minimise ``objective + regularisers`` over `param`'s image; yield `Progress`.

    Yields every `every` steps and always once at the end (``Progress.ended`` says
    why). `optimizer`: ``"adam"``, ``"sgd"``, ``"sign"`` (x -= lr * sign(g): FGSM/PGD)
    or ``"normalized"`` (x -= lr * g / mean|g|: DeepDream). `should_stop()` is
    checked before every step; `until(outputs)` sees each step's (detached) outputs
    and ends the run with that image when it returns True (fooling: "the target is
    predicted"). ``schedule="cosine"`` decays the step size to zero over the run
    (inversion converges much further with it). NaN/inf or an exploding image
    raise `Diverged`.
    """
    _check_settings(steps, lr, every, optimizer)
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine', not {schedule!r}")
    every = int(every)
    layers = objective.layers
    for layer in layers:
        if layer != LOGITS:
            net.check_layer(layer)
    param.to(net.device)
    params = param.parameters()
    gen = torch.Generator().manual_seed(int(seed))
    opt = None
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr)
    losses: dict[str, float] = {}

    def snapshot(step, ended=""):
        return Progress(step, steps, dict(losses), param.image().detach().clone(), ended)

    for step in range(1, steps + 1):
        if should_stop is not None and should_stop():
            yield snapshot(step - 1, "stopped")
            return
        rate = lr if schedule == "constant" else lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / max(1, steps)))
        if opt is not None:
            for group in opt.param_groups:
                group["lr"] = rate
        with net.guard(), torch.enable_grad():
            image = param.image()
            x = image
            for t in transforms:
                x = t(x, gen)
            outputs = _forward(net, x, layers)
            total, parts = objective(outputs)
            for r in regularizers:
                p = r.penalty(image)
                if p is not None:
                    parts[r.name] = p
                    total = total + p
            losses = {k: float(v.detach()) for k, v in parts.items()}
            losses["total"] = float(total.detach())
            if not math.isfinite(losses["total"]):
                raise Diverged(f"the optimisation diverged at step {step}: the loss became "
                               f"{losses['total']}. Lower the learning rate or raise the regularisers.")
            reached = until is not None and until({k: v.detach() for k, v in outputs.items()})
            grads = None if reached else torch.autograd.grad(total, params)
        if reached:  # yield outside the guard: a paused generator holds no model state
            yield snapshot(step - 1, "reached")
            return
        with torch.no_grad():
            for p, g in zip(params, grads):
                if not torch.isfinite(g).all():
                    raise Diverged(f"the optimisation diverged at step {step}: the gradient has NaN/inf values. "
                                   "Lower the learning rate.")
                if opt is not None:
                    p.grad = g
                elif optimizer == "sign":
                    p.sub_(rate * g.sign())
                else:  # normalized: the step size does not depend on the gradient's scale
                    p.sub_(rate * g / g.abs().mean().clamp_min(1e-12))
            if opt is not None:
                opt.step()
                for p in params:
                    p.grad = None
            param.after_step()
            for r in regularizers:
                r.after_step(param, step)
            for p in params:
                if not torch.isfinite(p).all() or p.abs().max() > 1e4:
                    raise Diverged(f"the image exploded at step {step} (values beyond 1e4 or NaN). "
                                   "Lower the learning rate.")
        if step % every == 0 and step != steps:
            yield snapshot(step)
    yield snapshot(steps, "done")


def optimize(net, objective: Objective, param, **kwargs) -> Progress:
    """Run `optimize_iter` to the end and return its last `Progress`."""
    last = None
    for last in optimize_iter(net, objective, param, **kwargs):
        pass
    return last
