"""Synthetic shapes: a small labelled image set with ground-truth object masks.

Each image shows one shape (circle, square, triangle, star, ...) with a random colour,
size, position and rotation on a cluttered background (colour gradient, low-frequency
colour blotches, a few thin strokes of other colours, pixel noise).  Colour and position
therefore say nothing about the class: only the *shape* does.

This is the offline dataset behind the "Visualizing and Understanding ConvNets" lessons
that need a labelled image set: 02 (nearest neighbours), 03 (PCA / t-SNE of features),
05 (maximally activating patches), 06 (occlusion), 07 (saliency maps) and 08 (guided
backprop); the bundled ``shapes`` network (``shapes_net.py``) is trained on it by
``train_shapes.py``.

The boolean mask returned with every image is exactly the set of pixels the object covers
(pixel centres tested against the exact shape, no antialiasing), so it is ground truth for
attribution tests: saliency, occlusion and patch methods can be checked against where the
object really is.

Randomness is numpy only (``np.random.default_rng([seed, i])`` per item) and rasterisation
is pure numpy on a coordinate grid, so the same seed gives the same pixels on every
machine, and item ``i`` does not depend on the order in which items are read.
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np
from PIL import Image

from ..core import checks

__all__ = ["SHAPE_CLASSES", "render_shape", "ShapesDataset", "Item"]

SHAPE_CLASSES: list[str] = [
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "ring",
    "ellipse",
    "hexagon",
    "stripes",
    "checker",
]

_SQRT2 = np.sqrt(2.0)


class Item(NamedTuple):
    image: Image.Image  # RGB
    label: int
    mask: np.ndarray  # bool HxW, True where the object is
    name: str


# --------------------------------------------------------------------------- helpers


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x, y), float32, shape (size, size)."""
    c = np.arange(size, dtype=np.float32) + 0.5
    y, x = np.meshgrid(c, c, indexing="ij")
    y.setflags(write=False)
    x.setflags(write=False)
    return x, y


@lru_cache(maxsize=8)
def _upsample_matrix(size: int, g: int) -> np.ndarray:
    """(size, g) bilinear interpolation matrix from a g-point grid spanning the image."""
    pos = (np.arange(size, dtype=np.float64) + 0.5) / size * (g - 1)
    lo = np.clip(np.floor(pos).astype(int), 0, g - 2)
    t = pos - lo
    m = np.zeros((size, g), dtype=np.float32)
    m[np.arange(size), lo] = 1 - t
    m[np.arange(size), lo + 1] = t
    m.setflags(write=False)
    return m


def _regular_polygon(u: np.ndarray, v: np.ndarray, n: int, circumradius: float) -> np.ndarray:
    """Inside test for a regular n-gon centred at 0 with a vertex on the +u axis."""
    apothem = circumradius * np.cos(np.pi / n)
    # edge normals point between the vertices
    ang = np.pi / n + 2 * np.pi * np.arange(n) / n
    inside = np.ones(u.shape, dtype=bool)
    for a in ang:
        inside &= (u * np.float32(np.cos(a)) + v * np.float32(np.sin(a))) <= apothem
    return inside


def _star(u: np.ndarray, v: np.ndarray, r_out: float, r_in: float, points: int = 5) -> np.ndarray:
    sector = 2 * np.pi / points
    theta = np.arctan2(v, u)
    rho = np.hypot(u, v)
    phi = np.abs(np.mod(theta + sector / 2, sector) - sector / 2)
    px, py = rho * np.cos(phi), rho * np.sin(phi)
    # edge from the outer vertex (r_out, 0) to the inner vertex at angle sector/2
    ax, ay = r_out, 0.0
    bx, by = r_in * np.cos(sector / 2), r_in * np.sin(sector / 2)
    # the origin is inside: same side of the edge as (0, 0)
    cross = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
    origin = (bx - ax) * (0 - ay) - (by - ay) * (0 - ax)
    return cross * np.sign(origin) >= 0


def _colour_far_from(rng: np.random.Generator, refs: list[np.ndarray], min_dist: float) -> np.ndarray:
    """A random RGB colour (0..255 floats) at least ``min_dist`` from every ref colour."""
    best, best_d = None, -1.0
    for _ in range(30):
        c = rng.uniform(0, 255, size=3)
        d = min(float(np.linalg.norm(c - r)) for r in refs)
        if d >= min_dist:
            return c
        if d > best_d:
            best, best_d = c, d
    return best


# --------------------------------------------------------------------------- rendering



def _shape_mask(rng: np.random.Generator, label: int, u: np.ndarray, v: np.ndarray, R: float):
    """Mask of shape ``label`` in local (rotated, centred) coordinates, all of it within
    distance R of the centre, plus an optional second-tone mask (stripes / checker)."""
    name = SHAPE_CLASSES[label]
    tone2 = None
    if name == "circle":
        m = u * u + v * v <= R * R
    elif name == "square":
        h = R / _SQRT2
        m = (np.abs(u) <= h) & (np.abs(v) <= h)
    elif name == "triangle":
        m = _regular_polygon(u, v, 3, R)
    elif name == "star":
        m = _star(u, v, R, R * rng.uniform(0.4, 0.5))
    elif name == "cross":
        w = R * rng.uniform(0.22, 0.3)  # half-width of each bar
        au, av = np.abs(u), np.abs(v)
        L = np.sqrt(R * R - w * w)  # bar half-length so the corners stay within R
        m = ((au <= L) & (av <= w)) | ((au <= w) & (av <= L))
    elif name == "ring":
        d2 = u * u + v * v
        r_in = R * rng.uniform(0.5, 0.62)
        m = (d2 <= R * R) & (d2 >= r_in * r_in)
    elif name == "ellipse":
        b = R * rng.uniform(0.4, 0.6)
        m = (u / R) ** 2 + (v / b) ** 2 <= 1.0
    elif name == "hexagon":
        m = _regular_polygon(u, v, 6, R)
    elif name in ("stripes", "checker"):
        h = R / _SQRT2
        m = (np.abs(u) <= h) & (np.abs(v) <= h)
        n = int(rng.integers(4, 7)) if name == "stripes" else int(rng.integers(3, 6))
        cell = 2 * h / n
        iu = np.floor((u + h) / cell).astype(np.int16)
        if name == "stripes":
            tone2 = m & (iu % 2 == 1)
        else:
            iv = np.floor((v + h) / cell).astype(np.int16)
            tone2 = m & ((iu + iv) % 2 == 1)
    else:  # pragma: no cover
        raise ValueError(f"unknown label {label}")
    return m, tone2


def _stroke(img: np.ndarray, p: np.ndarray, half_width: float, col: np.ndarray) -> None:
    """Paint a thin straight bar from (p[0], p[1]) to (p[2], p[3]) into the channel-first
    ``img`` in place: pixel centres within ``half_width`` of the segment's line and between
    its two ends."""
    c = _grid(img.shape[1])[0][0]
    dx, dy = float(p[2] - p[0]), float(p[3] - p[1])
    length = max(np.hypot(dx, dy), 1e-3)
    tx, ty = dx / length, dy / length
    X = c - np.float32(p[0])  # along columns
    Y = c - np.float32(p[1])  # along rows
    along = Y[:, None] * np.float32(ty) + X[None, :] * np.float32(tx)
    across = Y[:, None] * np.float32(tx) - X[None, :] * np.float32(ty)
    m = (np.abs(across) <= half_width) & (along >= 0) & (along <= length)
    img[:, m] = col[:, None]


def render_shape(
    rng: np.random.Generator, label: int, size: int = 64, *, with_object: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one image of class ``label``.

    Returns ``(image, mask)``: ``image`` uint8 (size, size, 3), ``mask`` bool (size, size),
    True exactly on the pixels the object covers.  The object lies fully inside the image
    (it never touches the border row/column).  All randomness comes from ``rng``.

    ``with_object=False`` draws the very same image (same background, clutter and noise,
    same random draws) without the object, while still returning the object's mask: the
    two renderings differ only inside the mask.  Useful as a background-only baseline and
    to check the masks.
    """
    label = checks.index(label, "label", len(SHAPE_CLASSES), "the shapes have labels")
    size = checks.integer(size, "size", low=16)
    S = float(size)
    x, y = _grid(size)
    c = x[0]  # pixel-centre coordinates along one axis
    f32 = np.float32

    # ---- background (channel-first): two-colour linear gradient + low-frequency blotches
    b0 = rng.uniform(0, 255, size=3)
    b1 = rng.uniform(0, 255, size=3)
    ga = rng.uniform(0, 2 * np.pi)
    t = (c[None, :] - f32(S / 2)) * f32(np.cos(ga) / S) + (c[:, None] - f32(S / 2)) * f32(np.sin(ga) / S)
    t = np.clip(t + f32(0.5), 0, 1)
    img = b0.astype(f32)[:, None, None] + (b1 - b0).astype(f32)[:, None, None] * t[None]
    g = 5
    M = _upsample_matrix(size, g)
    blot = rng.normal(0, 28, size=(3, g, g)).astype(f32)
    img += M @ blot @ M.T

    # ---- strokes: a few thin segments of random colours
    for _ in range(int(rng.integers(2, 5))):
        p = rng.uniform(0, S, size=4).astype(f32)
        half_width = float(rng.uniform(0.6, 1.2))
        col = rng.uniform(0, 255, size=3).astype(f32)
        _stroke(img, p, half_width, col)

    # ---- the object
    R = float(rng.uniform(0.25, 0.42)) * S  # bounding radius
    margin = 1.5
    cx = rng.uniform(R + margin, S - R - margin)
    cy = rng.uniform(R + margin, S - R - margin)
    rot = rng.uniform(0, 2 * np.pi)
    cr, sr = f32(np.cos(rot)), f32(np.sin(rot))
    dxr = c[None, :] - f32(cx)
    dyc = c[:, None] - f32(cy)
    u = cr * dxr + sr * dyc
    v = -sr * dxr + cr * dyc
    mask, tone2 = _shape_mask(rng, label, u, v, f32(R))

    c1 = _colour_far_from(rng, [b0, b1], 110.0)
    shade_a = rng.uniform(0, 2 * np.pi)
    k = rng.uniform(-0.15, 0.15) / R
    shade = (f32(1) + dxr * f32(k * np.cos(shade_a)) + dyc * f32(k * np.sin(shade_a)))[mask]
    colours = np.broadcast_to(c1.astype(f32)[:, None], (3, shade.size)).copy()
    if tone2 is not None:
        c2 = _colour_far_from(rng, [c1], 120.0)
        colours[:, tone2[mask]] = c2.astype(f32)[:, None]
    if with_object:
        img[:, mask] = colours * shade[None]

    # ---- sensor noise over everything
    # uniform noise of standard deviation sigma (cheaper than normal noise, looks the same)
    sigma = rng.uniform(4, 12)
    noise = rng.random(size=img.shape, dtype=f32)
    img += (noise - f32(0.5)) * f32(sigma * np.sqrt(12.0))
    np.clip(img, 0, 255, out=img)
    out = np.ascontiguousarray(img.transpose(1, 2, 0)).astype(np.uint8)
    return out, mask


# --------------------------------------------------------------------------- dataset


class ShapesDataset:
    """``n`` synthetic shape images, deterministic in (seed, index).

    ``ds[i]`` is an :class:`Item` ``(image, label, mask, name)``; ``ds.arrays()`` gives all
    of them as numpy arrays (computed once, then cached).  Labels are balanced:
    ``label = i % len(SHAPE_CLASSES)``.
    """

    def __init__(self, n: int, seed: int = 0, size: int = 64):
        self.n = checks.integer(n, "n", low=0)
        self.seed = checks.integer(seed, "seed")
        self.size = checks.integer(size, "size", low=16)
        self.classes: list[str] = list(SHAPE_CLASSES)
        self.name = f"shapes-seed{self.seed}-n{self.n}-{self.size}px"
        self._arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.n

    def label(self, i: int) -> int:
        return i % len(self.classes)

    def _render(self, i: int, with_object: bool = True) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, i])
        return render_shape(rng, self.label(i), self.size, with_object=with_object)

    def background(self, i: int) -> np.ndarray:
        """Item ``i``'s image without its object (uint8 HxWx3): identical outside the mask."""
        return self._render(int(i), with_object=False)[0]

    def __getitem__(self, i: int) -> Item:
        i = checks.integer(i, "index")
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range for {self.n} items")
        if self._arrays is not None:
            img, mask = self._arrays[0][i], self._arrays[2][i].copy()
        else:
            img, mask = self._render(i)
        return Item(Image.fromarray(img), self.label(i), mask, f"shapes-{self.seed}-{i}")

    def __iter__(self):
        for i in range(self.n):
            yield self[i]

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(images uint8 NxHxWx3, labels int64 N, masks bool NxHxW)``, cached."""
        if self._arrays is None:
            s = self.size
            images = np.empty((self.n, s, s, 3), dtype=np.uint8)
            masks = np.empty((self.n, s, s), dtype=bool)
            for i in range(self.n):
                images[i], masks[i] = self._render(i)
            labels = np.arange(self.n, dtype=np.int64) % len(self.classes)
            for a in (images, labels, masks):
                a.setflags(write=False)
            self._arrays = (images, labels, masks)
        return self._arrays

    def __repr__(self) -> str:
        return f"ShapesDataset(n={self.n}, seed={self.seed}, size={self.size})"
