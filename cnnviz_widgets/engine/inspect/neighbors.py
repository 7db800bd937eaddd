"""Nearest neighbours of an image, in pixel space and in a layer's feature space.

Lesson 02: the lecture shows, for a few query images, the training images whose
fc7 codes are closest (Krizhevsky, Sutskever & Hinton, 2012, figure 4). They share
the query's class even when their pixels look nothing alike, while neighbours by
raw pixel distance share its colours and layout instead.

`nearest_neighbors(features, query, k=, metric=)` is exact (a full distance row,
no approximate index): datasets in the lessons hold hundreds to a few thousand
images. `neighbor_agreement` measures the lesson's claim over a whole set.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch

from ..core import checks

__all__ = ["METRICS", "all_nearest_neighbors", "nearest_neighbors", "neighbor_agreement", "pairwise_distances"]

METRICS = ("cosine", "l2")


def _check_metric(metric: str) -> str:
    return checks.choice(metric, "metric", METRICS)


# Rows converted to float64 at a time: exact orderings without a float64 copy of a whole
# set (1,000 images' pixels are 98 MB in float64; a learner on Binder has 1-2 GB).
_CHUNK_BYTES = 16 * 2**20


def _as_matrix(features) -> torch.Tensor:
    f = torch.as_tensor(getattr(features, "vectors", features))  # `features.Features` or a matrix
    if f.dim() != 2 or f.shape[0] == 0:
        raise ValueError(f"features must be an N x D matrix with N >= 1, got shape {tuple(f.shape)}")
    return f


def _row_blocks(f: torch.Tensor) -> Iterator[tuple[int, torch.Tensor]]:
    """(start, rows as float64) in blocks of about `_CHUNK_BYTES`."""
    step = max(1, _CHUNK_BYTES // (8 * max(1, f.shape[1])))
    for start in range(0, f.shape[0], step):
        yield start, f[start:start + step].double()


def _unit_rows(f: torch.Tensor) -> torch.Tensor:
    return f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)


def pairwise_distances(a: torch.Tensor, b: torch.Tensor, *, metric: str = "cosine") -> torch.Tensor:
    """``len(a) x len(b)`` distances in float64: ``1 - cosine similarity`` or Euclidean.

    Computed in float64 (float32 cancellation in L2 can swap near-ties), block by block,
    so the float64 copies never hold more than a few blocks of rows. An all-zero vector
    (a ReLU layer that stays silent for an image) has no direction: its cosine
    similarity to everything is taken as 0, so its distance is 1.
    """
    _check_metric(metric)
    a, b = _as_matrix(a), _as_matrix(b)
    out = torch.empty(a.shape[0], b.shape[0], dtype=torch.float64)
    for i, rows in _row_blocks(a):
        if metric == "cosine":
            rows = _unit_rows(rows)
        for j, cols in _row_blocks(b):
            block = out[i:i + rows.shape[0], j:j + cols.shape[0]]
            if metric == "cosine":
                block.copy_(1 - rows @ _unit_rows(cols).T)
            else:
                block.copy_(torch.cdist(rows, cols, compute_mode="donot_use_mm_for_euclid_dist"))
    return out.clamp_min_(0) if metric == "cosine" else out


def nearest_neighbors(features, query, *, k: int = 5, metric: str = "cosine",
                      exclude: int | Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The `k` rows of `features` closest to `query`: ``(indices, distances)``, nearest first.

    `query` is an index into `features` (that row is then left out: an image is
    always its own nearest neighbour) or a ``D`` feature vector (for an uploaded image,
    from `features.image_features`). `exclude` lists further indices to leave out.
    Ties are broken by the lower index, so results are reproducible. See lesson 02.
    """
    f = _as_matrix(features)
    n, d = f.shape
    skip: set[int] = set()
    if checks.is_integer(query):
        index = checks.index(query, "query index", n, "the set has items")
        q = f[index:index + 1]
        skip.add(index)
    else:
        q = torch.as_tensor(query).reshape(1, -1)
        if q.shape[1] != d:
            raise ValueError(f"the query has {q.shape[1]} features but the set has {d} per item: "
                             "describe it at the same layer")
    if exclude is not None:
        for i in ([exclude] if checks.is_integer(exclude) else exclude):
            skip.add(checks.index(i, "exclude index", n, "the set has items"))
    available = n - len(skip)
    k = checks.integer(k, "k", low=1, high=available)
    dist = pairwise_distances(q, f, metric=_check_metric(metric))[0]
    if skip:
        dist[list(skip)] = float("inf")
    order = torch.sort(dist, stable=True).indices[:k]
    return order, dist[order].float()


def all_nearest_neighbors(features, *, k: int = 5, metric: str = "cosine") -> torch.Tensor:
    """``N x k`` indices: every row's `k` nearest other rows, nearest first (one distance
    matrix instead of N queries; same tie rule as `nearest_neighbors`)."""
    f = _as_matrix(features)
    k = checks.integer(k, "k", low=1, high=f.shape[0] - 1)
    dist = pairwise_distances(f, f, metric=metric)
    dist.fill_diagonal_(float("inf"))
    # Stable sort on each row, not topk: ties fall to the lower index.
    return torch.sort(dist, dim=1, stable=True).indices[:, :k]


def neighbor_agreement(features, labels, *, k: int = 5, metric: str = "cosine") -> float:
    """The fraction of each image's `k` nearest neighbours (itself left out) that share
    its label, averaged over every image of the set: 1.0 means the space groups by
    class perfectly; ``1 / classes`` is what a random arrangement gives on balanced data."""
    y = torch.as_tensor(labels).reshape(-1)
    n = _as_matrix(features).shape[0]
    if y.numel() != n:
        raise ValueError(f"{y.numel()} labels for {n} feature rows")
    nearest = all_nearest_neighbors(features, k=k, metric=metric)
    return float((y[nearest] == y[:, None]).double().mean())
