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

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .. import render
from .models import Network

__all__ = [
    "activations",
    "all_activations",
    "top_channels",
    "activation_grid",
    "channel_overlay",
    "mask_fraction",
    "top_channel_mask_fraction",
]


def _as_input(net: Network, x) -> torch.Tensor:
    """An image (PIL, uint8 array) or a [0, 1] tensor -> 1 x 3 x S x S on the device."""
    if isinstance(x, torch.Tensor):
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
            raise ValueError(f"activations take one RGB image (1 x 3 x H x W), not a tensor of shape {tuple(x.shape)}")
        return x.to(net.device, torch.float32)
    return net.preprocess(x)


def _as_maps(out: torch.Tensor, layer: str) -> torch.Tensor:
    """One image's layer output as C x H x W; a vector layer (fc) is C x 1 x 1."""
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"layer {layer!r} does not output a single tensor")
    out = out.detach()[0].float()
    if out.dim() == 1:
        return out.view(-1, 1, 1)
    if out.dim() == 3:
        return out
    raise ValueError(f"layer {layer!r} outputs shape {tuple(out.shape)}, not channels x height x width")


def activations(net: Network, x, layer: str) -> torch.Tensor:
    """The output of `layer` for one image: C x H x W (vector layers: C x 1 x 1).

    Runs the network only as far as the layer, in eval mode, without gradients.
    """
    net.check_layer(layer)
    x = _as_input(net, x)
    with torch.no_grad(), net.guard():
        out = net.forward_to(x, layer)
    return _as_maps(out, layer)


def all_activations(net: Network, x, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """Every layer's output for one image from a single forward pass: {layer: C x H x W}."""
    layers = list(net.layers if layers is None else layers)
    for layer in layers:
        net.check_layer(layer)
    x = _as_input(net, x)
    with torch.no_grad(), net.guard(), net.capture(layers, detach=True) as outputs:
        net(x)
    return {layer: _as_maps(outputs[layer], layer) for layer in layers}


def _check_maps(acts) -> torch.Tensor:
    acts = torch.as_tensor(acts)
    if acts.dim() != 3:
        raise ValueError(f"expected activations of shape channels x height x width, not {tuple(acts.shape)}")
    return acts


def top_channels(acts: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the `k` channels with the highest mean activation, strongest first."""
    acts = _check_maps(acts)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a whole number of channels >= 1, not {k!r}")
    means = acts.float().mean(dim=(1, 2))
    return means.topk(min(int(k), len(means))).indices


def activation_grid(acts: torch.Tensor, channels: Sequence[int] | None = None, normalize: str = "layer",
                    scale: int | None = None, ncols: int | None = None, highlight: int | None = None,
                    labels: bool | None = None, max_tile: int = 56) -> np.ndarray:
    """Feature maps as a grid of grey tiles (bright = strong), uint8 H x W x 3.

    `channels`: which to show (default all, in order). `normalize`: ``"layer"``
    puts all tiles on one scale, so strong channels stand out and silent ones are
    black; ``"channel"`` stretches each tile to its own range, to see the pattern
    of weak ones. `highlight` (a channel index) is framed in red. `labels` writes
    each tile's channel index under it (default: when a subset is shown and tiles
    are wide enough). Maps larger than `max_tile` pixels are averaged down by a
    whole factor (an overview: `channel_overlay` shows one map at full resolution).
    """
    acts = _check_maps(acts)
    c = acts.shape[0]
    chosen = list(range(c)) if channels is None else [int(i) for i in channels]
    if not chosen:
        raise ValueError("activation_grid needs at least one channel")
    bad = [i for i in chosen if not 0 <= i < c]
    if bad:
        raise ValueError(f"channel {bad[0]} is out of range: this layer has channels 0..{c - 1}")
    modes = {"layer": "global", "channel": "per_tile"}
    if normalize not in modes:
        raise ValueError(f"normalize must be 'layer' or 'channel', not {normalize!r}")
    maps = acts[chosen].float().cpu()
    factor = -(-max(maps.shape[1:]) // max(1, int(max_tile)))
    if factor > 1:  # 32 maps of 112 x 112 make a PNG too big to redraw in 100 ms
        maps = F.avg_pool2d(maps[None], factor, ceil_mode=True)[0]
    maps = maps.numpy()
    pixels = (render.normalize(maps, modes[normalize]) * 255 + 0.5).astype(np.uint8)
    h, w = maps.shape[1:]
    # About 48 px per tile for conv maps; vector layers (1 x 1) become a mosaic of cells.
    ncols = ncols or int(np.ceil(np.sqrt(len(chosen))))
    if scale is None:
        scale = max(1, int(round(48 / max(h, w)))) if max(h, w) > 1 else 6
        # Keep big layers (1280 channels) near 900 px wide: fast to draw and to send.
        scale = max(1, min(scale, (900 // ncols - 2) // w))
    if labels is None:
        labels = channels is not None and w * scale >= 24
    pad = 1 if max(h, w) == 1 else 2
    text = [str(i) for i in chosen] if labels else None
    grid = render.tile_grid(pixels, ncols=ncols, pad=pad, normalize_mode="none", scale=scale,
                            labels=text, pad_value=255)
    if highlight is not None and int(highlight) in chosen:
        from .filters import _frame

        grid = _frame(grid, chosen.index(int(highlight)), ncols, (h * scale, w * scale), pad, 12 if text else 0)
    return grid


def channel_overlay(image, act_map, alpha: float = 0.55, cmap: str = "inferno") -> np.ndarray:
    """One channel's map, upsampled to the image, blended over it (uint8 H x W x 3).

    The colour scale starts at 0 (post-ReLU maps are never negative), so a weak
    channel stays dark instead of being stretched to look strong.
    """
    heat = torch.as_tensor(act_map).detach().float().cpu().numpy() if not isinstance(act_map, np.ndarray) else act_map
    heat = np.asarray(heat, np.float32)
    if heat.ndim != 2:
        raise ValueError(f"channel_overlay needs one channel's H x W map, not shape {heat.shape}")
    lo = min(0.0, float(heat.min()))
    hi = max(float(heat.max()), lo + 1e-6)
    return render.heatmap_overlay(image, heat, alpha=alpha, cmap=cmap, vmin=lo, vmax=hi)


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
    acts = activations(net, image, layer)
    m = net.preprocess_mask(mask)
    fractions = [mask_fraction(acts[c], m) for c in top_channels(acts, k).tolist()]
    return float(np.nanmean(fractions)), float(m.mean())
