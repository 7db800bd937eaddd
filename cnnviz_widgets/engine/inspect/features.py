"""Feature vectors of a whole dataset at one layer, computed once and cached.

Lessons 02 (nearest neighbours) and 03 (PCA / t-SNE) compare images by the
activations of a late layer (AlexNet's fc7: "the 4096-dimensional code"); lesson 05
and others can reuse the same scan. `extract_features(net, dataset, layer)` returns
`Features`, whose ``vectors`` are ``N x D`` (the layer's output flattened per image), computed with
`Network.forward_to` so the network never runs past the layer, in batches, under
``net.guard()`` and ``torch.no_grad()``. `pixel_features` gives the preprocessed
pixels flattened the same way, the baseline the lessons compare against.

Scans of the same (model, dataset, layer) are kept in a small LRU in the network's
cache (`engine.core.cache`; `clear_caches()` forgets them): moving a slider in an app
must not rescan the dataset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch

from ..core import checks, memory
from ..core.cache import LRU, cache_for
from ..core.network import Network
from ..core.progress import Progress, StopCheck, run_to_end

__all__ = [
    "Features",
    "PIXELS",
    "extract_features",
    "extract_features_iter",
    "pixel_features",
    "image_features",
    "default_feature_layer",
    "dataset_labels",
    "feature_size",
    "is_cached",
    "feature_cache_info",
    "MAX_FEATURE_BYTES",
]

#: The pseudo-layer name for "the preprocessed pixels" (the lessons' baseline).
PIXELS = "pixels"

#: One scan may not hold more than this (N x D float32): a conv1 scan of a big set would
#: otherwise quietly fill the memory of a Binder or Colab machine.
MAX_FEATURE_BYTES = 1 << 30

# Per network: lessons 02 and 03 scan a few layers of one or two networks.
_CACHE_ENTRIES = 12
_CACHE_BYTES = 1 << 30


@dataclass(frozen=True)
class Features:
    """Feature vectors of a dataset's images at one layer.

    vectors: N x D float32 on the CPU, row i describing image i; layer: the layer (or
    ``"pixels"``); dataset: the dataset's name; ended: ``"done"``, ``""`` for a preview
    while scanning (the rows of the images done so far), ``"stopped"`` when stopped.
    """

    vectors: torch.Tensor
    layer: str
    dataset: str
    ended: str = "done"

    def __len__(self) -> int:
        return int(self.vectors.shape[0])


def _scans(net: Network) -> LRU:
    """This network's scans, by (dataset name, dataset length, layer, device): an LRU in
    the network's cache (`engine.core.cache`), gone with the network."""
    return cache_for(net).part("features", lambda: LRU(_CACHE_ENTRIES, _CACHE_BYTES))


def _cache_key(net: Network, dataset, layer: str) -> tuple | None:
    name = getattr(dataset, "name", None)
    if not name:
        return None  # a dataset that cannot say what it holds is never cached
    return (str(name), len(dataset), layer, str(net.device))


def is_cached(net: Network, dataset, layer: str) -> bool:
    """Whether a scan of (net, dataset, layer) would answer from the cache at once."""
    key = _cache_key(net, dataset, layer)
    return key is not None and key in _scans(net)


def feature_cache_info(net: Network) -> dict:
    """Entries, bytes held, hits and misses of `net`'s scans (for tests and curiosity)."""
    return _scans(net).info()


def dataset_labels(dataset) -> torch.Tensor:
    """Every item's label as an int64 tensor, without decoding images where the
    dataset can say them directly (the shapes set computes them from the index)."""
    n = _check_dataset(dataset)
    if hasattr(dataset, "label"):
        return torch.tensor([dataset.label(i) for i in range(n)], dtype=torch.int64)
    if isinstance(getattr(dataset, "paths", None), list):  # FolderDataset: (path, label) pairs
        return torch.tensor([label for _, label in dataset.paths], dtype=torch.int64)
    return torch.tensor([dataset[i].label for i in range(n)], dtype=torch.int64)


def default_feature_layer(net: Network) -> str:
    """The layer lessons 02/03 describe images by: fc7 on AlexNet-shaped nets (the
    lecture's choice), else the last layer before the logits."""
    layers = net.layers
    if "fc7" in layers:
        return "fc7"
    if len(layers) > 1 and layers[-1] in ("logits", "fc8"):
        return layers[-2]
    return layers[-1]


def feature_size(net: Network, layer: str) -> int:
    """D, the length of one image's feature vector at `layer` (or of its pixels)."""
    if layer == PIXELS:
        return 3 * net.input_size * net.input_size
    return math.prod(net.layer_shape(layer))


def _check_dataset(dataset) -> int:
    try:
        n = len(dataset)
    except TypeError:
        raise ValueError(f"a dataset must have a length and items; got {type(dataset).__name__}") from None
    if n == 0:
        raise ValueError("the dataset is empty: there is nothing to describe")
    return n


def _batch(net: Network, dataset, start: int, stop: int) -> torch.Tensor:
    return torch.cat([net.preprocess(dataset[i].image) for i in range(start, stop)])


def _describe(net: Network, x: torch.Tensor, layer: str) -> torch.Tensor:
    out = x if layer == PIXELS else net.forward_to(x, layer)
    return out.reshape(out.shape[0], -1).float().cpu()


def extract_features_iter(net: Network, dataset, layer: str, *, batch_size: int | None = None,
                          should_stop: StopCheck = None) -> Iterator[Progress[Features]]:
    """Scan `dataset` and yield `Progress` after each batch, whose result holds the rows
    of the images done so far; the last carries all ``N x D`` features. See lesson 02.

    `layer` is one of ``net.layers`` or ``"pixels"``. `batch_size`: images per forward;
    None picks it from the memory budget (`engine.core.memory`). A cached scan yields
    its result at once; a stopped scan (``ended="stopped"``) leaves nothing in the
    cache. Checks its settings at the call.
    """
    if layer != PIXELS:
        layer = checks.layer(net, layer)
    if batch_size is None:
        # pixels: only the preprocessed images are held; a layer: a forward without gradients
        batch_size = memory.batch_size_for(4 * 3 * net.input_size ** 2, most=256) if layer == PIXELS \
            else memory.batch_size(net)
    batch_size = checks.integer(batch_size, "batch_size", low=1)
    n = _check_dataset(dataset)
    return _scan(net, dataset, layer, batch_size, n, should_stop)


def _scan(net, dataset, layer, batch_size, n, should_stop) -> Iterator[Progress[Features]]:
    name = str(getattr(dataset, "name", "") or type(dataset).__name__)
    key = _cache_key(net, dataset, layer)
    cached = _scans(net).get(key) if key is not None else None
    if cached is not None:
        yield Progress(n, n, Features(cached, layer, name), done=True)
        return
    out: torch.Tensor | None = None
    # The generator may be paused between batches (a progress bar, a Stop button), so
    # the guard and no_grad are held only around each batch's forward, never across a yield.
    for start in range(0, n, batch_size):
        if start and should_stop is not None and should_stop():
            yield Progress(start, n, Features(out[:start], layer, name, "stopped"), done=True)
            return
        stop = min(n, start + batch_size)
        x = _batch(net, dataset, start, stop)
        with torch.no_grad(), net.guard():
            rows = _describe(net, x, layer)
        if out is None:  # D is known from the first batch: no extra forward pass to size it
            size = rows.shape[1]
            if n * size * 4 > MAX_FEATURE_BYTES:
                raise ValueError(
                    f"{layer} features of {n} images would take {n * size * 4 / 2**30:.1f} GiB "
                    f"({size} numbers per image): pick a later layer or a smaller dataset."
                )
            out = torch.empty(n, size, dtype=torch.float32)
        out[start:stop] = rows
        if stop < n:
            yield Progress(stop, n, Features(out[:stop], layer, name, ""))
    if key is not None:
        _scans(net).put(key, out)
    yield Progress(n, n, Features(out, layer, name), done=True)


def extract_features(net: Network, dataset, layer: str, *, batch_size: int | None = None) -> Features:
    """Each image's output at `layer`, flattened: ``.vectors`` N x D (cached). See lesson 02."""
    return run_to_end(extract_features_iter(net, dataset, layer, batch_size=batch_size))


def pixel_features(net: Network, dataset, *, batch_size: int | None = None) -> Features:
    """The preprocessed pixels in [0, 1], flattened: ``.vectors`` N x 3*S*S (cached): the
    "no network at all" description of each image."""
    return extract_features(net, dataset, PIXELS, batch_size=batch_size)


def image_features(net: Network, image, layer: str) -> torch.Tensor:
    """A ``D`` vector for one image (PIL, array, tensor, or the bytes of an uploaded
    file), described exactly as `extract_features` describes the dataset's images."""
    if layer != PIXELS:
        layer = checks.layer(net, layer)
    x = net.as_batch(image, single=True, what="image_features")
    with torch.no_grad(), net.guard():
        return _describe(net, x, layer)[0]
