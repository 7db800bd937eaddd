"""Maximally activating patches: for each channel of a layer, the k places in a dataset
where it fires hardest, shown as the input patch its units can see (lesson 05,
``notebooks/05_max_activating_patches.ipynb``).

One scan of the dataset, only as far as the layer (``net.forward_to``), keeps a running
top-k per channel: after each batch the batch's own top-k per channel is merged with the
running one by a ``torch.topk`` over their concatenation, so memory stays at ``k x C``
values and positions however large the dataset. A position is (image index, row, col)
in the layer's output grid; `crop_patch` turns it into pixels through the layer's
receptive field (``net.receptive_field(layer).box(row, col)``).

Scans are cached per (model, dataset name, layer), so browsing channels is instant.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator, Union

import numpy as np
import torch

from .network import Network
from .receptive_field import ReceptiveField

__all__ = [
    "PatchScan",
    "ScanProgress",
    "crop_patch",
    "crop_pixels",
    "max_activating_patches",
    "scan_max_activating_iter",
    "cached_scan",
    "centre_object_share",
    "clear_scan_cache",
    "PAD_VALUE",
]

#: Grey (uint8) that fills the part of a receptive field lying outside the image.
PAD_VALUE = 128


@dataclass(frozen=True)
class ScanProgress:
    """`step` images of `total` scanned so far."""

    step: int
    total: int


@dataclass(frozen=True, eq=False)
class PatchScan:
    """The k strongest activations of every channel of `layer` over a dataset.

    `values`, `image`, `row`, `col` are ``C x k`` tensors, each row sorted from the
    strongest down; (image[c, j], row[c, j], col[c, j]) is where channel c reached
    values[c, j]. For global layers (fc) row = col = 0. Only these k per channel are
    kept; the activations themselves are never stored.
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
    complete: bool = True
    net: Network | None = field(default=None, repr=False)

    @property
    def k(self) -> int:
        return int(self.values.shape[1])

    @property
    def channels(self) -> int:
        return int(self.values.shape[0])

    # A finished scan reads as 100% progress, so a Runner can show it like any step.
    @property
    def step(self) -> int:
        return self.n_images

    @property
    def total(self) -> int:
        return self.n_images

    def check_channel(self, channel: int) -> int:
        if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)):
            raise ValueError(f"channel must be an integer, not {channel!r}")
        if not 0 <= int(channel) < self.channels:
            raise ValueError(
                f"channel {int(channel)} is out of range: {self.layer} has channels 0..{self.channels - 1}."
            )
        return int(channel)

    def top(self, channel: int, k: int | None = None) -> list[tuple[float, int, int, int]]:
        """(value, image index, row, col) of the channel's top-k, strongest first."""
        c = self.check_channel(channel)
        k = self.k if k is None else min(int(k), self.k)
        return [(float(self.values[c, j]), int(self.image[c, j]), int(self.row[c, j]), int(self.col[c, j]))
                for j in range(k)]

    def patches(self, channel: int, dataset, k: int | None = None) -> list[np.ndarray]:
        """The channel's top-k receptive-field crops (uint8, all rf.size square)."""
        if self.net is None:
            raise ValueError("this scan has no network attached; use crop_patch(net, ...) directly")
        return [crop_patch(self.net, dataset[i].image, self.rf, r, c) for _v, i, r, c in self.top(channel, k)]

    def mask_patches(self, channel: int, dataset, k: int | None = None) -> list[np.ndarray]:
        """The same crops of the dataset's object masks (bool; outside the image is False)."""
        if self.net is None:
            raise ValueError("this scan has no network attached")
        out = []
        for _v, i, r, c in self.top(channel, k):
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

    `image` is a PIL image, uint8 array or [0, 1] tensor (preprocessed by `net` unless
    it already is a 1x3xSxS input); `rf` a ReceptiveField or a layer name. Where the
    field leaves the image the patch is grey (`PAD_VALUE`), so every patch of a layer
    has the field's full size and the unit's centre is always the patch's centre. For
    global layers (fc) the patch is the whole image.
    """
    if isinstance(rf, str):
        rf = net.receptive_field(rf)
    x = image if isinstance(image, torch.Tensor) and image.dim() == 3 else net.preprocess(image)
    pixels = net.deprocess(x)
    return crop_pixels(pixels, rf, int(row), int(col), fill=np.uint8(PAD_VALUE))


# --- the scan ------------------------------------------------------------------------

# net -> OrderedDict[(dataset name, layer)] -> PatchScan; dies with the network.
_CACHE: "weakref.WeakKeyDictionary[Network, OrderedDict]" = weakref.WeakKeyDictionary()
_CACHE_PER_NET = 32


def clear_scan_cache() -> None:
    _CACHE.clear()


def cached_scan(net: Network, dataset, layer: str, k: int) -> PatchScan | None:
    """A finished scan of (net, dataset, layer) with at least k per channel, cut to k."""
    scan = _CACHE.get(net, {}).get((dataset.name, layer))
    if scan is None or scan.k < k:
        return None
    return replace(_first_k(scan, k), net=net)


def _first_k(scan: PatchScan, k: int) -> PatchScan:
    if scan.k <= k:
        return scan
    return PatchScan(scan.model, scan.dataset, scan.layer, scan.values[:, :k].clone(), scan.image[:, :k].clone(),
                     scan.row[:, :k].clone(), scan.col[:, :k].clone(), scan.rf, scan.n_images, scan.complete, scan.net)


def _store(net: Network, dataset, scan: PatchScan) -> None:
    entries = _CACHE.setdefault(net, OrderedDict())
    # Stored without the network: a value that held its own weak key would keep it alive.
    entries[(dataset.name, scan.layer)] = replace(scan, net=None)
    while len(entries) > _CACHE_PER_NET:
        entries.popitem(last=False)


def _check_settings(net: Network, dataset, layer: str, k, batch_size) -> None:
    net.check_layer(layer)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k (patches per channel) must be a positive integer, not {k!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
    if len(dataset) == 0:
        raise ValueError(f"dataset {getattr(dataset, 'name', dataset)!r} is empty: nothing to scan")


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


def scan_max_activating_iter(
    net: Network,
    dataset,
    layer: str,
    k: int = 9,
    batch_size: int = 64,
    should_stop: Callable[[], bool] | None = None,
    cache: bool = True,
) -> Iterator[Union[ScanProgress, PatchScan]]:
    """Scan `dataset` once up to `layer`, keeping each channel's k strongest units.

    Yields a `ScanProgress(step, total)` after each batch and finally the `PatchScan`.
    `should_stop()` is asked after each batch; when true the scan ends there and yields
    a partial scan (``complete=False``, never cached). A cached scan is yielded at once.
    """
    _check_settings(net, dataset, layer, k, batch_size)
    k, batch_size = int(k), int(batch_size)
    if cache:
        hit = cached_scan(net, dataset, layer, k)
        if hit is not None:
            yield hit
            return
    rf = net.receptive_field(layer)
    n = len(dataset)
    best_values: torch.Tensor | None = None  # C x k', strongest first
    best_where: torch.Tensor | None = None  # C x k' flat positions in the (N, H, W) grid
    grid = (1, 1)
    done, stopped = 0, False
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
        done = stop
        # Asked before reporting progress, so that a caller which stops at its next
        # item (like the app's Runner) receives the partial scan rather than a count.
        if done < n and should_stop is not None and should_stop():
            stopped = True
            break
        yield ScanProgress(done, n)
    h, w = grid
    best_where = best_where.cpu()
    scan = PatchScan(
        model=net.name, dataset=dataset.name, layer=layer, values=best_values.cpu(),
        image=best_where // (h * w), row=(best_where % (h * w)) // w, col=best_where % w,
        rf=rf, n_images=done, complete=not stopped, net=net,
    )
    if cache and scan.complete:
        _store(net, dataset, scan)
    yield scan


def max_activating_patches(net: Network, dataset, layer: str, k: int = 9, batch_size: int = 64,
                           cache: bool = True) -> PatchScan:
    """Run `scan_max_activating_iter` to the end and return its `PatchScan`."""
    last = None
    for last in scan_max_activating_iter(net, dataset, layer, k=k, batch_size=batch_size, cache=cache):
        pass
    assert isinstance(last, PatchScan)
    return last


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
                                     for _v, i, r, c in scan.top(ch)]) for ch in range(scan.channels)])
    return per_channel, baseline
