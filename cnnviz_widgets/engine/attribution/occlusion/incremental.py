"""Exact occlusion by incremental inference (lesson ``06_occlusion``, the fast path).

Idea (Krypton: Nakandala, Kumar & Papakonstantinou, "Incremental and Approximate
Inference for Faster Occlusion-based Deep CNN Explanations", SIGMOD 2019): a patch
changes only a bounded region of each feature map. Run the clean image once and keep
the input of every spatial op; then, for a batch of patch positions, recompute only
the region of each map the patch can reach, on crops of the clean maps with the
changed values pasted in (`ops`). Once that region covers a whole map, the rest runs
as a normal batched forward. Residual blocks (EfficientNet-Lite0, ResNet) propagate
the union of their two branches' regions (`networks`).

The result is exact (the naive batched forward's logits, up to float rounding), for
every fill: the fill is simply a second image whose pixels replace the box.

Three things make it fast on a CPU:

- Grouping by changed-region size (`Program.groups`). A border patch changes less of
  every map than a central one, but a batch pays for its largest window. Boxes whose
  changed lengths agree at every spatial op share a *profile* per axis; a group is a
  run of row profiles by a run of column profiles. A cost model (multiply-adds of the
  padded windows x (1 + A/n) plus a fixed cost per group) and a dynamic programme
  over the runs pick the groups.
- Two gathers per spatial op instead of a copy per box (`ops.gather`).
- One head pass (classifier) over all boxes of a report.

`Program` is what does not depend on the image (the ops at one input size, the
grouping); a `Run` holds one image's clean maps, which can be large (VGG16: hundreds
of MB), and is dropped when the map is done. `occlusion.OcclusionPlan` keeps a
Program for reuse across images and fills.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ...core import checks
from ...core.network import Network
from .fills import occluded_batch
from .networks import Unsupported, network_ops
from .ops import CHANNELS_LAST, Add, Map, Pointwise, Save, Window, Windows, conv_params, gather, union

__all__ = ["Program", "Run", "Unsupported", "supports_incremental", "occluded_logits"]

Box = tuple[int, int, int, int]  # (top, left, bottom, right), bottom/right exclusive

MAX_DP_PROFILES = 48
# Live float32 maps of one box's widest window during a batch: inputs, outputs, a saved
# residual branch, the gathered and padded copies. Measured on EfficientNet-Lite0 at 224 px,
# 32/8: about 6 MB a box in batches of 16-64, where 3 maps predicted 1.5 MB and lesson 06's
# kernel went past its 1.3 GB.
MAPS_ALIVE = 12


def supports_incremental(net: Network) -> bool:
    """True when `net` can be run incrementally (see `networks`)."""
    try:
        network_ops(getattr(net, "model", None))
    except Unsupported:
        return False
    return True


def clip_boxes(boxes, size) -> np.ndarray:
    """Boxes (n x 4) clipped to the image (a box partly outside covers its inside part);
    empty ones become (0, 0, 0, 0)."""
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    h, w = int(size[0]), int(size[1])
    out = np.stack([np.clip(boxes[:, 0], 0, h), np.clip(boxes[:, 1], 0, w),
                    np.clip(boxes[:, 2], 0, h), np.clip(boxes[:, 3], 0, w)], axis=1)
    out[(out[:, 2] <= out[:, 0]) | (out[:, 3] <= out[:, 1])] = 0
    return out


# --- grouping ------------------------------------------------------------------------

def _even_runs(n: int, runs: int = 16) -> list[tuple[int, int]]:
    step = max(1, -(-n // runs))
    return [(i, min(n, i + step)) for i in range(0, n, step)]


def _ranked_profiles(profiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index per box, unique profiles), the profiles sorted by total length so that
    neighbours are alike."""
    uniq, inv = np.unique(profiles, axis=0, return_inverse=True)
    order = np.argsort(uniq.sum(axis=1), kind="stable")
    rank = np.empty(len(uniq), np.int64)
    rank[order] = np.arange(len(uniq))
    return rank[inv.ravel()], uniq[order]


class _GroupCost:
    """Cost of running boxes as groups of padded windows, in multiply-adds.

    Per group of n boxes: n x (MACs of the padded windows) x (1 + A/n) + fixed.
    A = 1.5 fits the CPU's convolutions (1.37x per image at n = 4 vs n = 64); the fixed
    cost, about 0.1 ms of convolution per op, is a group's gathers and Python. Both only
    steer the grouping: every grouping gives the same logits.
    """

    A = 1.5
    FIXED_PER_OP = 7.5e6

    def __init__(self, macs: np.ndarray, n_ops: int):
        self.macs = macs
        self.fixed = self.FIXED_PER_OP * n_ops

    def best_runs(self, mine: np.ndarray, other: np.ndarray, counts: np.ndarray,
                  other_runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Runs of `mine` (profiles x layers, lengths at the input then per layer)
        minimising the total cost, the other axis grouped as `other_runs`."""
        other_max = np.stack([other[i:j].max(axis=0)[1:] for i, j in other_runs]) * self.macs  # K x L
        per_run = np.stack([counts[:, i:j].sum(axis=1) for i, j in other_runs], axis=1)  # P x K
        prefix = np.vstack([np.zeros(len(other_runs)), np.cumsum(per_run, axis=0)])
        P = len(mine)
        best = np.full(P + 1, np.inf)
        best[0] = 0.0
        start = np.zeros(P + 1, np.int64)
        for j in range(1, P + 1):
            h = np.zeros(mine.shape[1] - 1)
            for i in range(j - 1, -1, -1):
                h = np.maximum(h, mine[i, 1:])
                n = prefix[j] - prefix[i]
                cost = float((((other_max @ h) * (n + self.A)) + self.fixed)[n > 0].sum())
                if best[i] + cost < best[j]:
                    best[j], start[j] = best[i] + cost, i
        runs, j = [], P
        while j > 0:
            runs.append((int(start[j]), j))
            j = int(start[j])
        return runs[::-1]


# --- the program: a network at one input size ---------------------------------------------

class Program:
    """A supported network as ops (`networks`), at one input size: everything incremental
    inference needs that does not depend on the image. Raises `Unsupported`."""

    def __init__(self, net: Network, size: tuple[int, int]):
        self.net = net
        self.ops, self.tail = network_ops(net.model)
        self.size = (int(size[0]), int(size[1]))
        slots = 0
        for op in self._all_ops():
            if isinstance(op, (Window, Save)):
                op.slot, slots = slots, slots + 1
        self.final_slot, self.slots = slots, slots + 1
        # A shape pass records the map sizes of every op at this input size.
        with net.guard(), torch.no_grad():
            self.clean_pass(torch.zeros(1, 3, *self.size, device=net.device), self.params(), record=True)
        self.windows = [op for op in self.ops if isinstance(op, Window)]
        for op in self.ops:
            if isinstance(op, Add):
                self._check_branch_contains_shortcut(op)
        # Multiply-adds per output position at each window's size: the window op itself
        # and the 1x1 convolutions and shortcuts that run on the same window after it.
        macs = np.zeros(len(self.windows))
        k = -1
        for op in self.ops:
            if isinstance(op, Window):
                k += 1
            if k >= 0:
                macs[k] += op.macs if isinstance(op, (Window, Pointwise)) else \
                    sum(s.macs for s in op.shortcut) if isinstance(op, Add) else 0
        self.macs = macs
        self.head_macs = sum(m.in_features * m.out_features for m in net.model.modules()
                             if isinstance(m, torch.nn.Linear))

    def _all_ops(self):
        for op in self.ops:
            yield op
            if isinstance(op, Add):
                yield from op.shortcut

    def params(self) -> dict:
        """(weight, bias) per convolution op, batch norm folded in, channels-last
        (oneDNN's faster kernels): taken per run, so that a network whose weights change
        is never run with stale ones."""
        return {op: conv_params(op) for op in self._all_ops() if isinstance(op, (Window, Pointwise)) and op.is_conv}

    def clean_pass(self, xn: torch.Tensor, params, record: bool = False):
        """The forward of one normalised image through the ops, keeping what the windows
        read: the padded input of every window op and every residual block's input.
        Returns (maps by slot, logits)."""
        maps: list[Map | None] = [None] * self.slots
        saved: dict[int, torch.Tensor] = {}
        a = xn.contiguous(memory_format=CHANNELS_LAST)
        if record:
            self.widest = []  # per window op: the most channels of a map at its window

        def window(op: Window, a: torch.Tensor) -> torch.Tensor:
            out = op.full(a, params.get(op))
            if record:
                op.record(a.shape[-2:], out.shape[-2:])
            maps[op.slot] = Map(op.pad(a), offset=op.p)
            return out

        for op in self.ops:
            if isinstance(op, Window):
                a = window(op, a)
                if record:
                    self.widest.append(0)
            elif isinstance(op, Pointwise):
                a = op(a, params.get(op))
            elif isinstance(op, Save):
                maps[op.slot] = Map(a)
                saved[op.slot] = a
            else:
                s = saved.pop(op.save.slot)
                for sc in op.shortcut:
                    s = window(sc, s) if isinstance(sc, Window) else sc(s, params.get(sc))
                a = a + s
            if record and self.widest:
                self.widest[-1] = max(self.widest[-1], a.shape[1])
        maps[self.final_slot] = Map(a)
        return maps, self.tail(a)

    def _check_branch_contains_shortcut(self, add: Add) -> None:
        """The branch's window must hold the sum: its changed region has to contain the
        shortcut's for every input interval. Region ends move monotonically with the
        interval's ends, so checking every start (end fixed) and every end suffices."""
        for axis in (0, 1):
            n = self._size_at(add.save)[axis]
            c = np.arange(n)
            for c0, c1, end in ((c, np.full(n, n), 0), (np.zeros(n, np.int64), c + 1, 1)):
                b0, b1, s0, s1 = c0, c1, c0, c1
                for op in add.branch:
                    b0, b1 = op.changed(b0, b1, axis)
                for op in add.shortcut:
                    if isinstance(op, Window):
                        s0, s1 = op.changed(s0, s1, axis)
                reached = s1 > s0  # a shortcut that skips the change (a strided 1x1) adds nothing
                ok = np.all(~reached | ((b0 <= s0) if end == 0 else (b1 >= s1)))
                if not ok:
                    raise Unsupported("a residual block whose shortcut reaches outside its branch")

    def _size_at(self, save: Save) -> tuple[int, int]:
        size = self.size
        for op in self.ops:
            if op is save:
                return size
            if isinstance(op, Window):
                size = op.out_size
        raise ValueError("that Save is not in the program")

    # -- geometry
    def axis_profiles(self, lo: np.ndarray, hi: np.ndarray, axis: int) -> np.ndarray:
        """Per box, the changed length along one axis at the input and after every window op."""
        sizes = [hi - lo]
        for op in self.windows:
            lo, hi = op.changed(lo, hi, axis)
            sizes.append(hi - lo)
        return np.stack(sizes, axis=1)

    def work_fraction(self, boxes) -> float:
        """Multiply-adds of exact incremental inference over those of the naive forward,
        averaged over `boxes` (changed regions only, no padding; the classifier counts
        in full on both sides). 1 / this is the speed-up bound at equal efficiency."""
        boxes = clip_boxes(boxes, self.size)
        rows = self.axis_profiles(boxes[:, 0], boxes[:, 2], 0)[:, 1:]
        cols = self.axis_profiles(boxes[:, 1], boxes[:, 3], 1)[:, 1:]
        sizes = np.array([op.out_size for op in self.windows], dtype=np.float64)
        naive = float((sizes[:, 0] * sizes[:, 1] * self.macs).sum()) + self.head_macs
        return (float((rows * cols * self.macs).sum(axis=1).mean()) + self.head_macs) / naive

    def bytes_per_box(self, boxes) -> int:
        """Memory one box's windows take at the widest point of the network (the largest
        window times its most channels, `MAPS_ALIVE` such maps at once): what a batch
        size for a memory budget divides by."""
        boxes = clip_boxes(boxes, self.size)
        rows = self.axis_profiles(boxes[:, 0], boxes[:, 2], 0)[:, 1:].max(axis=0)
        cols = self.axis_profiles(boxes[:, 1], boxes[:, 3], 1)[:, 1:].max(axis=0)
        widest = float((np.maximum(rows, 1) * np.maximum(cols, 1) * np.array(self.widest)).max())
        return int(MAPS_ALIVE * 4 * widest)

    def groups(self, boxes) -> np.ndarray:
        """A group index per box; each group runs as batches of equal-sized windows.

        Along each axis, boxes whose changed lengths agree at every window op share a
        profile, and a group is a run of neighbouring row profiles by a run of column
        profiles, its windows padded to the largest. Which runs is a trade-off: exact
        profiles waste nothing on padding but give small batches, which a CPU runs
        slower per image. `_GroupCost` models both and alternating dynamic programmes
        over rows and columns pick the runs (AlexNet 32/16: 0.55 s vs 0.67 s with exact
        profiles)."""
        boxes = clip_boxes(boxes, self.size)
        if len(boxes) == 0:
            return np.zeros(0, np.int64)
        rows, ru = _ranked_profiles(self.axis_profiles(boxes[:, 0], boxes[:, 2], 0))
        cols, cu = _ranked_profiles(self.axis_profiles(boxes[:, 1], boxes[:, 3], 1))
        if max(len(ru), len(cu)) > MAX_DP_PROFILES:
            # Boxes of many sizes (not an occlusion grid, whose profiles number a few
            # dozen at most): the DP's O(P^2) would cost more than it saves. Even runs.
            row_runs, col_runs = _even_runs(len(ru)), _even_runs(len(cu))
        else:
            counts = np.zeros((len(ru), len(cu)))
            np.add.at(counts, (rows, cols), 1)
            model = _GroupCost(self.macs, len(self.ops))
            col_runs = [(q, q + 1) for q in range(len(cu))]
            for _ in range(2):
                row_runs = model.best_runs(ru, cu, counts, col_runs)
                col_runs = model.best_runs(cu, ru, counts.T, row_runs)
        row_of = np.concatenate([[k] * (j - i) for k, (i, j) in enumerate(row_runs)]).astype(np.int64)
        col_of = np.concatenate([[k] * (j - i) for k, (i, j) in enumerate(col_runs)]).astype(np.int64)
        return row_of[rows] * len(col_runs) + col_of[cols]

    def start(self, x: torch.Tensor, fill_image: torch.Tensor, switch_ratio: float = 1.0) -> "Run":
        return Run(self, x, fill_image, switch_ratio)


# --- one run: an image, a fill, its clean maps ------------------------------------------

class Run:
    """One image and fill on a `Program`: the clean maps (this run's memory) and the
    incremental forward of batches of boxes. Call inside ``net.guard()`` and no_grad.

    switch_ratio: a window that reaches this share of its map becomes the whole map
    (1.0, the default, only when it is the whole map; every ratio gives the same logits).
    """

    def __init__(self, program: Program, x: torch.Tensor, fill_image: torch.Tensor, switch_ratio: float = 1.0):
        net = program.net
        if tuple(x.shape[-2:]) != program.size:
            raise ValueError(f"this program is for {program.size[0]}x{program.size[1]} images, "
                             f"not {x.shape[-2]}x{x.shape[-1]}")
        self.program = program
        self.switch_ratio = float(switch_ratio)
        self.params = program.params()
        xn = (x - net.mean) / net.std
        self.image = Map(xn)
        self.fill = Map((fill_image.expand_as(x) - net.mean) / net.std)
        self.maps, self.clean_logits = program.clean_pass(xn, self.params)
        self.features_shape = tuple(self.maps[program.final_slot].size)

    def logits(self, boxes, batch_size: int = 64, groups: np.ndarray | None = None) -> torch.Tensor:
        """Logits (len(boxes) x classes) for boxes (top, left, bottom, right), grouped
        by `Program.groups` (or the `groups` given), each group in batches of at most
        `batch_size`, the head once over all boxes."""
        boxes = clip_boxes(boxes, self.program.size)
        final = self.maps[self.program.final_slot]
        if len(boxes) == 0:
            return self.program.tail(final.rows.new_zeros((0, final.channels, *final.size)))
        group = self.program.groups(boxes) if groups is None else np.asarray(groups)
        order = np.argsort(group, kind="stable")
        bounds = np.flatnonzero(np.diff(group[order])) + 1
        feats = torch.empty((len(boxes), final.channels, *final.size), dtype=final.rows.dtype,
                            device=final.rows.device).contiguous(memory_format=CHANNELS_LAST)
        for members in np.split(order, bounds):
            for s in range(0, len(members), batch_size):
                idx = members[s:s + batch_size]
                feats[torch.from_numpy(idx).to(feats.device)] = self.features(boxes[idx])
        return self.program.tail(feats)

    def features(self, boxes: np.ndarray) -> torch.Tensor:
        """The last spatial map (n x C x h x w) for one batch of clipped boxes; each
        window op's windows take the batch's largest changed region."""
        p = self.program
        n = len(boxes)
        zeros = np.zeros(n, np.int64)
        top, left, bottom, right = boxes.T
        # At the input the changed values are the fill image's, shared by every box.
        win = Windows(self.fill.rows, (zeros, zeros), (top, bottom, left, right), p.size, per_box=False)
        saved: dict[int, Windows] = {}
        for op in p.ops:
            if isinstance(op, Window):
                win = self._window(op, win)
                continue
            if not win.per_box:
                win = self._materialise(win)
            if isinstance(op, Pointwise):
                win = win.with_values(op(win.values, self.params.get(op)))
            elif isinstance(op, Save):
                saved[op.slot] = win
            else:
                win = self._add(op, win, saved.pop(op.save.slot))
        if not win.per_box:
            win = self._materialise(win)
        final = self.maps[p.final_slot]
        if win.full:
            return win.values
        return gather(final, (zeros, zeros), final.size, win)

    def _materialise(self, win: Windows) -> Windows:
        """The input windows themselves (only needed when a network starts with a
        pointwise op): each box's window of the image with the fill pasted in."""
        H, W = self.program.size
        top, bottom, left, right = win.changed
        sh, sw = max(1, int((bottom - top).max())), max(1, int((right - left).max()))
        w0 = (np.clip(top, 0, H - sh), np.clip(left, 0, W - sw))
        return Windows(gather(self.image, w0, (sh, sw), win), w0, win.changed, (sh, sw), full=(sh, sw) == (H, W))

    def _window(self, op: Window, win: Windows) -> Windows:
        c = win.changed
        nr0, nr1 = op.changed(c[0], c[1], 0)
        nq0, nq1 = op.changed(c[2], c[3], 1)
        changed = (nr0, nr1, nq0, nq1)
        ho, wo = op.out_size
        params = self.params.get(op)
        n = len(nr0)
        zeros = np.zeros(n, np.int64)
        if win.full:
            return Windows(op.full(win.values, params), (zeros, zeros), changed, (ho, wo), full=True)
        oh, ow = max(1, int((nr1 - nr0).max())), max(1, int((nq1 - nq0).max()))
        if oh * ow >= self.switch_ratio * ho * wo:
            oh, ow = ho, wo  # the change reaches most of the map: from here on, whole maps
        o0 = (np.clip(nr0, 0, ho - oh), np.clip(nq0, 0, wo - ow))
        crop = self._crop(op, o0, (oh, ow), win)
        return Windows(op.apply(crop, params), o0, changed, (oh, ow), full=(oh, ow) == (ho, wo))

    def _crop(self, op: Window, o0, out_size, source: Windows) -> torch.Tensor:
        """The input of `op` for outputs `out_size` at `o0`: the clean padded input with
        `source`'s changed values pasted."""
        start = (o0[0] * op.s[0] - op.p[0], o0[1] * op.s[1] - op.p[1])
        size = (op.crop_len(out_size[0], 0), op.crop_len(out_size[1], 1))
        return gather(self.maps[op.slot], start, size, source)

    def _add(self, op: Add, win: Windows, saved: Windows) -> Windows:
        """branch (win) + shortcut(saved), on the branch's window."""
        shortcut = op.shortcut
        if shortcut and isinstance(shortcut[0], Window):
            sc = shortcut[0]
            params = self.params.get(sc)
            if win.full and saved.full:
                short = sc.full(saved.values, params)
            else:
                short = sc.apply(self._crop(sc, win.start, win.size, saved), params)
            c = saved.changed
            s_changed = (*sc.changed(c[0], c[1], 0), *sc.changed(c[2], c[3], 1))
            shortcut = shortcut[1:]
        else:
            # Identity positions: the saved input on the branch's window.
            short = saved.values if win.same_place(saved) else gather(self.maps[op.save.slot], win.start, win.size,
                                                                      saved)
            s_changed = saved.changed
        for pw in shortcut:
            short = pw(short, self.params.get(pw))
        # The shortcut's changed region lies inside the branch's (checked by Program).
        # In place where the branch ends in a fresh tensor (a convolution), which nothing else holds.
        fresh = win.values.data_ptr() not in (saved.values.data_ptr(), short.data_ptr())
        values = win.values.add_(short) if fresh else win.values + short
        return Windows(values, win.start, union(win.changed, s_changed), win.size, win.full)


def _check(net: Network, x: torch.Tensor, fill_image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise ValueError(f"x must be one RGB image tensor (1x3xHxW), not {getattr(x, 'shape', type(x))}")
    fill_image = torch.as_tensor(fill_image, dtype=torch.float32, device=net.device)
    if fill_image.dim() == 3:
        fill_image = fill_image.unsqueeze(0)
    if fill_image.shape != x.shape:
        fill_image = fill_image.expand_as(x)
    return x.detach().to(net.device, torch.float32), fill_image.detach()


def naive_logits(net: Network, x: torch.Tensor, fill: torch.Tensor, boxes: np.ndarray, batch_size: int) -> torch.Tensor:
    """The reference: one batched forward per `batch_size` occluded copies."""
    if len(boxes) == 0:
        return net(x)[:0]
    return torch.cat([net(occluded_batch(x, fill, boxes[s:s + batch_size]))
                      for s in range(0, len(boxes), batch_size)])


def occluded_logits(net: Network, x: torch.Tensor, boxes: Sequence[Box] | np.ndarray, fill_image: torch.Tensor,
                    batch_size: int = 64, method: str = "auto", switch_ratio: float = 1.0) -> torch.Tensor:
    """Logits (P x classes) of x with each box (top, left, bottom, right; input pixels,
    bottom/right exclusive) replaced by the same pixels of `fill_image` (1x3xHxW, or
    anything that broadcasts to x: a grey level, the mean colour, a blurred copy).

    method: "incremental" (raises ValueError naming what is in the way if the network
    is not supported), "naive" (one batched forward per batch of occluded copies), or
    "auto" (incremental where `supports_incremental(net)`). Both agree within float
    rounding. Boxes partly outside the image cover their inside part.
    """
    method = checks.choice(method, "method", ("auto", "incremental", "naive"))
    batch_size = checks.integer(batch_size, "batch_size", low=1)
    x, fill = _check(net, x, fill_image)
    boxes = clip_boxes(boxes, x.shape[-2:])
    with net.guard(), torch.no_grad():
        if method != "naive":
            try:
                program = Program(net, x.shape[-2:])
            except Unsupported as e:
                if method == "incremental":
                    raise ValueError(f"{net.name} cannot run incrementally ({e}); use method='auto' or 'naive'") \
                        from None
                program = None
            if program is not None:
                return program.start(x, fill, switch_ratio).logits(boxes, batch_size)
        return naive_logits(net, x, fill, boxes, batch_size)
