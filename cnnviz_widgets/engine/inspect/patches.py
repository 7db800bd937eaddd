"""Maximally activating patches: for each channel of a layer, the k places in a dataset
where it fires hardest, shown as the input patch its units can see (lesson 05,
``notebooks/05_max_activating_patches.ipynb``).

One scan of the dataset, only as far as the layer (``net.forward_to``), keeps a running
top-k per channel: after each batch the batch's own top-k per channel is merged with the
running one by a ``torch.topk`` over their concatenation, so memory stays at ``k x C``
values and positions however large the dataset. A position is (image index, row, col)
in the layer's output grid; `crop_patch` turns it into pixels through the layer's
receptive field (``net.receptive_field(layer).box(row, col)``).

Scans are cached per (model, dataset name, layer) in the network's cache
(`engine.core.cache`), so browsing channels is instant.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Iterator, Union

import numpy as np
import torch

from ..core import checks, memory
from ..core.cache import cache_for
from ..core.network import Network
from ..core.progress import Progress, StopCheck, run_to_end
from ..core.receptive_field import ReceptiveField

__all__ = [
    "PatchScan",
    "crop_patch",
    "crop_pixels",
    "max_activating_patches",
    "max_activating_patches_iter",
    "cached_scan",
    "centre_object_share",
    "PAD_VALUE",
]

#: Grey (uint8) that fills the part of a receptive field lying outside the image.
PAD_VALUE = 128


@dataclass(frozen=True, eq=False)
class PatchScan:
    """The k strongest activations of every channel of `layer` over a dataset.

    `model` and `dataset` name what was scanned; `rf` is the layer's receptive field,
    which turns a (row, col) into the input patch its unit sees.

    `values`, `image`, `row`, `col` are ``C x k`` tensors, each row sorted from the
    strongest down; (image[c, j], row[c, j], col[c, j]) is where channel c reached
    values[c, j]. For global layers (fc) row = col = 0. Only these k per channel are
    kept; the activations themselves are never stored. `n_images`: how many images the
    scan covered; `ended`: ``"done"``, ``""`` for a preview while scanning, ``"stopped"``
    for a scan stopped early (then only the first `n_images` were seen).
    """

    model: str
    dataset: str
    layer: str
    values: torch.Tensor
    image: torch.Tensor
    row: torch.Tensor
    col: torch.Tensor
    rf: ReceptiveField
    n_images: int
    ended: str = "done"
    net: Network | None = field(default=None, repr=False)

    @property
    def k(self) -> int:
        return int(self.values.shape[1])

    @property
    def channels(self) -> int:
        return int(self.values.shape[0])

    @property
    def complete(self) -> bool:
        """Whether every image of the dataset was scanned."""
        return self.ended == "done"

    def check_channel(self, channel: int) -> int:
        return checks.channel(None, self.layer, channel, channels=self.channels)

    def top(self, channel: int, k: int | None = None) -> list[tuple[int, int, int, float]]:
        """(image index, row, col, value) of the channel's top-k, strongest first."""
        c = self.check_channel(channel)
        k = self.k if k is None else min(checks.integer(k, "k", low=1), self.k)
        return [(int(self.image[c, j]), int(self.row[c, j]), int(self.col[c, j]), float(self.values[c, j]))
                for j in range(k)]

    def patches(self, channel: int, dataset, k: int | None = None) -> list[np.ndarray]:
        """The channel's top-k receptive-field crops (uint8, all rf.size square)."""
        if self.net is None:
            raise ValueError("this scan has no network attached; use crop_patch(net, ...) directly")
        return [crop_patch(self.net, dataset[i].image, self.rf, r, c) for i, r, c, _v in self.top(channel, k)]

    def mask_patches(self, channel: int, dataset, k: int | None = None) -> list[np.ndarray]:
        """The same crops of the dataset's object masks (bool; outside the image is False)."""
        if self.net is None:
            raise ValueError("this scan has no network attached")
        out = []
        for i, r, c, _v in self.top(channel, k):
            mask = dataset[i].mask
            if mask is None:
                raise ValueError(f"dataset {self.dataset!r} has no object masks")
            m = self.net.preprocess_mask(mask)
            out.append(crop_pixels(m, self.rf, r, c, fill=False))
        return out


def crop_pixels(a: np.ndarray, rf: ReceptiveField, row: int, col: int, fill=np.uint8(PAD_VALUE)) -> np.ndarray:
    """Cut rf.box(row, col) out of an H x W (x 3) array of the network's input, filling
    what lies outside (for callers that keep the preprocessed pixels themselves)."""
    if rf.is_global:
        return a.copy()
    h, w = a.shape[:2]
    top, left, bottom, right = rf.box(row, col)
    out = np.full((rf.size, rf.size) + a.shape[2:], fill, dtype=a.dtype)
    t, l, b, r = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
    if t < b and l < r:
        out[t - top:b - top, l - left:r - left] = a[t:b, l:r]
    return out


def crop_patch(net: Network, image, rf: Union[ReceptiveField, str], row: int, col: int) -> np.ndarray:
    """The input patch unit (row, col) sees: uint8 ``size x size x 3``.

    `image` is anything `Network.as_batch` takes (one image; PIL images and arrays are
    preprocessed, tensors used as they are); `rf` a ReceptiveField or a layer name. Where the
    field leaves the image the patch is grey (`PAD_VALUE`), so every patch of a layer
    has the field's full size and the unit's centre is always the patch's centre. For
    global layers (fc) the patch is the whole image.
    """
    if isinstance(rf, str):
        rf = net.receptive_field(rf)
    pixels = net.deprocess(net.as_batch(image, single=True, what="crop_patch"))
    return crop_pixels(pixels, rf, int(row), int(col), fill=np.uint8(PAD_VALUE))


# --- the scan ------------------------------------------------------------------------

# Finished scans are kept in the network's cache (`engine.core.cache`), the last few.
_CACHE_PER_NET = 32


def _scans(net: Network) -> OrderedDict:
    """This network's finished scans, by (dataset name, layer), oldest first."""
    return cache_for(net).part("patch scans", OrderedDict)


def cached_scan(net: Network, dataset, layer: str, k: int) -> PatchScan | None:
    """A finished scan of (net, dataset, layer) with at least k per channel, cut to k."""
    scan = _scans(net).get((dataset.name, layer))
    if scan is None or scan.k < k:
        return None
    return replace(_first_k(scan, k), net=net)


def _first_k(scan: PatchScan, k: int) -> PatchScan:
    if scan.k <= k:
        return scan
    return PatchScan(scan.model, scan.dataset, scan.layer, scan.values[:, :k].clone(), scan.image[:, :k].clone(),
                     scan.row[:, :k].clone(), scan.col[:, :k].clone(), scan.rf, scan.n_images, scan.ended, scan.net)


def _store(net: Network, dataset, scan: PatchScan) -> None:
    entries = _scans(net)
    # Stored without the network: a value that held its own weak key would keep it alive.
    entries[(dataset.name, scan.layer)] = replace(scan, net=None)
    while len(entries) > _CACHE_PER_NET:
        entries.popitem(last=False)


def _check_settings(net: Network, dataset, layer: str, k, batch_size) -> tuple[str, int, int]:
    layer = checks.layer(net, layer)
    k = checks.integer(k, "k", low=1)
    if batch_size is None:
        batch_size = memory.batch_size(net)  # a forward without gradients, at the net's input size
    batch_size = checks.integer(batch_size, "batch_size", low=1)
    if len(dataset) == 0:
        raise ValueError(f"dataset {getattr(dataset, 'name', dataset)!r} is empty: nothing to scan")
    return layer, k, batch_size


def _batch(net: Network, dataset, start: int, stop: int) -> torch.Tensor:
    if _arrays_are_inputs(net, dataset):
        # The shapes set already holds network-sized uint8 arrays: preprocessing them one
        # by one through PIL would halve the scan's speed for the same numbers.
        pixels = torch.from_numpy(np.array(dataset.arrays()[0][start:stop]))  # a writable copy
        return pixels.to(net.device).permute(0, 3, 1, 2).float().div(255)
    images = []
    for i in range(start, stop):
        item = dataset[i]
        try:
            images.append(net.preprocess(item.image))
        except (ValueError, TypeError) as e:
            # Name the culprit: in a folder of hundreds, "not an image" alone does not help.
            raise ValueError(f"image {i} ({item.name}) of {dataset.name} cannot be used: {e}") from e
    return torch.cat(images)


def _arrays_are_inputs(net: Network, dataset) -> bool:
    size = getattr(dataset, "size", None)
    return (callable(getattr(dataset, "arrays", None)) and size == net.input_size == net.resize_size)


def max_activating_patches_iter(net: Network, dataset, layer: str, *, k: int = 9, batch_size: int | None = None,
                                cache: bool = True, should_stop: StopCheck = None) -> Iterator[Progress[PatchScan]]:
    """Scan `dataset` once up to `layer`, keeping each channel's k strongest units;
    yield `Progress` after each batch, whose result is the scan so far (a `PatchScan`
    of the images seen). `should_stop()` is asked after each batch; when true the scan
    ends there with ``ended="stopped"`` (never cached). A cached scan is yielded at
    once. `batch_size`: images per forward; None picks it from the memory budget
    (`engine.core.memory`). Checks its settings at the call."""
    layer, k, batch_size = _check_settings(net, dataset, layer, k, batch_size)
    return _scan(net, dataset, layer, k, batch_size, cache, should_stop)


def _scan(net, dataset, layer, k, batch_size, cache, should_stop) -> Iterator[Progress[PatchScan]]:
    n = len(dataset)
    if cache:
        hit = cached_scan(net, dataset, layer, k)
        if hit is not None:
            yield Progress(n, n, hit, done=True)
            return
    rf = net.receptive_field(layer)
    best_values: torch.Tensor | None = None  # C x k', strongest first
    best_where: torch.Tensor | None = None  # C x k' flat positions in the (N, H, W) grid
    grid = (1, 1)

    def scan_so_far(done: int, ended: str) -> PatchScan:
        h, w = grid
        where = best_where.cpu()
        return PatchScan(model=net.name, dataset=dataset.name, layer=layer, values=best_values.cpu(),
                         image=where // (h * w), row=(where % (h * w)) // w, col=where % w,
                         rf=rf, n_images=done, ended=ended, net=net)

    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        # Guarded per batch, never across a yield: between steps the caller gets its own
        # grad mode and model state back, and an abandoned scan leaves nothing behind.
        with torch.no_grad(), net.guard():
            acts = net.forward_to(_batch(net, dataset, start, stop), layer)
            if acts.dim() == 2:  # a global layer: one "position" per image
                acts = acts[:, :, None, None]
            if acts.dim() != 4:
                raise ValueError(f"layer {layer!r} gives {acts.dim()}-D outputs; expected a feature map or a vector")
            b, c, h, w = acts.shape
            grid = (h, w)
            # Channel-major, then image, row, col: a flat index + start*h*w is the
            # position in the whole dataset's grid.
            flat = acts.permute(1, 0, 2, 3).reshape(c, b * h * w).float()
            values, where = flat.topk(min(k, flat.shape[1]), dim=1)
            where = where + start * h * w
            if best_values is not None:
                values = torch.cat([best_values, values], 1)
                where = torch.cat([best_where, where], 1)
                values, pick = values.topk(min(k, values.shape[1]), dim=1)
                where = where.gather(1, pick)
            best_values, best_where = values, where
        if stop == n:
            break
        if should_stop is not None and should_stop():
            yield Progress(stop, n, scan_so_far(stop, "stopped"), done=True)
            return
        yield Progress(stop, n, scan_so_far(stop, ""))
    scan = scan_so_far(n, "done")
    if cache:
        _store(net, dataset, scan)
    yield Progress(n, n, scan, done=True)


def max_activating_patches(net: Network, dataset, layer: str, *, k: int = 9, batch_size: int | None = None,
                           cache: bool = True) -> PatchScan:
    """`max_activating_patches_iter` run to the end: the `PatchScan`."""
    return run_to_end(max_activating_patches_iter(net, dataset, layer, k=k, batch_size=batch_size, cache=cache))


# --- ground truth ----------------------------------------------------------------------


def centre_object_share(scan: PatchScan, dataset) -> tuple[np.ndarray, float]:
    """How often the strongest units sit on the object, for datasets with object masks.

    Per channel: the share of object pixels in the centre of its top-k fields (a
    stride x stride square, the part of the field that is this unit's alone), and,
    as the baseline a channel blind to objects would score, the same share averaged
    over every unit of every image. Whole fields are a poor measure in late layers:
    they cover most of a small image, padding included.
    """
    net = scan.net
    if net is None:
        raise ValueError("this scan has no network attached")
    if scan.rf.is_global:
        raise ValueError(f"{scan.layer} sees the whole image: there is no centre to compare with the object")
    masks = []
    for i in range(scan.n_images):
        mask = dataset[i].mask
        if mask is None:
            raise ValueError(f"dataset {scan.dataset!r} has no object masks")
        masks.append(net.preprocess_mask(mask))
    core = ReceptiveField(size=max(scan.rf.stride, 3), stride=scan.rf.stride, offset=scan.rf.offset)
    h, w = net.layer_shape(scan.layer)[1:]
    baseline = float(np.mean([crop_pixels(m, core, r, c, fill=False).mean()
                              for m in masks for r in range(h) for c in range(w)]))
    per_channel = np.array([np.mean([crop_pixels(masks[i], core, r, c, fill=False).mean()
                                     for i, r, c, _v in scan.top(ch)]) for ch in range(scan.channels)])
    return per_channel, baseline
