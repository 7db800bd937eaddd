"""Activations: what every channel of a layer outputs for one image (lesson 04).

A layer's output is C feature maps of H x W; drawn as a grid of grey images
(the lecture's AlexNet conv5, 128 x 13 x 13) some channels light up on faces,
text or whole objects. `activations` runs the network only as far as one layer;
`all_activations` records every layer in one forward pass, so an app can browse
layers and channels without running the network again.

On the synthetic shapes, whose object masks are known, `mask_fraction` measures
how much of a channel's activation lies on the object: the check of lesson 04.

Lesson notebook: ``notebooks/04_activations.ipynb``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..core import checks
from ..core.network import Network

__all__ = [
    "Activations",
    "activations",
    "all_activations",
    "as_maps",
    "top_channels",
    "mask_fraction",
    "top_channel_mask_fraction",
]


@dataclass
class Activations:
    """What one layer outputs for one image.

    maps: C x H x W on the CPU (a vector layer, fc, gives C x 1 x 1); layer: its name.
    """

    maps: torch.Tensor
    layer: str

    @property
    def channels(self) -> int:
        return int(self.maps.shape[0])


def _as_maps(out: torch.Tensor, layer: str) -> torch.Tensor:
    """One image's layer output as C x H x W; a vector layer (fc) is C x 1 x 1."""
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"layer {layer!r} does not output a single tensor")
    out = out.detach()[0].float().cpu()
    if out.dim() == 1:
        return out.view(-1, 1, 1)
    if out.dim() == 3:
        return out
    raise ValueError(f"layer {layer!r} outputs shape {tuple(out.shape)}, not channels x height x width")


def activations(net: Network, image, layer: str) -> Activations:
    """The output of `layer` for one image (PIL, array, [0, 1] tensor): ``.maps`` C x H x W.

    Runs the network only as far as the layer, in eval mode, without gradients.
    """
    layer = checks.layer(net, layer)
    x = net.as_batch(image, single=True, what="activations")
    with torch.no_grad(), net.guard():
        out = net.forward_to(x, layer)
    return Activations(_as_maps(out, layer), layer)


def all_activations(net: Network, image, layers: Sequence[str] | None = None) -> dict[str, Activations]:
    """Every layer's output for one image from a single forward pass: {layer: `Activations`}."""
    layers = [checks.layer(net, layer) for layer in (net.layers if layers is None else layers)]
    x = net.as_batch(image, single=True, what="activations")
    with torch.no_grad(), net.guard(), net.capture(layers, detach=True) as outputs:
        net(x)
    return {layer: Activations(_as_maps(outputs[layer], layer), layer) for layer in layers}


def as_maps(acts) -> torch.Tensor:
    """`Activations`, or any C x H x W array or tensor -> the C x H x W tensor."""
    acts = torch.as_tensor(acts.maps if isinstance(acts, Activations) else acts)
    if acts.dim() != 3:
        raise ValueError(f"expected activations of shape channels x height x width, not {tuple(acts.shape)}")
    return acts


def top_channels(acts, k: int) -> torch.Tensor:
    """Indices of the `k` channels with the highest mean activation, strongest first."""
    acts = as_maps(acts)
    k = checks.integer(k, "k", low=1)
    means = acts.float().mean(dim=(1, 2))
    return means.topk(min(k, len(means))).indices


def mask_fraction(act_map, mask) -> float:
    """The share of a channel's activation mass that falls inside `mask`.

    The map is upsampled (bilinear) to the mask's size and negative values are
    ignored; compare with the mask's own area fraction, which is what a channel
    that ignores the object would score. NaN for a map with no positive activation.
    """
    a = torch.as_tensor(act_map).detach().float().cpu()
    m = torch.as_tensor(np.asarray(mask)).bool()
    if a.dim() != 2:
        raise ValueError(f"mask_fraction needs one channel's H x W map, not shape {tuple(a.shape)}")
    if m.dim() != 2:
        raise ValueError(f"the mask must be a 2-D H x W array, not shape {tuple(m.shape)}")
    up = F.interpolate(a[None, None], size=tuple(m.shape), mode="bilinear", align_corners=False)[0, 0].clamp_min(0)
    total = float(up.sum())
    if total <= 0:
        return float("nan")
    return float(up[m].sum()) / total


def top_channel_mask_fraction(net: Network, image, mask, layer: str, k: int = 3) -> tuple[float, float]:
    """(mean `mask_fraction` of the image's `k` strongest channels at `layer`, the
    mask's area fraction), with the mask cropped and resized exactly like the image."""
    acts = activations(net, image, layer).maps
    m = net.preprocess_mask(mask)
    fractions = [mask_fraction(acts[c], m) for c in top_channels(acts, k).tolist()]
    return float(np.nanmean(fractions)), float(m.mean())
