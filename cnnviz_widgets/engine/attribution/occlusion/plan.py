"""Where the patches go, and how they are scored: `OcclusionPlan`."""

from __future__ import annotations

import threading

import numpy as np

from ...core import checks
from ...core.network import Network
from .incremental import Program, Unsupported

__all__ = ["positions", "check_settings", "OcclusionPlan", "METHODS"]

METHODS = ("auto", "incremental", "naive")
# Incremental scoring reports at least this many positions at a time: it groups them by
# the size of their changed regions, which pays off on larger sets (AlexNet 32/16:
# 0.63 s at 64 vs 0.84 s at 16), while a report still comes every second or two.
INCREMENTAL_REPORT = 64


def positions(size: int, patch: int, stride: int) -> list[int]:
    """Top (or left) edges 0, stride, ... and always size - patch, so the far border is covered."""
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def _size(image_size) -> tuple[int, int]:
    if isinstance(image_size, (tuple, list)) and len(image_size) == 2:
        return checks.integer(image_size[0], "image height", low=1), checks.integer(image_size[1], "image width", low=1)
    side = checks.integer(image_size, "image size", low=1)
    return side, side


def check_settings(image, patch, stride) -> tuple[int, int]:
    """(patch, stride) as plain integers, or a ValueError naming the problem. `image`:
    an image tensor (...xHxW) or its (height, width)."""
    h, w = _size(tuple(image.shape[-2:]) if hasattr(image, "shape") else image)
    patch = checks.integer(patch, "patch", low=1)
    if patch > min(h, w):
        raise ValueError(f"patch {patch} is larger than the image ({h}x{w} pixels)")
    return patch, checks.integer(stride, "stride", low=1)


class OcclusionPlan:
    """The patch positions on images of one size, and how one network scores them:
    incrementally (`incremental`) where it can, else as batches of occluded copies.

    Nothing in it depends on the image, the fill or the target: keep one and pass it
    as ``occlusion(..., plan=plan)`` to skip the set-up (the app keeps one per model,
    image size, patch and stride). Each map's clean activations belong to its run
    and are freed when the run ends.

    boxes: rows x cols x 4 pixel boxes (top, left, bottom, right), row-major;
    method: "incremental" or "naive", what `method="auto"` resolved to; `reason` says
    why a network runs naive.
    """

    def __init__(self, net: Network, image_size, patch: int, stride: int, *, method: str = "auto"):
        method = checks.choice(method, "method", METHODS)
        self.net = net
        self.image_size = _size(image_size)
        self.patch, self.stride = check_settings(self.image_size, patch, stride)
        h, w = self.image_size
        tops, lefts = positions(h, self.patch, self.stride), positions(w, self.patch, self.stride)
        self.boxes = np.array([[(t, l, t + self.patch, l + self.patch) for l in lefts] for t in tops], dtype=np.int64)
        self.program: Program | None = None
        self.reason = "method='naive'" if method == "naive" else ""
        if method != "naive":
            try:
                self.program = Program(net, self.image_size)
            except Unsupported as e:
                if method == "incremental":
                    raise ValueError(f"{net.name} cannot run incrementally ({e}); use method='auto' or 'naive'") \
                        from None
                self.reason = str(e)
        self.method = "incremental" if self.program is not None else "naive"
        self._chunks: dict = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        h, w = self.image_size
        return (f"OcclusionPlan({self.net.name}, {h}x{w}, patch={self.patch}, stride={self.stride}, "
                f"{self.shape[0]}x{self.shape[1]} positions, {self.method})")

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of patch positions."""
        return self.boxes.shape[0], self.boxes.shape[1]

    def fits(self, net: Network, image_size, patch: int, stride: int) -> bool:
        """Whether this plan is for that network, image size, patch and stride."""
        return (net is self.net and _size(image_size) == self.image_size
                and (int(patch), int(stride)) == (self.patch, self.stride))

    def work_fraction(self) -> float | None:
        """Multiply-adds of the incremental forward over the naive one, averaged over
        the positions (None for a naive plan): 1 / this is the speed-up bound."""
        return None if self.program is None else self.program.work_fraction(self.boxes.reshape(-1, 4))

    def bytes_per_box(self) -> int:
        """Memory one position takes in a batch (incremental: its largest windows; naive:
        not known here, 0)."""
        return 0 if self.program is None else self.program.bytes_per_box(self.boxes.reshape(-1, 4))

    def chunks(self, cells: np.ndarray, size: int, incremental: bool) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """`cells` ((row, col) pairs) cut into the pieces that are scored and reported
        together: runs of `size` in row-major order, or, incrementally, whole groups of
        boxes with changed regions of about the same size, at least `size` per piece.
        Each piece comes with its group per cell (None when naive)."""
        cells = np.asarray(cells, dtype=np.int64).reshape(-1, 2)
        if len(cells) == 0:
            return []
        key = (cells.tobytes(), int(size), bool(incremental))
        with self._lock:
            if key in self._chunks:
                return self._chunks[key]
        if not incremental:
            out = [(cells[s:s + size], None) for s in range(0, len(cells), size)]
        else:
            boxes = self.boxes[cells[:, 0], cells[:, 1]]
            group = self.program.groups(boxes)
            order = np.argsort(group, kind="stable")
            bounds = np.flatnonzero(np.diff(group[order])) + 1
            out, piece = [], []
            for members in np.split(order, bounds):
                piece.append(members)
                if sum(len(m) for m in piece) >= size:
                    idx = np.concatenate(piece)
                    out.append((cells[idx], group[idx]))
                    piece = []
            if piece:
                idx = np.concatenate(piece)
                out.append((cells[idx], group[idx]))
        with self._lock:
            if len(self._chunks) > 8:  # a few cell sets (exact map, coarse-to-fine passes) per plan
                self._chunks.clear()
            self._chunks[key] = out
        return out
