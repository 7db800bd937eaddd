"""Maps of a feature space in two dimensions: PCA and t-SNE.

Lesson 03: the lecture lays out thousands of images by the t-SNE of their fc7 codes
(van der Maaten & Hinton, 2008, "Visualizing Data using t-SNE"; Karpathy's
"t-SNE visualization of CNN codes"): images of one class gather in one region.
PCA is the linear baseline: it keeps the two directions of largest variance, so
it is fast, deterministic and faithful to large distances, but it cannot unroll
classes that differ along many directions at once. t-SNE keeps each point's
neighbourhood instead; distances between clusters on its map mean little.

`embed(features, method)` computes the map with scikit-learn; `knn_accuracy` says
how well classes separate on it; `thumbnail_positions` picks which points get a
picture so that the pictures do not pile on each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import checks

__all__ = ["METHODS", "Embedding", "embed", "knn_accuracy", "thumbnail_positions"]

METHODS = ("pca", "tsne")

#: t-SNE first reduces features longer than this with PCA.
TSNE_PCA_DIMS = 50


@dataclass(frozen=True)
class Embedding:
    """A 2-D map of N feature vectors.

    `coords`: N x 2 float32 (numpy: scikit-learn computes them), row i placing image i;
    `method`: ``"pca"`` or ``"tsne"``; `perplexity`: t-SNE's (None for PCA).
    `explained_variance`: for PCA, the fraction of the variance each of the two axes
    keeps; for t-SNE, what the PCA before it kept (None when there was none).
    `kl_divergence`: t-SNE's final cost (lower is a more faithful neighbourhood map).
    """

    coords: np.ndarray
    method: str
    explained_variance: tuple[float, ...] | None = None
    kl_divergence: float | None = None
    perplexity: float | None = None


def _as_features(features, keep_float32: bool = False) -> np.ndarray:
    features = getattr(features, "vectors", features)  # `features.Features` or a matrix
    if hasattr(features, "detach"):
        features = features.detach().cpu().numpy()
    x = np.asarray(features)
    x = x if keep_float32 and x.dtype == np.float32 else x.astype(np.float64, copy=False)
    if x.ndim != 2:
        raise ValueError(f"features must be an N x D matrix, got shape {x.shape}")
    if x.shape[0] < 3:
        raise ValueError(f"a map needs at least 3 images, got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise ValueError("the features contain NaN or infinite values")
    return x


def embed(features, method: str = "pca", *, perplexity: float = 30, seed: int = 0, max_iter: int = 1000) -> Embedding:
    """Map ``N x D`` features to ``N x 2`` coordinates by PCA or t-SNE. See lesson 03.

    For t-SNE, features longer than 50 numbers are first reduced to 50 by PCA (as van
    der Maaten recommends): t-SNE compares every pair of points, so its cost grows with
    D, and the discarded low-variance directions are mostly noise that blurs who is
    whose neighbour. `perplexity` (t-SNE only) is roughly how many neighbours each
    point keeps close; it must be below the number of images. `max_iter`: t-SNE's
    optimisation steps (250 at least).

    Runs single-threaded: scikit-learn's t-SNE gradient is OpenMP code whose threads
    spin-wait, and on a shared 2-core machine (Binder, Colab, CI) two threads measured
    about 15x slower than one (300 images: 45 s against 2.5 s). The sizes the lessons
    map take a few seconds on one core.
    """
    from threadpoolctl import threadpool_limits  # deferred: scikit-learn's import is heavy (lessons 02-03 only)

    method = checks.choice(method, "method", METHODS)
    perplexity = checks.number(perplexity, "perplexity", low=1.0)
    seed = checks.integer(seed, "seed", low=0)
    max_iter = checks.integer(max_iter, "max_iter", low=250)
    with threadpool_limits(limits=1):
        return _embed(features, method, perplexity, seed, max_iter)


def _embed(features, method: str, perplexity: float, seed: int, max_iter: int) -> Embedding:
    from sklearn.decomposition import PCA  # deferred: scikit-learn's import is heavy (lessons 02-03 only)

    # t-SNE reduces long float32 features (pixels) with PCA first: in float32, which
    # halves that step's memory (1,000 images of 64 x 64 pixels: 49 MB instead of 98).
    x = _as_features(features, keep_float32=method == "tsne")
    n, d = x.shape
    if method == "pca":
        pca = PCA(n_components=2, random_state=seed).fit(x)
        coords = pca.transform(x)
        return Embedding(coords.astype(np.float32), "pca", tuple(float(v) for v in pca.explained_variance_ratio_))

    from sklearn.manifold import TSNE  # deferred: scikit-learn's import is heavy (lessons 02-03 only)

    if perplexity >= n:
        raise ValueError(f"perplexity {perplexity:g} is out of range: it must be below the number of images ({n})")
    kept = None
    if d > TSNE_PCA_DIMS and n > TSNE_PCA_DIMS:
        pca = PCA(n_components=TSNE_PCA_DIMS, random_state=seed).fit(x)
        x = pca.transform(x)
        kept = (float(pca.explained_variance_ratio_.sum()),)
    x = x.astype(np.float64, copy=False)
    tsne = TSNE(n_components=2, perplexity=float(perplexity), init="pca", learning_rate="auto",
                max_iter=max_iter, random_state=seed, n_jobs=1)
    coords = tsne.fit_transform(x)
    return Embedding(coords.astype(np.float32), "tsne", kept, float(tsne.kl_divergence_), float(perplexity))


def knn_accuracy(coords, labels, *, k: int = 5, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated accuracy of a k-nearest-neighbour classifier on `coords`: how well
    the classes separate on the map (1.0: every image sits among its own class)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score  # deferred: scikit-learn's import is heavy (lessons 02-03 only)
    from sklearn.neighbors import KNeighborsClassifier  # deferred: scikit-learn's import is heavy (lessons 02-03 only)

    x = _as_features(coords)
    k, folds, seed = checks.integer(k, "k", low=1), checks.integer(folds, "folds", low=2), checks.integer(seed, "seed")
    y = np.asarray(labels).reshape(-1)
    if len(y) != len(x):
        raise ValueError(f"{len(y)} labels for {len(x)} points")
    smallest = np.bincount(np.unique(y, return_inverse=True)[1]).min()
    folds = int(min(folds, smallest))
    if folds < 2:
        raise ValueError("every class needs at least 2 images to cross-validate")
    if not k < len(x) * (folds - 1) / folds:
        raise ValueError(f"k {k} is out of range: it must be below the training fold size ({len(x) * (folds - 1) // folds})")
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return float(cross_val_score(KNeighborsClassifier(n_neighbors=k), x, y, cv=split).mean())


def thumbnail_positions(coords, *, count: int = 60, min_distance: float = 0.06, seed: int = 0) -> np.ndarray:
    """Indices of up to `count` points, spread out over the map, to draw pictures at.

    Greedy, in a random order: a point is taken when it is at least `min_distance`
    (as a fraction of the map's larger side) from every point already taken, so the
    thumbnails cover the map instead of stacking up in its densest cluster.
    """
    c = _as_features(coords)[:, :2]
    count, seed = checks.integer(count, "count", low=0), checks.integer(seed, "seed")
    min_distance = checks.number(min_distance, "min_distance", low=0.0)
    span = float(np.ptp(c, axis=0).max()) or 1.0
    order = np.random.default_rng(seed).permutation(len(c))
    taken: list[int] = []
    for i in order:
        if len(taken) >= count:
            break
        if not taken or np.min(np.linalg.norm(c[taken] - c[i], axis=1)) >= min_distance * span:
            taken.append(int(i))
    return np.asarray(taken, dtype=np.int64)
