"""Feature inversion: which images does a layer think are the same as this one?

Lesson `notebooks/12_feature_inversion.ipynb`. Mahendran & Vedaldi 2015: start from
noise and find an image whose features at a layer match the photo's, minimising
the relative feature distance ||phi(x) - phi(x0)||^2 / ||phi(x0)||^2 plus total
variation (smoothness) and an alpha-norm (keeps pixels in range). Early layers
keep almost everything, so the reconstruction looks like the photo; deep layers
keep what matters for the class, so it keeps the parts and loses the layout.
One run of the shared loop per layer.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch

from . import objectives as O
from .optimize import AlphaNorm, Jitter, PixelParam, Progress, TotalVariation, optimize_iter, start_image

__all__ = ["DEFAULTS", "target_features", "invert_features_iter", "invert_features", "invert_layers",
           "relative_feature_error", "pixel_distance"]

DEFAULTS = dict(size=128, steps=200, lr=0.08, tv=0.5, alpha=0.05)


def target_features(net, x: torch.Tensor, layer: str) -> torch.Tensor:
    with torch.no_grad(), net.guard():
        return net.forward_to(x, layer).detach()


def relative_feature_error(net, x: torch.Tensor, target: torch.Tensor, layer: str) -> float:
    """||phi(x) - target|| / ||target|| at `layer`."""
    return float(O.relative_error(target_features(net, x, layer), target))


def pixel_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Root-mean-square pixel difference ([0, 1] scale)."""
    return float((a.detach() - b.detach()).pow(2).mean().sqrt())


def invert_features_iter(net, image, layer: str, *, size: int = DEFAULTS["size"], steps: int = DEFAULTS["steps"],
                         lr: float = DEFAULTS["lr"], tv: float = DEFAULTS["tv"], alpha: float = DEFAULTS["alpha"],
                         jitter: int = 0, seed: int = 0, every: int = 10, schedule: str = "constant",
                         should_stop=None) -> Iterator[Progress]:
    """Reconstruct `image` from its features at `layer`; yield `Progress` with
    ``info["relative_error"]`` (||phi(x) - phi(x0)|| / ||phi(x0)||) and ``info["target"]``."""
    net.check_layer(layer)
    x0 = start_image(net, image, size)
    phi0 = target_features(net, x0, layer)
    gen = torch.Generator().manual_seed(int(seed))
    param = PixelParam((0.5 + 0.1 * torch.randn(x0.shape, generator=gen)).clamp(0, 1))
    for p in optimize_iter(net, O.feature_match(layer, phi0), param, steps=steps, lr=lr,
                           regularizers=[TotalVariation(tv), AlphaNorm(alpha)],
                           transforms=[Jitter(jitter)] if jitter else (), every=every, seed=seed,
                           schedule=schedule, should_stop=should_stop):
        p.info = {"relative_error": relative_feature_error(net, p.image, phi0, layer), "target": x0,
                  "layer": layer}
        yield p


def invert_features(net, image, layer: str, **kwargs) -> Progress:
    """`invert_features_iter` run to the end."""
    last = None
    for last in invert_features_iter(net, image, layer, **kwargs):
        pass
    return last


def invert_layers(net, image, layers: Sequence[str], **kwargs) -> dict[str, Progress]:
    """Reconstructions from several depths (same seed and settings), for side-by-side display."""
    return {layer: invert_features(net, image, layer, **kwargs) for layer in layers}
