"""Feature inversion: which images does a layer think are the same as this one?

Lesson `notebooks/12_feature_inversion.ipynb`. Mahendran & Vedaldi 2015
("Understanding Deep Image Representations by Inverting Them", arXiv:1412.0035):
start from noise and find an image whose features at a layer match the photo's,
minimising the relative feature distance ||phi(x) - phi(x0)||^2 / ||phi(x0)||^2 plus
total variation (smoothness) and an alpha-norm (keeps pixels in range). Early layers
keep almost everything, so the reconstruction looks like the photo; deep layers keep
what matters for the class, so it keeps the parts and loses the layout. One run of
the shared loop per layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from ..core import checks
from ..core.progress import Progress, StopCheck, run_to_end
from . import AlphaNorm, Jitter, OptimizeResult, PixelParam, TotalVariation
from . import objectives as O
from . import optimize_iter

__all__ = ["DEFAULTS", "InversionResult", "layer_features", "invert_features_iter", "invert_features",
           "invert_layers", "relative_feature_error", "pixel_distance"]

DEFAULTS = dict(size=128, steps=200, step_size=0.08, tv=0.5, alpha_norm=0.05)


@dataclass(kw_only=True)
class InversionResult(OptimizeResult):
    """An `OptimizeResult` (`image`: the reconstruction) and:

    layer: the layer whose features are matched; original: the photo at the
    reconstruction's size (CPU); relative_error: ||phi(image) - phi(original)|| /
    ||phi(original)|| at `layer`.
    """

    layer: str
    original: torch.Tensor
    relative_error: float


def layer_features(net, image, layer: str) -> torch.Tensor:
    """The output of `layer` for `image` (no gradient), on the network's device."""
    x = net.as_batch(image, what="layer_features")
    with torch.no_grad(), net.guard():
        return net.forward_to(x, checks.layer(net, layer)).detach()


def relative_feature_error(net, image, reference: torch.Tensor, layer: str) -> float:
    """||phi(image) - reference|| / ||reference|| at `layer`."""
    return float(O.relative_error(layer_features(net, image, layer), reference.to(net.device)))


def pixel_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Root-mean-square pixel difference ([0, 1] scale)."""
    return float((a.detach().cpu() - b.detach().cpu()).pow(2).mean().sqrt())


def invert_features_iter(net, image, layer: str, *, size: int = DEFAULTS["size"], steps: int = DEFAULTS["steps"],
                         step_size: float = DEFAULTS["step_size"], tv: float = DEFAULTS["tv"],
                         alpha_norm: float = DEFAULTS["alpha_norm"], jitter: int = 0, seed: int = 0,
                         every: int = 10, schedule: str = "constant",
                         should_stop: StopCheck = None) -> Iterator[Progress[InversionResult]]:
    """Reconstruct `image` from its features at `layer`, at size x size pixels; yield
    `Progress` carrying an `InversionResult`. `tv` and `alpha_norm` weigh the two
    regularisers; `schedule="cosine"` decays the step size. Checks its settings at once."""
    layer = checks.layer(net, layer)
    size = checks.integer(size, "size", low=16)
    seed = checks.integer(seed, "seed")
    steps = checks.integer(steps, "steps", low=0)  # the loop checks the rest; this one before the forward below
    x0 = checks.pixels(net.as_batch(image, single=True, size=size, what="feature inversion"), "image")
    phi0 = layer_features(net, x0, layer)
    gen = torch.Generator().manual_seed(seed)
    param = PixelParam((0.5 + 0.1 * torch.randn(x0.shape, generator=gen)).clamp(0, 1))
    loop = optimize_iter(net, O.feature_match(layer, phi0), param, steps=steps, step_size=step_size,
                         regularizers=[TotalVariation(tv), AlphaNorm(alpha_norm)],
                         transforms=[Jitter(jitter)] if checks.integer(jitter, "jitter", low=0) else (),
                         every=every, seed=seed, schedule=schedule, should_stop=should_stop)
    return _results(net, loop, layer, x0, phi0)


def _results(net, loop, layer, x0, phi0) -> Iterator[Progress[InversionResult]]:
    original = x0.detach().cpu()
    for p in loop:
        r = p.result
        yield Progress(p.step, p.total, InversionResult(
            image=r.image, losses=r.losses, steps_taken=r.steps_taken, ended=r.ended, layer=layer,
            original=original, relative_error=relative_feature_error(net, r.image, phi0, layer)), p.done)


def invert_features(net, image, layer: str, *, size: int = DEFAULTS["size"], steps: int = DEFAULTS["steps"],
                    step_size: float = DEFAULTS["step_size"], tv: float = DEFAULTS["tv"],
                    alpha_norm: float = DEFAULTS["alpha_norm"], jitter: int = 0, seed: int = 0, every: int = 10,
                    schedule: str = "constant") -> InversionResult:
    """`invert_features_iter` run to the end."""
    return run_to_end(invert_features_iter(net, image, layer, size=size, steps=steps, step_size=step_size, tv=tv,
                                           alpha_norm=alpha_norm, jitter=jitter, seed=seed, every=every,
                                           schedule=schedule))


def invert_layers(net, image, layers: Sequence[str], *, size: int = DEFAULTS["size"], steps: int = DEFAULTS["steps"],
                  step_size: float = DEFAULTS["step_size"], tv: float = DEFAULTS["tv"],
                  alpha_norm: float = DEFAULTS["alpha_norm"], jitter: int = 0, seed: int = 0, every: int = 10,
                  schedule: str = "constant") -> dict[str, InversionResult]:
    """Reconstructions from several depths (same seed and settings), for side-by-side
    display: one `InversionResult` per layer, by layer name. Every layer is checked
    before the first reconstruction starts."""
    layers = [checks.layer(net, layer) for layer in ([layers] if isinstance(layers, str) else layers)]
    return {layer: invert_features(net, image, layer, size=size, steps=steps, step_size=step_size, tv=tv,
                                   alpha_norm=alpha_norm, jitter=jitter, seed=seed, every=every, schedule=schedule)
            for layer in layers}
