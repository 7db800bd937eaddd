"""The pieces incremental inference runs a network as (see `incremental`).

A supported network becomes a list of ops over *windows*: for a batch of occluded
copies, the values of one rectangle of a feature map per copy (all of one size, the
rectangles placed per copy), which hold the true occluded values everywhere inside
and differ from the clean map only in each copy's *changed region*.

- `Window`: a convolution with a kernel or stride larger than 1, a max or average pool.
  Output positions [o0, o1) read input positions [o0*s - p, (o1-1)*s - p + (k-1)*d + 1),
  so a change on [c0, c1) reaches the outputs `Window.changed` gives. Its input crop is
  gathered from the clean input (padded once: zeros for convolutions, -inf for max-pool,
  so padding exists at true borders only) with the changed values pasted in.
- `Pointwise`: element-wise ops (batch norm in eval mode, activations, dropout in eval
  mode) and 1x1 convolutions with stride 1: they keep the window where it is.
- A convolution followed by batch norm (eval mode) and an activation runs as one op
  (`fuse`): the batch norm folded into the weights of each run (`conv_params`), the
  activation applied in place. Same arithmetic up to float rounding, two passes over
  the map fewer.
- `Save` / `Add`: a residual block's input is saved; at the addition its shortcut
  (identity, or a strided 1x1 convolution and batch norm) is computed on the branch's
  window and added. The changed region is the union of the two branches'.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Window", "Pointwise", "Save", "Add", "Map", "Windows", "gather", "union", "conv_macs", "fuse",
           "conv_params"]

CHANNELS_LAST = torch.channels_last


def pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def conv_macs(m: nn.Module) -> int:
    """Multiply-adds per output position of a convolution (0 for anything else)."""
    if isinstance(m, nn.Conv2d):
        return m.out_channels * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
    return 0


class Window:
    """A spatial op: a convolution with a kernel or stride above 1, a max or average pool."""

    def __init__(self, module: nn.Module):
        self.module = module
        if isinstance(module, nn.Conv2d):
            self.k, self.s, self.p, self.d = (pair(module.kernel_size), pair(module.stride), pair(module.padding),
                                              pair(module.dilation))
        else:
            stride = module.stride if module.stride is not None else module.kernel_size
            dilation = module.dilation if isinstance(module, nn.MaxPool2d) else 1
            self.k, self.s, self.p, self.d = pair(module.kernel_size), pair(stride), pair(module.padding), pair(dilation)
        self.pad_value = float("-inf") if isinstance(module, nn.MaxPool2d) else 0.0
        self.macs = conv_macs(module)
        self.is_conv = isinstance(module, nn.Conv2d)
        self.bn: nn.Module | None = None   # folded into the weights (`fuse`)
        self.act: nn.Module | None = None  # applied in place after the convolution
        self.slot = -1
        self.in_size: tuple[int, int] = (0, 0)
        self.out_size: tuple[int, int] = (0, 0)

    def record(self, in_size, out_size) -> None:
        self.in_size, self.out_size = tuple(in_size), tuple(out_size)

    def changed(self, c0: np.ndarray, c1: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
        """Output interval that an input change on [c0, c1) can reach (empty stays empty)."""
        k, s, p, d = self.k[axis], self.s[axis], self.p[axis], self.d[axis]
        n = self.out_size[axis]
        lo = np.maximum(0, -((-(c0 + p - (k - 1) * d)) // s))  # ceil division
        hi = np.minimum(n, (c1 - 1 + p) // s + 1)
        empty = (c1 <= c0) | (hi <= lo)
        return np.where(empty, 0, lo), np.where(empty, 0, hi)

    def crop_len(self, n: int, axis: int) -> int:
        """Input length that n outputs read."""
        return (n - 1) * self.s[axis] + (self.k[axis] - 1) * self.d[axis] + 1

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """The clean input padded once (and on the far side for ceil-mode windows that
        hang past the padding)."""
        extra = [max(0, self.crop_len(self.out_size[a], a) - (self.in_size[a] + 2 * self.p[a])) for a in (0, 1)]
        ph, pw = self.p
        return F.pad(x, (pw, pw + extra[1], ph, ph + extra[0]), value=self.pad_value)

    def apply(self, crop: torch.Tensor, params) -> torch.Tensor:
        """The op on an already padded crop (params: this run's (weight, bias))."""
        m = self.module
        if self.is_conv:
            return conv_act(crop, params, self.s, (0, 0), self.d, m.groups, self.act)
        if isinstance(m, nn.MaxPool2d):
            return F.max_pool2d(crop, self.k, self.s, 0, self.d)
        return F.avg_pool2d(crop, self.k, self.s, 0, False, True, m.divisor_override)

    def full(self, x: torch.Tensor, params) -> torch.Tensor:
        """The op on a whole map, with its own padding."""
        m = self.module
        if self.is_conv:
            return conv_act(x, params, self.s, self.p, self.d, m.groups, self.act)
        return m(x)


class Pointwise:
    """An op that keeps the window where it is: element-wise, or a 1x1 convolution with
    stride 1 and no padding."""

    def __init__(self, module: nn.Module):
        self.module = module
        self.macs = conv_macs(module)
        self.is_conv = isinstance(module, nn.Conv2d)
        self.bn: nn.Module | None = None
        self.act: nn.Module | None = None

    def __call__(self, x: torch.Tensor, params=None) -> torch.Tensor:
        if self.is_conv:
            return conv_act(x, params, (1, 1), (0, 0), (1, 1), 1, self.act)
        return self.module(x)


class Save:
    """Keep the current windows: the input of a residual block."""

    def __init__(self):
        self.slot = -1


class Add:
    """The end of a residual block: branch + shortcut(saved input).

    branch: the `Window` ops between the `Save` and here (to check that the branch's
    changed region contains the shortcut's, so the branch's window holds the sum);
    shortcut: ops on the saved input, empty for identity; a first `Window` (a strided
    1x1 convolution) is computed on the branch's window, the rest must be `Pointwise`."""

    def __init__(self, save: Save, branch: list[Window], shortcut: list):
        self.save, self.branch, self.shortcut = save, branch, shortcut
        if any(not isinstance(op, Pointwise) for op in shortcut[1:]) or \
                (shortcut and not isinstance(shortcut[0], (Window, Pointwise))):
            raise ValueError("a shortcut is an optional Window followed by Pointwise ops")


class Map:
    """One clean map (1 x C x H x W) as rows of channels (H*W x C), the layout that
    gathering windows out of it wants. `offset` is the padding on top and left."""

    def __init__(self, m: torch.Tensor, offset: tuple[int, int] = (0, 0)):
        self.channels = m.shape[1]
        self.size = tuple(m.shape[-2:])
        self.offset = offset
        self.rows = m[0].permute(1, 2, 0).reshape(-1, self.channels).contiguous()


class Windows:
    """The values of a batch of occluded copies on one rectangle per copy.

    values: n x C x h x w (channels-last) placed at `start` = (rows, cols) per copy;
    changed = (r0, r1, q0, q1) per copy, the region where they differ from the clean map;
    full: the rectangle is the whole map. With `per_box` False, `values` is a single
    map's rows (H*W x C) shared by every copy: the fill image at the input.
    """

    def __init__(self, values: torch.Tensor, start, changed, size, full: bool = False, per_box: bool = True):
        self.values, self.start, self.changed = values, start, changed
        self.size = (int(size[0]), int(size[1]))
        self.full, self.per_box = full, per_box

    def rows(self) -> torch.Tensor:
        if not self.per_box:
            return self.values
        return self.values.permute(0, 2, 3, 1).reshape(-1, self.values.shape[1])

    def with_values(self, values: torch.Tensor) -> "Windows":
        return Windows(values, self.start, self.changed, self.size, self.full, self.per_box)

    def same_place(self, other: "Windows") -> bool:
        if not (self.per_box and other.per_box and self.size == other.size):
            return False
        return (self.full and other.full) or (np.array_equal(self.start[0], other.start[0])
                                              and np.array_equal(self.start[1], other.start[1]))


def _index(starts: np.ndarray, length: int) -> np.ndarray:
    return starts[:, None] + np.arange(length)


def gather(clean: Map, start: tuple[np.ndarray, np.ndarray], size: tuple[int, int], source: Windows) -> torch.Tensor:
    """Windows of `size` at map positions `start` (per copy): the clean map's values,
    with each copy's changed region taken from `source` instead. Two gathers, whatever
    the number of copies; returns n x C x h x w, channels-last."""
    n = len(start[0])
    kh, kw = size
    ys, xs = _index(start[0], kh), _index(start[1], kw)  # map coordinates, n x kh / n x kw
    oy, ox = clean.offset
    width = clean.size[1]
    device = clean.rows.device  # indices built with numpy go where the maps are (CUDA too)
    clean_idx = (ys + oy)[:, :, None] * width + (xs + ox)[:, None, :]
    out = clean.rows.index_select(0, torch.from_numpy(clean_idx.reshape(-1)).to(device))
    r0, r1, q0, q1 = source.changed
    inside = (((ys >= r0[:, None]) & (ys < r1[:, None]))[:, :, None]
              & ((xs >= q0[:, None]) & (xs < q1[:, None]))[:, None, :])
    where = np.flatnonzero(inside)
    if len(where):
        vh, vw = source.size
        v_idx = (ys - source.start[0][:, None])[:, :, None] * vw + (xs - source.start[1][:, None])[:, None, :]
        if source.per_box:
            v_idx = v_idx + (np.arange(n) * vh * vw)[:, None, None]
        picked = source.rows().index_select(0, torch.from_numpy(v_idx.reshape(-1)[where]).to(device))
        out.index_copy_(0, torch.from_numpy(where).to(device), picked)
    return out.view(n, kh, kw, -1).permute(0, 3, 1, 2)


def union(a, b):
    """Per copy, the bounding box of two changed regions (r0, r1, q0, q1); an empty one
    adds nothing."""
    a_empty = (a[1] <= a[0]) | (a[3] <= a[2])
    b_empty = (b[1] <= b[0]) | (b[3] <= b[2])
    out = []
    for i, pick in enumerate((np.minimum, np.maximum, np.minimum, np.maximum)):
        both = pick(a[i], b[i])
        out.append(np.where(a_empty, b[i], np.where(b_empty, a[i], both)))
    return tuple(out)


# --- fusing convolution, batch norm and activation ----------------------------------------

def _batch_norm(m: nn.Module) -> bool:
    return isinstance(m, nn.BatchNorm2d) and m.running_mean is not None and m.running_var is not None


def _activation(m: nn.Module | None) -> bool:
    return m is not None and type(m) in (nn.ReLU, nn.ReLU6, nn.Identity)


def fuse(ops: list) -> list:
    """Convolution ops absorb a following batch norm (with timm's activation inside it)
    and a following ReLU / ReLU6. Only neighbours in the list: a `Save` or `Add` between
    them keeps them apart."""
    out: list = []
    for op in ops:
        last = out[-1] if out else None
        conv = isinstance(last, (Window, Pointwise)) and last.is_conv
        if conv and isinstance(op, Pointwise) and last.bn is None and last.act is None and _batch_norm(op.module):
            act = getattr(op.module, "act", None)
            drop = getattr(op.module, "drop", None)
            if (act is None or _activation(act)) and (drop is None or type(drop) in (nn.Identity, nn.Dropout)):
                last.bn, last.act = op.module, act
                continue
        if conv and isinstance(op, Pointwise) and last.act is None and _activation(op.module):
            last.act = op.module
            continue
        out.append(op)
        if isinstance(op, Add):
            op.shortcut = fuse(op.shortcut)
    return out


def conv_params(op) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(weight, bias) of a convolution op with its batch norm folded in (eval mode:
    y = (x - mean) / sqrt(var + eps) * gamma + beta), channels-last for oneDNN."""
    conv = op.module
    weight, bias = conv.weight, conv.bias
    if op.bn is not None:
        bn = op.bn
        scale = torch.rsqrt(bn.running_var + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight
        shift = -bn.running_mean * scale
        if bn.bias is not None:
            shift = shift + bn.bias
        weight = weight * scale.view(-1, 1, 1, 1)
        bias = shift if bias is None else bias * scale + shift
    return weight.contiguous(memory_format=CHANNELS_LAST), bias


def activate(x: torch.Tensor, act: nn.Module | None) -> torch.Tensor:
    """The activation in place on a fresh convolution output."""
    if act is None or type(act) is nn.Identity:
        return x
    if type(act) is nn.ReLU:
        return x.relu_()
    return x.clamp_(0.0, 6.0)  # ReLU6


_FUSED: dict[str, bool] = {}


def _fused_conv_available() -> bool:
    """Whether oneDNN's fused convolution + activation (the op PyTorch's compiler emits
    on a CPU) is there and agrees with conv2d + clamp on a small case."""
    if "ok" not in _FUSED:
        try:
            x = torch.linspace(-3, 3, 2 * 4 * 5 * 5).view(2, 4, 5, 5).contiguous(memory_format=CHANNELS_LAST)
            w = torch.linspace(-1, 1, 4 * 9).view(4, 1, 3, 3).contiguous(memory_format=CHANNELS_LAST)
            b = torch.linspace(-0.5, 0.5, 4)
            got = torch.ops.mkldnn._convolution_pointwise(x, w, b, [1, 1], [1, 1], [1, 1], 4, "hardtanh",
                                                           [0.0, 6.0], "")
            _FUSED["ok"] = bool(torch.allclose(got, F.conv2d(x, w, b, 1, 1, 1, 4).clamp(0, 6), atol=1e-5))
        except Exception:  # noqa: BLE001 - no oneDNN, or another signature: the plain ops
            _FUSED["ok"] = False
    return _FUSED["ok"]


def conv_act(x: torch.Tensor, params, stride, padding, dilation, groups: int, act: nn.Module | None) -> torch.Tensor:
    """Convolution then activation. On a CPU, ReLU and ReLU6 run inside oneDNN's
    convolution (`_convolution_pointwise`): a depthwise convolution is bound by memory,
    so a separate clamp pass costs as much again (64 x 96 x 30 x 30: 42 ms conv, +40 ms
    clamp, 41 ms fused); same values."""
    weight, bias = params
    kind = type(act) if act is not None else None
    if kind in (nn.ReLU, nn.ReLU6) and x.device.type == "cpu" and x.dtype == torch.float32 \
            and x.is_contiguous(memory_format=CHANNELS_LAST) and _fused_conv_available():
        attr, scalars = ("relu", []) if kind is nn.ReLU else ("hardtanh", [0.0, 6.0])
        return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, list(padding), list(stride),
                                                       list(dilation), groups, attr, scalars, "")
    return activate(F.conv2d(x, weight, bias, stride, padding, dilation, groups), act)
