"""Exact occlusion by incremental inference (lesson ``06_occlusion``, the fast path).

Idea (Krypton: Nakandala, Kumar & Papakonstantinou, "Incremental and Approximate
Inference for Faster Occlusion-based Deep CNN Explanations", SIGMOD 2019): a patch
changes only a small region of each feature map. Run the clean image once and keep
every layer's input; then, for a batch of patch positions, recompute only the region
of each layer the patch can reach, on crops of the clean maps with the changed values
pasted in. Once that region covers most of a map, paste the changed windows into full
copies of the map and run the rest of the network normally.

The result is exact (the same logits as the naive batched forward, up to float
rounding), for every fill: the fill is simply a second image whose pixels replace the
box, so grey, the mean colour and a blurred copy go through one mechanism.

Supported: networks whose spatial part is a chain, ``model.features`` an
``nn.Sequential`` of Conv2d / ReLU / MaxPool2d / AvgPool2d / BatchNorm2d / Dropout
followed by ``avgpool -> flatten -> classifier`` (torchvision AlexNet and VGG, the
kit's ShapesNet). `supports_incremental` says whether a network qualifies; callers
fall back to the naive batched forward otherwise (EfficientNet, ResNet, SqueezeNet).

Region rule per layer, along one axis: output positions [o0, o1) need the input
positions [o0*s - p, (o1-1)*s - p + (k-1)*d + 1). The clean maps are padded once
(zeros for conv/avg-pool, -inf for max-pool), so padding appears at true borders only.
Each batch uses one window size per layer (the largest changed region in the batch);
windows of border patches are shifted inwards so they stay inside the map, which only
recomputes a few unchanged values.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .models import Network

__all__ = ["occluded_logits", "supports_incremental", "incremental_scores", "IncrementalPlan"]

Box = tuple[int, int, int, int]  # (top, left, bottom, right), bottom/right exclusive

_CL = torch.channels_last
_ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.BatchNorm2d, nn.Dropout, nn.Dropout2d, nn.Identity)
_WINDOWED = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
# Models whose forward is exactly features -> avgpool -> flatten -> classifier.
_CHAIN_MODELS = ("AlexNet", "VGG", "ShapesNet")


def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _supported_layer(m: nn.Module) -> bool:
    if type(m) in _ELEMENTWISE:
        return True
    if type(m) is nn.Conv2d:
        return m.padding_mode == "zeros" and not isinstance(m.padding, str)
    if type(m) is nn.MaxPool2d:
        return not m.return_indices
    if type(m) is nn.AvgPool2d:
        # Padding counted as zeros is what materialised zero padding computes; ceil_mode
        # would change the divisor of the last window.
        return not m.ceil_mode and (m.count_include_pad or _pair(m.padding) == (0, 0))
    return False


def supports_incremental(net: Network) -> bool:
    """True when `occluded_logits` can run `net` incrementally (a chain of supported
    layers in ``model.features`` and the plain avgpool/flatten/classifier head)."""
    model = getattr(net, "model", None)
    if model is None or type(model).__name__ not in _CHAIN_MODELS:
        return False
    feats = getattr(model, "features", None)
    if not isinstance(feats, nn.Sequential) or not hasattr(model, "avgpool") or not hasattr(model, "classifier"):
        return False
    return len(feats) > 0 and all(_supported_layer(m) for m in feats)


def _head(model: nn.Module, f: torch.Tensor) -> torch.Tensor:
    return model.classifier(torch.flatten(model.avgpool(f), 1))


@dataclass
class _Geometry:
    k: tuple[int, int]
    s: tuple[int, int]
    p: tuple[int, int]
    d: tuple[int, int]


def _geometry(m: nn.Module) -> _Geometry:
    if isinstance(m, nn.Conv2d):
        return _Geometry(_pair(m.kernel_size), _pair(m.stride), _pair(m.padding), _pair(m.dilation))
    if isinstance(m, nn.MaxPool2d):
        stride = m.stride if m.stride is not None else m.kernel_size
        return _Geometry(_pair(m.kernel_size), _pair(stride), _pair(m.padding), _pair(m.dilation))
    stride = m.stride if m.stride is not None else m.kernel_size
    return _Geometry(_pair(m.kernel_size), _pair(stride), _pair(m.padding), (1, 1))


class _Layer:
    """One windowed layer with its clean input, padded once for cropping."""

    def __init__(self, module: nn.Module, clean_in: torch.Tensor, clean_out: torch.Tensor):
        self.module = module
        self.g = _geometry(module)
        self.in_size = tuple(clean_in.shape[-2:])
        self.out_size = tuple(clean_out.shape[-2:])
        value = float("-inf") if isinstance(module, nn.MaxPool2d) else 0.0
        # Extra room on the far side for ceil_mode windows that hang past the padding.
        extra = []
        for a in (0, 1):
            need = (self.out_size[a] - 1) * self.g.s[a] + (self.g.k[a] - 1) * self.g.d[a] + 1
            extra.append(max(0, need - (self.in_size[a] + 2 * self.g.p[a])))
        ph, pw = self.g.p
        self.padded = F.pad(clean_in, (pw, pw + extra[1], ph, ph + extra[0]), value=value).contiguous(memory_format=_CL)
        self.clean_in = clean_in
        # oneDNN runs convolutions on channels-last tensors faster (same arithmetic).
        self.weight = module.weight.contiguous(memory_format=_CL) if isinstance(module, nn.Conv2d) else None

    def changed(self, c0: np.ndarray, c1: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
        """Output interval that an input change on [c0, c1) can reach (empty stays empty)."""
        k, s, p, d = self.g.k[axis], self.g.s[axis], self.g.p[axis], self.g.d[axis]
        n = self.out_size[axis]
        lo = np.maximum(0, -((-(c0 + p - (k - 1) * d)) // s))  # ceil division
        hi = np.minimum(n, (c1 - 1 + p) // s + 1)
        empty = (c1 <= c0) | (hi <= lo)
        return np.where(empty, 0, lo), np.where(empty, 0, hi)

    def crop_len(self, size: int, axis: int) -> int:
        return (size - 1) * self.g.s[axis] + (self.g.k[axis] - 1) * self.g.d[axis] + 1

    def apply(self, crop: torch.Tensor) -> torch.Tensor:
        m, g = self.module, self.g
        if isinstance(m, nn.Conv2d):
            return F.conv2d(crop, self.weight, m.bias, g.s, 0, g.d, m.groups)
        if isinstance(m, nn.MaxPool2d):
            return F.max_pool2d(crop, g.k, g.s, 0, g.d)
        return F.avg_pool2d(crop, g.k, g.s, 0, False, True, m.divisor_override)


class IncrementalPlan:
    """The clean activations of one (network, image, fill) and the machinery to score
    batches of boxes incrementally. `occluded_logits` builds one per call;
    `incremental_scores` keeps the last one for the batches of one occlusion map."""

    def __init__(self, net: Network, x: torch.Tensor, fill_image: torch.Tensor, switch_ratio: float = 0.6):
        if not supports_incremental(net):
            raise ValueError(f"{net.name} is not a chain of convolutions and poolings; use the naive forward")
        self.net = net
        self.model = net.model
        self.switch_ratio = float(switch_ratio)
        with torch.no_grad():
            self.xn = (x - net.mean) / net.std
            self.fn = (fill_image - net.mean) / net.std
            self.steps: list[tuple[nn.Module, _Layer | None]] = []
            self.maps: list[torch.Tensor] = []  # the clean input of every layer
            a = self.xn
            for m in self.model.features:
                out = m(a)
                self.maps.append(a)
                self.steps.append((m, _Layer(m, a, out) if isinstance(m, _WINDOWED) else None))
                a = out
            self.clean_features = a

    # -- pasting changed windows into crops
    @staticmethod
    def _paste(dst: torch.Tensor, dst0: tuple[np.ndarray, np.ndarray], vals: torch.Tensor,
               v0: tuple[np.ndarray, np.ndarray], c: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> None:
        """dst[b] covers map positions from dst0 (per patch, per axis); vals[b] from v0;
        copy the changed interval c = (r0, r1, q0, q1) where both cover it."""
        hd, wd = dst.shape[-2:]
        r0, r1, q0, q1 = c
        for b in range(dst.shape[0]):
            lo_r, hi_r = max(r0[b], dst0[0][b]), min(r1[b], dst0[0][b] + hd)
            lo_c, hi_c = max(q0[b], dst0[1][b]), min(q1[b], dst0[1][b] + wd)
            if hi_r <= lo_r or hi_c <= lo_c:
                continue
            dst[b, :, lo_r - dst0[0][b]:hi_r - dst0[0][b], lo_c - dst0[1][b]:hi_c - dst0[1][b]] = \
                vals[b, :, lo_r - v0[0][b]:hi_r - v0[0][b], lo_c - v0[1][b]:hi_c - v0[1][b]]

    def _full(self, clean: torch.Tensor, vals, v0, c) -> torch.Tensor:
        n = vals.shape[0]
        full = clean.expand(n, -1, -1, -1).contiguous(memory_format=_CL)
        zeros = (np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64))
        self._paste(full, zeros, vals, v0, c)
        return full

    @torch.no_grad()
    def logits(self, boxes: np.ndarray) -> torch.Tensor:
        """Logits (len(boxes) x classes) for one batch of boxes."""
        boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
        n = len(boxes)
        H, W = self.xn.shape[-2:]
        top, left = np.clip(boxes[:, 0], 0, H), np.clip(boxes[:, 1], 0, W)
        bottom, right = np.clip(boxes[:, 2], 0, H), np.clip(boxes[:, 3], 0, W)
        empty = (bottom <= top) | (right <= left)
        r0, r1 = np.where(empty, 0, top), np.where(empty, 0, bottom)
        q0, q1 = np.where(empty, 0, left), np.where(empty, 0, right)
        # Window values at the input: the clean crop with the fill pasted over the box.
        sh, sw = max(1, int((r1 - r0).max())), max(1, int((q1 - q0).max()))
        w0 = (np.clip(r0, 0, H - sh), np.clip(q0, 0, W - sw))
        vals = torch.empty((n, 3, sh, sw), dtype=self.xn.dtype, device=self.xn.device)
        for b in range(n):
            vals[b] = self.xn[0, :, w0[0][b]:w0[0][b] + sh, w0[1][b]:w0[1][b] + sw]
        self._paste(vals, w0, self.fn.expand(n, -1, -1, -1), (np.zeros(n, np.int64), np.zeros(n, np.int64)),
                    (r0, r1, q0, q1))
        c = (r0, r1, q0, q1)

        feats = self.model.features
        for i, (m, layer) in enumerate(self.steps):
            if layer is None:  # elementwise: the window stays where it is
                vals = m(vals)
                continue
            nr0, nr1 = layer.changed(c[0], c[1], 0)
            nq0, nq1 = layer.changed(c[2], c[3], 1)
            ho, wo = layer.out_size
            oh, ow = max(1, int((nr1 - nr0).max())), max(1, int((nq1 - nq0).max()))
            if oh * ow >= self.switch_ratio * ho * wo:
                # The change reaches most of the map: finish with a full batched forward.
                full = self._full(self.maps[i], vals, w0, c)
                for rest in list(feats)[i:]:
                    full = rest(full)
                return _head(self.model, full)
            o0 = (np.clip(nr0, 0, ho - oh), np.clip(nq0, 0, wo - ow))
            kh, kw = layer.crop_len(oh, 0), layer.crop_len(ow, 1)
            ph, pw = layer.g.p
            s_h, s_w = layer.g.s
            # Crop starts in padded coordinates, and the same in map coordinates.
            start = (o0[0] * s_h, o0[1] * s_w)
            crop = torch.empty((n, vals.shape[1], kh, kw), dtype=vals.dtype, device=vals.device, memory_format=_CL)
            for b in range(n):
                crop[b] = layer.padded[0, :, start[0][b]:start[0][b] + kh, start[1][b]:start[1][b] + kw]
            self._paste(crop, (start[0] - ph, start[1] - pw), vals, w0, c)
            vals = layer.apply(crop)
            w0, c = o0, (nr0, nr1, nq0, nq1)
        full = self._full(self.clean_features, vals, w0, c)
        return _head(self.model, full)


def _check(net: Network, x: torch.Tensor, fill_image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise ValueError(f"x must be one RGB image tensor (1x3xHxW), not {getattr(x, 'shape', type(x))}")
    fill_image = torch.as_tensor(fill_image, dtype=torch.float32, device=net.device)
    if fill_image.dim() == 3:
        fill_image = fill_image.unsqueeze(0)
    if fill_image.shape != x.shape:
        fill_image = fill_image.expand_as(x)
    return x.detach().to(net.device, torch.float32), fill_image.detach()


def occluded_batch(x: torch.Tensor, fill: torch.Tensor, boxes) -> torch.Tensor:
    """Copies of `x` with each box replaced by `fill`'s pixels, channels-last.

    Channels-last lets oneDNN pick faster convolution kernels on a CPU (1.3-1.7x for
    EfficientNet); the arithmetic is the same up to summation order.
    """
    batch = x.expand(len(boxes), -1, -1, -1).clone()
    for i, (t, l, b, r) in enumerate(boxes):
        batch[i, :, t:b, l:r] = fill[0, :, t:b, l:r]
    return batch.contiguous(memory_format=torch.channels_last)


def _naive_logits(net: Network, x: torch.Tensor, fill: torch.Tensor, boxes: np.ndarray, batch_size: int) -> torch.Tensor:
    return torch.cat([net(occluded_batch(x, fill, boxes[s:s + batch_size]))
                      for s in range(0, len(boxes), batch_size)])


def occluded_logits(net: Network, x: torch.Tensor, boxes: Sequence[Box] | np.ndarray, fill_image: torch.Tensor,
                    batch_size: int = 64, method: str = "auto", switch_ratio: float = 0.6) -> torch.Tensor:
    """Logits (P x classes) of x with each box (top, left, bottom, right; input pixels,
    bottom/right exclusive) replaced by the same pixels of `fill_image` (1x3xHxW, or
    anything that broadcasts to x: a grey level, the mean colour, a blurred copy).

    method: "incremental" (raises ValueError if the network is not a supported chain),
    "naive" (one batched forward per batch of occluded copies), or "auto" (incremental
    where `supports_incremental(net)`). Both agree within float rounding.
    """
    if method not in ("auto", "incremental", "naive"):
        raise ValueError(f"method must be 'auto', 'incremental' or 'naive', not {method!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive whole number, not {batch_size!r}")
    x, fill = _check(net, x, fill_image)
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    incremental = method == "incremental" or (method == "auto" and supports_incremental(net))
    with net.guard(), torch.no_grad():
        if not incremental:
            return _naive_logits(net, x, fill, boxes, batch_size)
        plan = IncrementalPlan(net, x, fill, switch_ratio)
        return torch.cat([plan.logits(boxes[s:s + batch_size]) for s in range(0, len(boxes), batch_size)])


# --- a scorer for occlusion.occlusion_iter --------------------------------------------

_LAST: dict = {}


def _plan_for(net: Network, x: torch.Tensor, filler: torch.Tensor) -> IncrementalPlan:
    """One plan per (network, image, fill), reused across the batches of one map."""
    params = tuple((p.data_ptr(), p._version) for p in net.parameters())
    key = (id(net), id(x), x._version, id(filler), filler._version, params)
    entry = _LAST.get("entry")
    if entry is not None and entry[0] == key and entry[1]() is x and entry[2]() is filler and entry[3]() is net:
        return entry[4]
    plan = IncrementalPlan(net, x, filler)
    _LAST["entry"] = (key, weakref.ref(x), weakref.ref(filler), weakref.ref(net), plan)
    return plan


def incremental_scores(net: Network, x: torch.Tensor, filler: torch.Tensor, boxes: Sequence[Box],
                       target: int, output: str) -> torch.Tensor:
    """Same signature and values as `occlusion.occluded_scores`, computed incrementally
    (falls back to the naive forward where `supports_incremental(net)` is False)."""
    with net.guard(), torch.no_grad():
        if supports_incremental(net):
            logits = _plan_for(net, x, filler).logits(np.asarray(boxes, dtype=np.int64))
        else:
            x, fill = _check(net, x, filler)
            logits = _naive_logits(net, x, fill, np.asarray(boxes, dtype=np.int64).reshape(-1, 4), len(boxes))
    scores = logits.softmax(-1)[:, target] if output == "prob" else logits[:, target]
    return scores.float().cpu()
