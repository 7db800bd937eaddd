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
from torch import nn

from ..attribution.gradcam import to_image_size
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
    "curve",
    "curve_iter",
    "auc_scores",
    "auc_scores_iter",
    "AucScores",
    "KINDS",
    "Curve",
    "Scores",
    "score_map",
    "random_map",
    "rank_correlation",
    "randomised_network",
    "layer_parameters",
    "reinitialise",
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


def random_map(shape: tuple[int, int] | int, *, seed: int = 0) -> np.ndarray:
    """A map of uniform noise: the chance level every score is read against."""
    if checks.is_integer(shape):
        shape = (checks.integer(shape, "shape", low=1),) * 2
    return np.random.default_rng(checks.integer(seed, "seed")).random(tuple(shape))


# --- deletion and insertion ------------------------------------------------------------

KINDS = ("deletion", "insertion")


@dataclass
class Curve:
    """The class probability after moving `fractions[i]` of the pixels (`probabilities`,
    NaN where not measured yet); `auc` its mean (trapezoid rule over the fraction), in
    [0, 1]; `kind`: "deletion" or "insertion"; `ended`: "" in a preview, then "done" or
    "stopped" (the area then covers the fractions measured)."""

    fractions: np.ndarray
    probabilities: np.ndarray
    auc: float
    kind: str
    ended: str = "done"


@dataclass
class AucScores:
    """The areas under the curves of several maps of one image: `deletion` and
    `insertion` hold one area per map (K floats; None for a kind not asked for; NaN for
    a map not measured yet), `kinds` the kinds asked for, `ended` "" in a preview, then
    "done" or "stopped"."""

    kinds: list[str]
    deletion: np.ndarray | None = None
    insertion: np.ndarray | None = None
    ended: str = "done"


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


def _area(fractions: np.ndarray, probs: np.ndarray) -> float:
    """The mean of a curve over the fractions measured (NaN: not measured)."""
    ok = ~np.isnan(probs)
    if ok.sum() < 2:
        return float("nan")
    f = fractions[ok]
    return float(np.trapezoid(probs[ok], f) / max(f[-1] - f[0], 1e-12))


@dataclass
class _CurvePlan:
    """Checked settings of a set of curves: every (kind, map) of one image."""

    net: Any
    x: torch.Tensor
    cls: int
    kinds: list[str]
    ranks: list[torch.Tensor]
    counts: np.ndarray
    other: torch.Tensor
    batch_size: int

    @property
    def fractions(self) -> np.ndarray:
        return self.counts / self.counts[-1]


def _plan(net, image, target, heats, kinds, steps, fill, batch_size, seed, what: str) -> _CurvePlan:
    """Check every setting of the curves (before any work) and rank each map's pixels."""
    kinds = [checks.choice(k, "kind", KINDS) for k in kinds]
    if not kinds:
        raise ValueError("choose at least one kind: 'deletion' or 'insertion'")
    x = net.as_batch(image, single=True, what=what)
    steps = checks.integer(steps, "steps", low=2)
    seed = checks.integer(seed, "seed")
    if isinstance(heats, (np.ndarray, torch.Tensor)) and heats.ndim == 2 or hasattr(heats, "map"):
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
    ranks = []
    for h in maps:
        # rank[p] = when pixel p moves; the image after c pixels takes the end state where rank < c.
        rank = torch.empty(pixels, dtype=torch.long, device=x.device)
        rank[torch.from_numpy(_order(h, seed)).to(x.device)] = torch.arange(pixels, device=x.device)
        ranks.append(rank.view(1, 1, *size))
    counts = np.round(np.linspace(0, pixels, steps + 1)).astype(np.int64)
    return _CurvePlan(net, x, cls, kinds, ranks, counts, _fill(x, fill), batch_size)


def _measure(plan: _CurvePlan, should_stop: StopCheck) -> Iterator[tuple[int, int, np.ndarray, bool]]:
    """The one implementation behind every curve: the class probability of each moved
    copy (kind, map, count), `batch_size` copies per forward. Yields (copies done,
    copies, kinds x maps x counts probabilities with NaN where not measured, stopped)
    after each batch; the guard and the no-grad mode are held within a batch only."""
    net, x, counts = plan.net, plan.x, plan.counts
    should_stop = should_stop or never_stop
    # Deletion moves pixels from the image to the fill; insertion from the fill to the image.
    jobs = [(kind, m, int(c)) for kind in plan.kinds for m in range(len(plan.ranks)) for c in counts]
    probs = np.full(len(jobs), np.nan)
    shape = (len(plan.kinds), len(plan.ranks), len(counts))
    for first in range(0, len(jobs), plan.batch_size):
        if should_stop():
            yield first, len(jobs), probs.reshape(shape), True
            return
        part = jobs[first:first + plan.batch_size]
        copies = []
        for kind, m, c in part:
            start, end = (x, plan.other) if kind == "deletion" else (plan.other, x)
            copies.append(torch.where(plan.ranks[m] < c, end, start))
        with net.guard(), torch.no_grad():
            out = net(net.fast_layout(torch.cat(copies))).softmax(-1)[:, plan.cls]
        probs[first:first + len(part)] = out.double().cpu().numpy()
        yield first + len(part), len(jobs), probs.reshape(shape), False


def curve_iter(net, image, target, heat, *, kind: str = "deletion", steps: int = 32, fill: Any = "blur",
               batch_size: int | None = None, seed: int = 0,
               should_stop: StopCheck = None) -> Iterator[Progress[Curve]]:
    """`curve`, yielding `Progress` after each batch of forwards (a preview: the
    probabilities measured so far). Checks its settings when called."""
    plan = _plan(net, image, target, [heat], [kind], steps, fill, batch_size, seed, f"{kind}_curve")
    return _curve_steps(plan, should_stop)


def _curve_steps(plan: _CurvePlan, should_stop: StopCheck) -> Iterator[Progress[Curve]]:
    fractions, kind = plan.fractions, plan.kinds[0]
    for done, total, probs, stopped in _measure(plan, should_stop):
        row = probs[0, 0].copy()
        ended = "stopped" if stopped else ("done" if done == total else "")
        yield Progress(done, total, Curve(fractions, row, _area(fractions, row), kind, ended), done=bool(ended))


def curve(net, image, target, heat, *, kind: str = "deletion", steps: int = 32, fill: Any = "blur",
          batch_size: int | None = None, seed: int = 0) -> Curve:
    """A deletion or insertion curve of `heat` (H x W, any size: resized to the image's;
    or an `Attribution`) for one image and class, in `steps` steps (Petsiuk et al.): the
    class probability as the pixels move, most important first, between the image and
    `fill` ("blur", "black" as in RISE, "grey", or an image 3 x H x W)."""
    return run_to_end(curve_iter(net, image, target, heat, kind=kind, steps=steps, fill=fill,
                                 batch_size=batch_size, seed=seed))


def deletion_curve(net, image, target, heat, *, steps: int = 32, fill: Any = "blur",
                   batch_size: int | None = None, seed: int = 0) -> Curve:
    """Delete the pixels in the map's order (most important first) in `steps` steps, each
    to `fill` ("blur", "black" as in RISE, "grey", or an image), and record the class
    probability: ``curve(..., kind="deletion")``."""
    return curve(net, image, target, heat, kind="deletion", steps=steps, fill=fill, batch_size=batch_size, seed=seed)


def insertion_curve(net, image, target, heat, *, steps: int = 32, fill: Any = "blur",
                    batch_size: int | None = None, seed: int = 0) -> Curve:
    """Start from `fill` ("blur" as in RISE, "black", "grey", or an image) and insert the
    image's pixels in the map's order (most important first), recording the class
    probability: ``curve(..., kind="insertion")``."""
    return curve(net, image, target, heat, kind="insertion", steps=steps, fill=fill, batch_size=batch_size, seed=seed)


def deletion_auc(net, image, target, heat, *, steps: int = 32, fill: Any = "blur",
                 batch_size: int | None = None, seed: int = 0) -> float:
    """Area under the deletion curve, in [0, 1]: lower = the map found what the decision
    needs. A score is one number (`deletion_curve` gives the `Curve` behind it)."""
    return deletion_curve(net, image, target, heat, steps=steps, fill=fill, batch_size=batch_size, seed=seed).auc


def insertion_auc(net, image, target, heat, *, steps: int = 32, fill: Any = "blur",
                  batch_size: int | None = None, seed: int = 0) -> float:
    """Area under the insertion curve, in [0, 1]: higher = the map found what the decision
    needs. A score is one number (`insertion_curve` gives the `Curve` behind it)."""
    return insertion_curve(net, image, target, heat, steps=steps, fill=fill, batch_size=batch_size, seed=seed).auc


def auc_scores_iter(net, image, target, heats, *, kinds: Sequence[str] = KINDS, steps: int = 32,
                    fill: Any = "blur", batch_size: int | None = None, seed: int = 0,
                    should_stop: StopCheck = None) -> Iterator[Progress[AucScores]]:
    """`auc_scores`, yielding `Progress` after each batch of forwards. Checks its settings
    when called."""
    plan = _plan(net, image, target, heats, kinds, steps, fill, batch_size, seed, "auc_scores")
    return _auc_steps(plan, should_stop)


def _auc_steps(plan: _CurvePlan, should_stop: StopCheck) -> Iterator[Progress[AucScores]]:
    fractions = plan.fractions
    for done, total, probs, stopped in _measure(plan, should_stop):
        ended = "stopped" if stopped else ("done" if done == total else "")
        result = AucScores(kinds=list(plan.kinds), ended=ended)
        for i, kind in enumerate(plan.kinds):
            setattr(result, kind, np.array([_area(fractions, row) for row in probs[i]]))
        yield Progress(done, total, result, done=bool(ended))


def auc_scores(net, image, target, heats, *, kinds: Sequence[str] = KINDS, steps: int = 32,
               fill: Any = "blur", batch_size: int | None = None, seed: int = 0) -> AucScores:
    """The deletion and/or insertion AUC of several maps of one image at once: `heats` is
    K x H x W (or a list of H x W maps); ``result.deletion`` / ``.insertion`` hold K
    areas, each what `deletion_auc` / `insertion_auc` give for that map with the same
    settings (the same implementation). The fill is made once and the moved copies of
    every map share batched forwards (`batch_size` images; None: from the memory
    budget), so scoring many maps costs little more than their forwards."""
    return run_to_end(auc_scores_iter(net, image, target, heats, kinds=kinds, steps=steps, fill=fill,
                                      batch_size=batch_size, seed=seed))


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


def score_map(net, image, target, heat, *, mask=None, steps: int = 32, curves: bool = True,
              seed: int = 0) -> Scores:
    """Every score of one map: pointing game and mask mass where a `mask` (H x W bool)
    is given, deletion and insertion AUC (`steps` steps) when `curves`."""
    h = _map2d(heat)
    s = Scores()
    if mask is not None:
        s.pointing, s.mask_mass = pointing_game(h, mask), mask_mass(h, mask)
    if curves:
        areas = auc_scores(net, image, target, [h], steps=steps, seed=seed)
        s.deletion, s.insertion = float(areas.deletion[0]), float(areas.insertion[0])
    return s


# --- the sanity check, for any method ----------------------------------------------------

def rank_correlation(a, b) -> float:
    """Spearman rank correlation of two maps' absolute values (as Adebayo et al.); 0 when
    either is flat. The one correlation rule of the sanity check."""
    from scipy.stats import spearmanr  # deferred: scipy.stats is heavy and only this check needs it

    x, y = np.abs(_map2d(a, "first map")).ravel(), np.abs(_map2d(b, "second map")).ravel()
    if x.shape != y.shape:
        raise ValueError(f"maps of different sizes: {np.shape(a)} vs {np.shape(b)}")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    rho = spearmanr(x, y).statistic
    return float(0.0 if np.isnan(rho) else rho)


def layer_parameters(net) -> dict[str, list[nn.Module]]:
    """For each readable layer, the modules with parameters that run after the previous
    layer and up to it (so AlexNet's conv1 owns features.0, its ReLU having none)."""
    owned, seen = {}, set()
    for layer in net.layers:
        leaves, _ = net.executed_leaves(layer)
        mods = []
        for _name, m in leaves:
            if id(m) not in seen and any(True for _ in m.parameters(recurse=False)):
                mods.append(m)
            seen.add(id(m))
        owned[layer] = mods
    return owned


def reinitialise(modules: Sequence[nn.Module], generator: torch.Generator) -> None:
    """Replace every parameter by Gaussian noise with that tensor's own mean and spread:
    the layer forgets what it learnt but keeps its scale (activations neither vanish nor blow up)."""
    with torch.no_grad():
        for m in modules:
            for p in m.parameters(recurse=False):
                mean, std = p.mean(), (p.std() if p.numel() > 1 else p.abs().mean())
                noise = torch.randn(p.shape, generator=generator, dtype=p.dtype, device="cpu").to(p.device)
                p.copy_(mean + std * noise)


def _top_down(net, layers_top_down) -> list[str]:
    layers = list(layers_top_down) if layers_top_down is not None else list(reversed(net.layers))
    return [checks.layer(net, layer) for layer in layers]


def randomised_network(net, top_layers: int, *, layers_top_down: Sequence[str] | None = None, seed: int = 0):
    """A copy of `net` with its `top_layers` highest layers re-initialised (cascading, as
    Adebayo et al.): the same copy stage `top_layers` of `cascading_randomisation` uses.
    `net` itself is never modified. 0 gives an unchanged copy."""
    layers = _top_down(net, layers_top_down)
    top_layers = checks.integer(top_layers, "top_layers", low=0, high=len(layers))
    probe = copy.deepcopy(net)
    owned = layer_parameters(probe)
    generator = torch.Generator().manual_seed(checks.integer(seed, "seed"))
    for layer in layers[:top_layers]:
        reinitialise(owned[layer], generator)
    return probe


@dataclass
class RandomisationResult:
    """Adebayo et al.'s cascading randomisation: `stages[i]` names the layer
    re-initialised last ("original" first); per method, `correlations` holds the rank
    correlation (`rank_correlation`: Spearman of absolute values) of its map at each
    stage with its original map, and `maps` the H x W maps (numpy); `ended` is "" in a
    preview, then "done" or "stopped"."""

    stages: list[str]
    correlations: dict[str, list[float]] = field(default_factory=dict)
    maps: dict[str, list[np.ndarray]] = field(default_factory=dict)
    ended: str = "done"


def _resolve_methods(methods) -> dict[str, Callable]:
    if isinstance(methods, Mapping):
        chosen = dict(methods)
    else:
        if isinstance(methods, str):
            methods = [methods]
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


def cascading_randomisation_iter(net, image, target, *,
                                 methods: Sequence[str] | Mapping[str, Callable] = ("saliency",),
                                 layers_top_down: Sequence[str] | None = None, seed: int = 0,
                                 should_stop: StopCheck = None) -> Iterator[Progress[RandomisationResult]]:
    """`cascading_randomisation`, yielding `Progress` after each stage (a preview: the
    stages so far). Checks its settings when called."""
    x = net.as_batch(image, single=True, what="the randomisation test")
    chosen = _resolve_methods(methods)
    layers = _top_down(net, layers_top_down)
    seed = checks.integer(seed, "seed")
    return _cascade(net, x, target, chosen, layers, seed, should_stop or never_stop)


def _cascade(net, x, target, chosen, layers, seed, should_stop) -> Iterator[Progress[RandomisationResult]]:
    probe = copy.deepcopy(net)
    owned = layer_parameters(probe)
    generator = torch.Generator().manual_seed(seed)
    stages = ["original"]
    maps = {name: [_as_array(fn(probe, x, target))] for name, fn in chosen.items()}
    total = len(layers) + 1

    def result(ended: str) -> RandomisationResult:
        return RandomisationResult(
            stages=list(stages), correlations={name: [rank_correlation(ms[0], m) for m in ms] for name, ms in maps.items()},
            maps={name: list(ms) for name, ms in maps.items()}, ended=ended)

    for layer in layers:
        yield Progress(len(stages), total, result(""))
        if should_stop():
            yield Progress(len(stages), total, result("stopped"), done=True)
            return
        reinitialise(owned[layer], generator)
        stages.append(layer)
        for name, fn in chosen.items():
            maps[name].append(_as_array(fn(probe, x, target)))
    yield Progress(total, total, result("done"), done=True)


def cascading_randomisation(net, image, target, *, methods: Sequence[str] | Mapping[str, Callable] = ("saliency",),
                            layers_top_down: Sequence[str] | None = None, seed: int = 0) -> RandomisationResult:
    """Adebayo et al.'s cascading randomisation for any attribution methods: names from
    `attribution.methods.METHODS` or a dict of ``method(net, image, target) ->
    Attribution`` (a tensor map is accepted too). On a copy of `net` (never `net`
    itself), layers are re-initialised from the top down (`layers_top_down`, default
    every layer) one more per stage; each map is compared with the original map by
    `rank_correlation`. A map that explains the model must change when the model is
    destroyed."""
    return run_to_end(cascading_randomisation_iter(net, image, target, methods=methods,
                                                   layers_top_down=layers_top_down, seed=seed))
