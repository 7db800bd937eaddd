"""Network dissection: which units of a layer are detectors of which concept (lesson 15,
``notebooks/15_network_dissection.ipynb``).

Bau, Zhou, Khosla, Oliva & Torralba 2017, "Network Dissection: Quantifying
Interpretability of Deep Visual Representations" (CVPR). For every unit k of a layer:

1. its activation maps a_k over the whole dataset give one threshold T_k, the top
   `quantile` of all its values (P(a_k > T_k) = quantile; 0.005 in the paper);
2. each map is upsampled to the image (bilinear, placed by the layer's receptive field:
   unit (row, col) sits at the centre of its field) and thresholded: M_k = S_k > T_k;
3. against each concept c, IoU_{k,c} = sum |M_k ∩ L_c| / sum |M_k ∪ L_c|, both sums over
   the whole dataset (not an average of per-image IoUs);
4. unit k is a *detector* of its best concept when that IoU is above `iou_threshold`
   (0.04 in the paper).

The paper's concepts come from the Broden segmentation set. Here they are the dataset's
classes with its exact object masks (the shapes, ``engine.zoo.shapes``): in image i, the
mask of concept c is the object's mask when the image is of class c, empty otherwise.
Colour is not a concept here: the shapes give exact masks of objects, not of colours, and
naming each pixel's colour would be a heuristic of ours, not ground truth.

One forward pass per image: the maps are kept at the layer's own (low) resolution,
N x C x h x w float32 (62 MB for conv1 of the shapes net over 1,000 images), the
thresholds are taken from them, and a second loop over the stored maps (no network)
upsamples, thresholds and counts. `benchmarks/bench_dissection.py` times it against a
plain forward pass over the same images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from ..core import checks
from ..core.memory import batch_size as memory_batch_size
from ..core.network import Network
from ..core.progress import Progress, StopCheck, run_to_end
from ..core.receptive_field import ReceptiveField

__all__ = ["Dissection", "dissect", "dissect_iter", "upsample_maps", "dataset_masks", "MAX_MAP_BYTES"]

#: The stored low-resolution maps may not take more than this (N x C x h x w float32).
MAX_MAP_BYTES = 1 << 29

#: Maps and masks are compared on every MASK_STEP-th pixel (the centre of each
#: MASK_STEP x MASK_STEP cell; each cell's mask is the majority of its pixels): half the
#: input's resolution, a quarter of the work. tests/test_dissection.py checks that the
#: IoUs stay within 0.01 of those at full resolution on the shapes net.
MASK_STEP = 2

# Upsampled maps per step of the counting loop: about 32 MB of float32 at a time.
_COUNT_BYTES = 1 << 25


@dataclass(frozen=True)
class Dissection:
    """Every unit of `layer`, scored against every concept (Bau et al. 2017).

    iou: C x K float tensor, ``iou[k, c]`` the dataset-wide IoU of unit k's thresholded,
    upsampled maps with concept c's masks (NaN in a preview: not measured yet);
    thresholds: C, the unit's activation threshold T_k (its top `quantile` over every
    position of every image); coverage: C, the share of image pixels where the upsampled
    map is above T_k; concepts: the K concept names (the dataset's classes); quantile and
    iou_threshold: the settings used; model, dataset, layer: what was dissected;
    n_images: how many images were used; ended: ``"done"``, ``""`` in a preview while
    the maps are gathered, ``"stopped"`` when stopped (then the dissection covers the
    first `n_images` only).
    """

    iou: torch.Tensor
    thresholds: torch.Tensor
    coverage: torch.Tensor
    concepts: list[str]
    quantile: float
    iou_threshold: float
    model: str
    dataset: str
    layer: str
    n_images: int
    ended: str = "done"

    @property
    def units(self) -> int:
        return int(self.iou.shape[0])

    @property
    def best_concept(self) -> torch.Tensor:
        """C: the index of each unit's best concept."""
        return self.iou.nan_to_num(-1.0).argmax(1)

    @property
    def best_iou(self) -> torch.Tensor:
        """C: each unit's IoU with its best concept."""
        return self.iou.nan_to_num(-1.0).max(1).values

    @property
    def is_detector(self) -> torch.Tensor:
        """C bools: whether the unit's best IoU is above `iou_threshold`."""
        return self.best_iou > self.iou_threshold

    @property
    def n_detectors(self) -> int:
        return int(self.is_detector.sum())

    def label(self, unit: int) -> str:
        """The unit's concept if it is a detector, else ``""``."""
        k = checks.channel(None, self.layer, unit, channels=self.units)
        return self.concepts[int(self.best_concept[k])] if bool(self.is_detector[k]) else ""

    def detectors_per_concept(self) -> dict[str, int]:
        """How many detectors each concept has (every concept listed, zeros included)."""
        counts = dict.fromkeys(self.concepts, 0)
        for k in torch.nonzero(self.is_detector).flatten().tolist():
            counts[self.concepts[int(self.best_concept[k])]] += 1
        return counts

    def units_of(self, concept) -> list[tuple[int, float]]:
        """(unit, IoU) of every unit whose best concept is `concept` (a name or an index),
        highest IoU first, detectors or not: compare with `iou_threshold`."""
        c = self.concept_index(concept)
        units = torch.nonzero(self.best_concept == c).flatten().tolist()
        return sorted(((k, float(self.iou[k, c])) for k in units), key=lambda kv: -kv[1])

    def concept_index(self, concept) -> int:
        if isinstance(concept, str):
            return self.concepts.index(checks.choice(concept, "concept", self.concepts))
        return checks.index(concept, "concept", len(self.concepts), "the concepts have indices")


# --- pieces ----------------------------------------------------------------------------


def _interpolation_matrix(pixels: torch.Tensor, cells: int, stride: float, offset: float) -> torch.Tensor:
    """len(pixels) x cells: bilinear weights that place cell j at pixel ``offset + j *
    stride``; pixels beyond the first or last cell take its value (np.interp's rule)."""
    position = ((pixels.double() - offset) / stride).clamp(0, cells - 1)
    m = torch.zeros(len(position), cells, dtype=torch.float64)
    if cells == 1:
        m[:, 0] = 1.0
        return m.float()
    low = position.floor().long().clamp(max=cells - 2)
    t = position - low
    rows = torch.arange(len(position))
    m[rows, low] = 1 - t
    m[rows, low + 1] += t
    return m.float()


def upsample_maps(maps: torch.Tensor, rf: ReceptiveField, size: int) -> torch.Tensor:
    """N x C x h x w maps -> N x C x size x size, bilinear, each unit at the centre of its
    receptive field (``rf.center``), edges held: the upsampling dissection thresholds."""
    h, w = maps.shape[-2:]
    pixels = torch.arange(size, dtype=torch.float64)
    rows = _interpolation_matrix(pixels, h, rf.stride, rf.offset)
    cols = _interpolation_matrix(pixels, w, rf.stride, rf.offset)
    return rows @ maps.float() @ cols.T


def dataset_masks(net: Network, dataset, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(pixels B x 3 x S x S, labels B, masks B x S x S bool) of items start..stop-1, as the
    network sees them (its resize and crop applied to the masks too)."""
    if _arrays_are_inputs(net, dataset):
        # The shapes set holds network-sized arrays: no PIL round trip per image.
        images, labels, masks = dataset.arrays()
        pixels = torch.from_numpy(np.array(images[start:stop])).permute(0, 3, 1, 2).float().div(255)
        return pixels, torch.from_numpy(np.array(labels[start:stop])), torch.from_numpy(np.array(masks[start:stop]))
    pixels, labels, masks = [], [], []
    for i in range(start, stop):
        item = dataset[i]
        if getattr(item, "mask", None) is None:
            raise ValueError(f"image {i} ({item.name}) of {getattr(dataset, 'name', 'the dataset')} has no object "
                             "mask: dissection needs a dataset with masks, such as the shapes")
        pixels.append(net.preprocess(item.image).cpu())
        labels.append(int(item.label))
        masks.append(torch.from_numpy(net.preprocess_mask(item.mask)))
    return torch.cat(pixels), torch.tensor(labels, dtype=torch.int64), torch.stack(masks)


def _arrays_are_inputs(net: Network, dataset) -> bool:
    size = getattr(dataset, "size", None)
    return callable(getattr(dataset, "arrays", None)) and size == net.input_size == net.resize_size


def _thresholds(maps: torch.Tensor, quantile: float) -> torch.Tensor:
    """C: per unit, the value its top `quantile` of positions lies above (the k-th
    largest). `maps` is unit-major, C x N x h x w."""
    per_unit = maps.reshape(maps.shape[0], -1)
    k = max(1, math.ceil(quantile * per_unit.shape[1]))
    return per_unit.topk(k, dim=1, sorted=False).values.min(1).values


def _count(maps, labels, masks, thresholds, rf, n_concepts, step):
    """IoU (C x K) and coverage (C) of the stored unit-major maps (C x N x h x w), on
    every `step`-th pixel's grid (masks pooled to it by the majority of each cell).

    A bilinear value is a weighted mean of four cells, so a map none of whose cells is
    above T_k stays below it everywhere once upsampled: only the (unit, image) pairs
    whose maximum is above T_k are upsampled (with the top 0.5% kept, a small share)."""
    c, n, h, w = maps.shape
    if step > 1:
        cells = masks.float().unfold(1, step, step).unfold(2, step, step).mean((-1, -2))
        masks = cells >= 0.5
    points = masks.shape[-1]
    # Pixel centres of the coarse grid, in input pixels (the centre of each step x step cell).
    centres = torch.arange(points, dtype=torch.float64) * step + (step - 1) / 2
    rows = _interpolation_matrix(centres, h, rf.stride, rf.offset)
    cols = _interpolation_matrix(centres, w, rf.stride, rf.offset).T.contiguous()
    masks = masks.float()
    unit, image = torch.nonzero(maps.amax((2, 3)) > thresholds[:, None], as_tuple=True)
    area = torch.zeros(c, dtype=torch.float64)  # sum |M_k|
    inter = torch.zeros(c * n_concepts, dtype=torch.float64)  # sum |M_k ∩ L_c|, flattened (k, c)
    chunk = max(1, _COUNT_BYTES // (points * points * 4))
    for start in range(0, unit.numel(), chunk):
        k, i = unit[start:start + chunk], image[start:start + chunk]
        active = ((rows @ maps[k, i] @ cols) > thresholds[k, None, None]).float()  # P x s x s
        area.index_add_(0, k, active.sum((1, 2)).double())
        overlap = torch.bmm(active.view(-1, 1, points * points), masks[i].view(-1, points * points, 1))
        inter.index_add_(0, k * n_concepts + labels[i], overlap.flatten().double())
    inter = inter.view(c, n_concepts)
    concept_area = torch.zeros(n_concepts, dtype=torch.float64)  # sum |L_c|
    concept_area.index_add_(0, labels, masks.sum((1, 2)).double())
    union = area[:, None] + concept_area[None, :] - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter))
    return iou.float(), (area / (n * points * points)).float()


def _check_settings(net, dataset, layer, quantile, iou_threshold, batch_size):
    layer = checks.layer(net, layer)
    quantile = checks.number(quantile, "quantile", low=0, high=1, low_open=True)
    iou_threshold = checks.number(iou_threshold, "iou_threshold", low=0, high=1)
    if batch_size is not None:
        batch_size = checks.integer(batch_size, "batch_size", low=1)
    try:
        n = len(dataset)
    except TypeError:
        raise ValueError(f"a dataset must have a length and items; got {type(dataset).__name__}") from None
    if n == 0:
        raise ValueError("the dataset is empty: there is nothing to dissect")
    concepts = list(getattr(dataset, "classes", None) or [])
    if not concepts:
        raise ValueError("dissection needs a dataset whose classes name its concepts, such as the shapes")
    rf = net.receptive_field(layer)
    shape = net.layer_shape(layer)
    if rf.is_global or len(shape) != 3:
        raise ValueError(f"{layer} gives one number per unit per image: dissection needs a layer with feature "
                         f"maps (one of {', '.join(l for l in net.layers if len(net.layer_shape(l)) == 3)})")
    stored = n * math.prod(shape) * 4
    if stored > MAX_MAP_BYTES:
        raise ValueError(f"{layer} maps of {n} images would take {stored / 2**20:.0f} MB: pick a later layer "
                         "or fewer images")
    if batch_size is None:
        batch_size = memory_batch_size(net)
    return layer, float(quantile), float(iou_threshold), batch_size, n, concepts, rf, shape


def dissect_iter(net: Network, dataset, layer: str, *, quantile: float = 0.005, iou_threshold: float = 0.04,
                 batch_size: int | None = None, should_stop: StopCheck = None) -> Iterator[Progress[Dissection]]:
    """`dissect`, batch by batch: one forward pass per image (the maps stored at the
    layer's resolution), then the thresholds and the counts. Yields `Progress` after each
    batch of the pass (its result a preview: NaN IoUs, `ended` ``""``); `should_stop()`
    is asked between batches, and a stopped run dissects the images seen so far
    (``ended="stopped"``). Checks its settings at the call."""
    settings = _check_settings(net, dataset, layer, quantile, iou_threshold, batch_size)
    return _dissect(net, dataset, *settings, should_stop)


def _dissect(net, dataset, layer, quantile, iou_threshold, batch_size, n, concepts, rf, shape, should_stop):
    name = str(getattr(dataset, "name", "") or type(dataset).__name__)
    c, h, w = shape
    maps = torch.empty(c, n, h, w, dtype=torch.float32)  # unit-major: each unit's values are contiguous
    labels = torch.empty(n, dtype=torch.int64)
    masks: torch.Tensor | None = None
    size = net.input_size

    def result(seen: int, ended: str) -> Dissection:
        if ended == "":
            nan = torch.full((c, len(concepts)), float("nan"))
            return Dissection(nan, torch.full((c,), float("nan")), torch.full((c,), float("nan")), concepts,
                              quantile, iou_threshold, net.name, name, layer, seen, "")
        thresholds = _thresholds(maps[:, :seen], quantile)
        step = MASK_STEP if size % MASK_STEP == 0 else 1
        iou, coverage = _count(maps[:, :seen], labels[:seen], masks[:seen], thresholds, rf, len(concepts), step)
        return Dissection(iou, thresholds, coverage, concepts, quantile, iou_threshold, net.name, name, layer,
                          seen, ended)

    for start in range(0, n, batch_size):
        if start and should_stop is not None and should_stop():
            yield Progress(start, n, result(start, "stopped"), done=True)
            return
        stop = min(n, start + batch_size)
        pixels, batch_labels, batch_masks = dataset_masks(net, dataset, start, stop)
        if batch_labels.numel() and (int(batch_labels.min()) < 0 or int(batch_labels.max()) >= len(concepts)):
            raise ValueError(f"a label of images {start}..{stop - 1} is not one of the {len(concepts)} classes")
        if masks is None:
            size = int(batch_masks.shape[-1])
            masks = torch.empty(n, size, size, dtype=torch.bool)
        # Guarded per batch, never across a yield: a paused or abandoned run holds nothing.
        with torch.no_grad(), net.guard():
            maps[:, start:stop] = net.forward_to(pixels.to(net.device), layer).float().cpu().transpose(0, 1)
        labels[start:stop] = batch_labels
        masks[start:stop] = batch_masks
        if stop < n:
            yield Progress(stop, n, result(stop, ""))
    yield Progress(n, n, result(n, "done"), done=True)


def dissect(net: Network, dataset, layer: str, *, quantile: float = 0.005, iou_threshold: float = 0.04,
            batch_size: int | None = None) -> Dissection:
    """Network dissection of `layer` over `dataset` (Bau et al. 2017): per unit, its IoU
    with every concept's masks and whether it is a detector (see the module's docstring).
    `quantile`: the share of each unit's positions kept as "on" (0.005); `iou_threshold`:
    the IoU above which a unit is a detector of its best concept (0.04)."""
    return run_to_end(dissect_iter(net, dataset, layer, quantile=quantile, iou_threshold=iou_threshold,
                                   batch_size=batch_size))
