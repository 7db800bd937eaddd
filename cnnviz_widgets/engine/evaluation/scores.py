"""Scores for attribution maps: how well does a map explain this network on this image?
Lesson ``13_comparing_attributions``.

Against ground truth (a boolean mask of the object, as the shapes carry):

* `pointing_game` (Zhang et al. 2016): does the map's maximum fall on the object?
* `mask_mass`: the share of the map's positive mass that lies on the object (a map
  spread at random scores about the object's area).

Against the network itself (no mask needed; Petsiuk, Das & Saenko 2018, RISE):

* `deletion_auc`: remove pixels from the image, most important first, and follow the
  class probability; the area under that curve is low when the map found what the
  decision needs (it drops fast). Removed pixels become those of a blurred copy
  (RISE makes them black: on the shapes that ranks the object's own mask below a
  random map, because black specks everywhere confuse the network sooner than a black
  silhouette of the shape does; lesson 13 checks it).
* `insertion_auc`: start from a blurred copy and put the pixels back, most important
  first; the area is high when the map found what the decision needs.

Both areas are means of probabilities over the fraction of pixels moved, so they lie in
[0, 1]. Pitfalls (said in the lesson): deletion rewards maps that remove whatever
destroys the image fastest, not necessarily the object (and it rewards blurry maps,
which remove whole regions); metrics can rank the same methods differently.

And the sanity check of Adebayo et al. (2018), for any method: `cascading_randomisation`
re-initialises the layers of a copy of the network from the top down and measures how
far each map moves from the original (Spearman rank correlation). A map that explains
the model must change when the model is destroyed.

J. Zhang, Z. Lin, J. Brandt, X. Shen, S. Sclaroff (2016). *Top-down Neural Attention by
Excitation Backprop*. ECCV. https://arxiv.org/abs/1608.00507
V. Petsiuk, A. Das, K. Saenko (2018). *RISE: Randomized Input Sampling for Explanation
of Black-box Models*. BMVC. https://arxiv.org/abs/1806.07421
J. Adebayo, J. Gilmer, M. Muelly, I. Goodfellow, M. Hardt, B. Kim (2018). *Sanity
Checks for Saliency Maps*. NeurIPS. https://arxiv.org/abs/1810.03292
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from ..attribution.gradcam import to_image_size
from ..attribution.guided import layer_parameters, reinitialise
from ..attribution.methods import METHODS
from ..core import checks, memory
from ..core.blur import blurred_copy
from ..core.progress import Progress, StopCheck, never_stop, run_to_end
from ..core.targets import ClassLogit, ClassProbability, as_target

__all__ = [
    "pointing_game",
    "mask_mass",
    "deletion_curve",
    "insertion_curve",
    "deletion_auc",
    "insertion_auc",
    "curve_iter",
    "auc_scores",
    "Curve",
    "Scores",
    "score_map",
    "random_map",
    "rank_correlation",
    "randomised_network",
    "cascading_randomisation",
    "cascading_randomisation_iter",
    "RandomisationResult",
    "FILLS",
]

FILLS = ("black", "blur", "grey")


# --- maps and masks --------------------------------------------------------------------

def _map2d(heat, what: str = "heat") -> np.ndarray:
    """One map as a float64 H x W array: a tensor or array, 2-D or 1 x H x W."""
    if hasattr(heat, "map") and not isinstance(heat, (np.ndarray, torch.Tensor)):
        heat = heat.map  # an Attribution
    a = heat.detach().cpu().numpy() if isinstance(heat, torch.Tensor) else np.asarray(heat)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"{what} must be one H x W map, not an array of shape {a.shape}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{what} has NaN or infinite values")
    return a


def _mask2d(mask, shape: tuple[int, int]) -> np.ndarray:
    m = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.shape != shape:
        raise ValueError(f"the mask is {m.shape[0]}x{m.shape[1] if m.ndim > 1 else ''} but the map is "
                         f"{shape[0]}x{shape[1]}: give both at the same size (Network.preprocess_mask "
                         "resizes a mask as the image)")
    m = m.astype(bool)
    if not m.any():
        raise ValueError("the mask is empty: there is no object to point at")
    return m


def pointing_game(heat, mask, *, tolerance: int = 0) -> bool:
    """True when the map's maximum lies on the object (`mask`, H x W bool), or within
    `tolerance` pixels of it (Zhang et al. used 15 px at ImageNet scale). Where several
    pixels share the maximum, the hit counts only if most of them are on the object; a
    flat map points nowhere and misses."""
    h = _map2d(heat)
    m = _mask2d(mask, h.shape)
    tolerance = checks.integer(tolerance, "tolerance", low=0)
    if tolerance:
        m = _dilate(m, tolerance)
    top = h == h.max()
    if top.all():
        return False
    return bool(m[top].mean() > 0.5)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    yy, xx = np.mgrid[0:mask.shape[0], 0:mask.shape[1]]
    out = np.zeros_like(mask)
    for r, c in zip(rows, cols):  # few object pixels on small images; fine for a score
        out |= (yy - r) ** 2 + (xx - c) ** 2 <= radius * radius
    return out


def mask_mass(heat, mask) -> float:
    """The share of the map's positive mass on the object: sum of max(heat, 0) inside the
    mask over its sum everywhere, in [0, 1]. 0 when the map has no positive value."""
    h = np.clip(_map2d(heat), 0, None)
    m = _mask2d(mask, h.shape)
    total = h.sum()
    return float(h[m].sum() / total) if total > 0 else 0.0


def random_map(shape: tuple[int, int] | int, seed: int = 0) -> np.ndarray:
    """A map of uniform noise: the chance level every score is read against."""
    if isinstance(shape, int):
        shape = (shape, shape)
    return np.random.default_rng(checks.integer(seed, "seed")).random(tuple(shape))


# --- deletion and insertion ------------------------------------------------------------

@dataclass
class Curve:
    """The class probability after moving `fractions[i]` of the pixels; `auc` its mean
    (trapezoid rule over the fraction), in [0, 1]."""

    fractions: np.ndarray
    probabilities: np.ndarray
    auc: float
    kind: str


def _fill(x: torch.Tensor, fill: Any) -> torch.Tensor:
    """What deleted pixels become (and insertion starts from): a named fill or an image
    (a [0, 1] tensor 3 x H x W, e.g. the shapes' object-free background)."""
    if isinstance(fill, torch.Tensor):
        f = fill.detach().to(x.device, x.dtype)
        f = f.unsqueeze(0) if f.dim() == 3 else f
        if f.shape != x.shape:
            raise ValueError(f"a fill image must be shaped like the image {tuple(x.shape[1:])}, "
                             f"not {tuple(fill.shape)}")
        return f
    fill = checks.choice(fill, "fill", FILLS)
    if fill == "black":
        return torch.zeros_like(x)
    if fill == "grey":
        return torch.full_like(x, 0.5)
    return blurred_copy(x)


def _order(heat: np.ndarray, seed: int) -> np.ndarray:
    """Pixel indices, most important first; ties in a seeded random order (a map with
    large flat regions, like a mask, should not win or lose by raster order)."""
    tiebreak = np.random.default_rng(seed).random(heat.size)
    return np.lexsort((tiebreak, -heat.ravel()))


def _class_of(net, target, n: int) -> int:
    t = as_target(net, target, n)
    if not isinstance(t, (ClassLogit, ClassProbability)) or isinstance(t.index, tuple) and len(t.index) != 1:
        raise ValueError("deletion and insertion follow the probability of one class: give a class index or name")
    return t.index[0] if isinstance(t.index, tuple) else t.index


def curve_iter(kind: str, net, image, target, heat, *, steps: int = 32, fill: Any = "blur",
               batch_size: int | None = None, seed: int = 0,
               should_stop: StopCheck = None) -> Iterator[Progress[Curve]]:
    """A "deletion" or "insertion" curve with progress after each batch of forwards.
    fill: what deleted pixels become and insertion starts from: "blur" (default),
    "black", "grey" or an image (e.g. the object-free background of a shape)."""
    kind = checks.choice(kind, "kind", ("deletion", "insertion"))
    x = net.as_batch(image, single=True, what=f"{kind}_auc")
    steps = checks.integer(steps, "steps", low=2)
    h = _map2d(heat)
    if h.shape != tuple(x.shape[-2:]):
        h = to_image_size(torch.from_numpy(h), tuple(x.shape[-2:])).double().numpy()
    cls = _class_of(net, target, 1)
    seed = checks.integer(seed, "seed")
    if batch_size is None:
        batch_size = memory.batch_size(net, size=max(x.shape[-2:]))  # forward only
    batch_size = checks.integer(batch_size, "batch_size", low=1)
    should_stop = should_stop or never_stop
    order = torch.from_numpy(_order(h, seed)).to(x.device)
    pixels = h.size
    counts = np.round(np.linspace(0, pixels, steps + 1)).astype(np.int64)
    other = _fill(x, fill)
    # Deletion moves pixels from the image to the fill; insertion from the fill to the image.
    start, end = (x, other) if kind == "deletion" else (other, x)
    # rank[p] = when pixel p moves; the image after c pixels takes `end` where rank < c.
    rank = torch.empty(pixels, dtype=torch.long, device=x.device)
    rank[order] = torch.arange(pixels, device=x.device)
    rank = rank.view(1, 1, *h.shape)
    probs = np.full(len(counts), np.nan)
    with net.guard(), torch.no_grad():
        for first in range(0, len(counts), batch_size):
            if should_stop():
                break
            c = torch.from_numpy(counts[first:first + batch_size]).to(x.device).view(-1, 1, 1, 1)
            moved = rank < c
            batch = torch.where(moved, end, start)
            probs[first:first + len(c)] = net(net.fast_layout(batch)).softmax(-1)[:, cls].double().cpu().numpy()
            done = min(first + batch_size, len(counts))
            if done < len(counts):
                yield Progress(done, len(counts), None)
    fractions = counts / pixels
    ok = ~np.isnan(probs)
    auc = float(np.trapezoid(probs[ok], fractions[ok]) / max(fractions[ok][-1] - fractions[ok][0], 1e-12)) \
        if ok.sum() > 1 else float("nan")
    yield Progress(len(counts), len(counts), Curve(fractions, probs, auc, kind), done=True)


def deletion_curve(net, image, target, heat, *, steps: int = 32, fill: Any = "blur",
                   batch_size: int | None = None, seed: int = 0) -> Curve:
    """Delete the pixels in the map's order (most important first) in `steps` steps, each
    to `fill` ("blur", "black" as in RISE, "grey", or an image), and record the class
    probability."""
    return run_to_end(curve_iter("deletion", net, image, target, heat, steps=steps, fill=fill,
                                  batch_size=batch_size, seed=seed, should_stop=None))


def insertion_curve(net, image, target, heat, *, steps: int = 32, fill: Any = "blur",
                    batch_size: int | None = None, seed: int = 0) -> Curve:
    """Start from `fill` ("blur" as in RISE, "black", "grey", or an image) and insert the
    image's pixels in the map's order (most important first), recording the class
    probability."""
    return run_to_end(curve_iter("insertion", net, image, target, heat, steps=steps, fill=fill,
                                  batch_size=batch_size, seed=seed, should_stop=None))


def deletion_auc(net, image, target, heat, *, steps: int = 32, fill: Any = "blur",
                 batch_size: int | None = None, seed: int = 0) -> float:
    """Area under the deletion curve, in [0, 1]: lower = the map found what the decision needs."""
    return deletion_curve(net, image, target, heat, steps=steps, fill=fill, batch_size=batch_size, seed=seed).auc


def insertion_auc(net, image, target, heat, *, steps: int = 32, fill: Any = "blur",
                  batch_size: int | None = None, seed: int = 0) -> float:
    """Area under the insertion curve, in [0, 1]: higher = the map found what the decision needs."""
    return insertion_curve(net, image, target, heat, steps=steps, fill=fill, batch_size=batch_size, seed=seed).auc


def auc_scores(net, image, target, heats, *, kinds: Sequence[str] = ("deletion", "insertion"), steps: int = 32,
               fill: Any = "blur", batch_size: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """The deletion and/or insertion AUC of several maps of one image at once: `heats` is
    K x H x W (or a list of H x W maps); returns {kind: K areas}, each what `deletion_auc`
    / `insertion_auc` give for that map with the same settings. The fill is made once and
    the moved copies of every map share batched forwards (`batch_size` images; None: from
    the memory budget), so scoring many maps costs little more than their forwards."""
    kinds = [checks.choice(k, "kind", ("deletion", "insertion")) for k in kinds]
    x = net.as_batch(image, single=True, what="auc_scores")
    steps = checks.integer(steps, "steps", low=2)
    seed = checks.integer(seed, "seed")
    if isinstance(heats, (np.ndarray, torch.Tensor)) and heats.ndim == 2:
        heats = [heats]
    maps = [_map2d(h, f"map {i}") for i, h in enumerate(heats)]
    if not maps:
        raise ValueError("give at least one map")
    size = tuple(x.shape[-2:])
    maps = [h if h.shape == size else to_image_size(torch.from_numpy(h), size).double().numpy() for h in maps]
    cls = _class_of(net, target, 1)
    if batch_size is None:
        batch_size = memory.batch_size(net, size=max(size))  # forward only
    batch_size = checks.integer(batch_size, "batch_size", low=1)
    pixels = maps[0].size
    counts = np.round(np.linspace(0, pixels, steps + 1)).astype(np.int64)
    other = _fill(x, fill)
    ranks = []
    for h in maps:
        rank = torch.empty(pixels, dtype=torch.long, device=x.device)
        rank[torch.from_numpy(_order(h, seed)).to(x.device)] = torch.arange(pixels, device=x.device)
        ranks.append(rank.view(1, 1, *size))
    # Every (kind, map, count) copy once, in batches.
    jobs = [(kind, m, c) for kind in kinds for m in range(len(maps)) for c in counts]
    probs = np.empty(len(jobs))
    with net.guard(), torch.no_grad():
        for first in range(0, len(jobs), batch_size):
            part = jobs[first:first + batch_size]
            copies = []
            for kind, m, c in part:
                start, end = (x, other) if kind == "deletion" else (other, x)
                copies.append(torch.where(ranks[m] < int(c), end, start))
            batch = torch.cat(copies)
            probs[first:first + len(part)] = net(net.fast_layout(batch)).softmax(-1)[:, cls].double().cpu().numpy()
    fractions = counts / pixels
    table = probs.reshape(len(kinds), len(maps), len(counts))
    return {kind: np.array([float(np.trapezoid(row, fractions) / (fractions[-1] - fractions[0])) for row in table[i]])
            for i, kind in enumerate(kinds)}


@dataclass
class Scores:
    """One map's scores: `pointing` and `mask_mass` (None without a mask), `deletion` and
    `insertion` (areas under the curves, None when not asked for)."""

    pointing: bool | None = None
    mask_mass: float | None = None
    deletion: float | None = None
    insertion: float | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if v is not None}


def score_map(net, image, target, heat, mask=None, *, steps: int = 32, curves: bool = True,
              seed: int = 0) -> Scores:
    """Every score of one map: pointing game and mask mass where a mask is given,
    deletion and insertion AUC (`steps` steps) when `curves`."""
    h = _map2d(heat)
    s = Scores()
    if mask is not None:
        s.pointing, s.mask_mass = pointing_game(h, mask), mask_mass(h, mask)
    if curves:
        s.deletion = deletion_auc(net, image, target, h, steps=steps, seed=seed)
        s.insertion = insertion_auc(net, image, target, h, steps=steps, seed=seed)
    return s


# --- the sanity check, for any method ----------------------------------------------------

def rank_correlation(a, b) -> float:
    """Spearman rank correlation of two maps' absolute values (as Adebayo et al.); 0 when
    either is flat."""
    from scipy.stats import spearmanr  # deferred: scipy.stats is heavy and only this check needs it

    x, y = np.abs(_map2d(a, "first map")).ravel(), np.abs(_map2d(b, "second map")).ravel()
    if x.shape != y.shape:
        raise ValueError(f"maps of different sizes: {a.shape} vs {b.shape}")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    rho = spearmanr(x, y).statistic
    return float(0.0 if np.isnan(rho) else rho)


def randomised_network(net, top_layers: int, *, layers_top_down: Sequence[str] | None = None, seed: int = 0):
    """A copy of `net` with its `top_layers` highest layers re-initialised (cascading, as
    Adebayo et al.): the same copy stage `top_layers` of `cascading_randomisation` uses.
    `net` itself is never modified. 0 gives an unchanged copy."""
    layers = list(layers_top_down) if layers_top_down is not None else list(reversed(net.layers))
    for layer in layers:
        checks.layer(net, layer)
    top_layers = checks.integer(top_layers, "top_layers", low=0, high=len(layers))
    probe = copy.deepcopy(net)
    owned = layer_parameters(probe)
    generator = torch.Generator().manual_seed(checks.integer(seed, "seed"))
    for layer in layers[:top_layers]:
        reinitialise(owned[layer], generator)
    return probe


@dataclass
class RandomisationResult:
    """stages[i] names the layer re-initialised last ("original" first); per method, the
    rank correlation of its map with the original at each stage, and the maps."""

    stages: list[str]
    correlations: dict[str, list[float]] = field(default_factory=dict)
    maps: dict[str, list[np.ndarray]] = field(default_factory=dict)
    ended: str = "done"


def _resolve_methods(methods) -> dict[str, Callable]:
    if isinstance(methods, Mapping):
        chosen = dict(methods)
    else:
        chosen = {}
        for name in methods:
            checks.choice(name, "method", list(METHODS))
            chosen[name] = METHODS[name]
    for name, fn in chosen.items():
        if not callable(fn):
            raise TypeError(f"method {name!r} is not callable")
    if not chosen:
        raise ValueError("choose at least one method")
    return chosen


def _as_array(result) -> np.ndarray:
    m = result.map if hasattr(result, "map") else result
    m = torch.as_tensor(m).detach().float().cpu()
    if m.dim() == 4:  # a gradient image: |.| max over colour channels, as saliency
        m = m.abs().amax(1)
    if m.dim() == 3:
        m = m[0]
    return m.numpy()


def cascading_randomisation_iter(net, image, target, methods: Sequence[str] | Mapping[str, Callable],
                                 *, layers_top_down: Sequence[str] | None = None, seed: int = 0,
                                 should_stop: StopCheck = None) -> Iterator[Progress[RandomisationResult]]:
    """`cascading_randomisation` with progress after each stage (see there)."""
    x = net.as_batch(image, single=True, what="the randomisation test")
    chosen = _resolve_methods(methods)
    layers = list(layers_top_down) if layers_top_down is not None else list(reversed(net.layers))
    for layer in layers:
        checks.layer(net, layer)
    should_stop = should_stop or never_stop
    probe = copy.deepcopy(net)
    owned = layer_parameters(probe)
    generator = torch.Generator().manual_seed(checks.integer(seed, "seed"))
    result = RandomisationResult(stages=["original"])
    result.maps = {name: [_as_array(fn(probe, x, target))] for name, fn in chosen.items()}
    total = len(layers) + 1
    for i, layer in enumerate(layers):
        if should_stop():
            result.ended = "stopped"
            break
        yield Progress(i + 1, total, None)
        reinitialise(owned[layer], generator)
        result.stages.append(layer)
        for name, fn in chosen.items():
            result.maps[name].append(_as_array(fn(probe, x, target)))
    result.correlations = {name: [rank_correlation(ms[0], m) for m in ms] for name, ms in result.maps.items()}
    yield Progress(len(result.stages), total, result, done=True)


def cascading_randomisation(net, image, target, methods: Sequence[str] | Mapping[str, Callable] = ("saliency",),
                            *, layers_top_down: Sequence[str] | None = None, seed: int = 0) -> RandomisationResult:
    """Adebayo et al.'s cascading randomisation for any attribution methods: names from
    `compare.METHODS` or a dict of ``method(net, image, target) -> Attribution`` (a
    tensor map is accepted too). On a copy of `net`, layers are re-initialised from the
    top down (`layers_top_down`, default every layer) one more per stage; each map is
    compared with the original map by the rank correlation of absolute values."""
    return run_to_end(cascading_randomisation_iter(net, image, target, methods,
                                                   layers_top_down=layers_top_down, seed=seed))
