"""Texture synthesis and style transfer: a layer's statistics as style.

Lesson `notebooks/14_style_transfer.ipynb`. Gatys, Ecker & Bethge 2015 ("Texture
Synthesis Using Convolutional Neural Networks", NeurIPS): describe a texture by the
Gram matrices of its features at several layers (which channels fire together,
wherever they fire), and synthesise a new one by descending from noise until its
Gram matrices match. Gatys, Ecker & Bethge 2016 ("Image Style Transfer Using
Convolutional Neural Networks", CVPR): add a content term, the features of a photo at
one layer, so the result keeps the photo's layout and takes the painting's texture;
total variation keeps it smooth. Both are one run of the shared loop (lesson 09's
`optimize_iter`) with a new objective.

The loss terms, as the engine minimises them:

- content: ``||F_l(x) - F_l(c)||^2 / ||F_l(c)||^2`` at `content_layer` (lesson 12's
  relative feature distance, `objectives.feature_match`);
- style: ``sum_l w_l ||G_l(x) - G_l(s)||^2``, CS231n's `style_loss`, with each layer's
  weight divided by ``||G_l(s)||^2`` so that every layer counts on the same scale
  whatever the network (the weights given are relative: 1 is "as much as the others");
- total variation: the kit's `TotalVariation` (a mean over pixels).

``transfer_style(..., style_weight=w)`` minimises content + w * style + TV.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping, Sequence

import torch

from ..core import checks
from ..core.progress import Progress, StopCheck, run_to_end
from . import OptimizeResult, PixelParam, TotalVariation
from . import objectives as O
from . import optimize_iter

__all__ = ["DEFAULTS", "TextureResult", "StyleResult", "gram_matrix", "style_loss", "layer_grams",
           "gram_distance", "style_match", "synthesize_texture_iter", "synthesize_texture", "transfer_style_iter",
           "transfer_style"]

DEFAULTS = dict(size=128, steps=200, step_size=0.03, style_weight=3.0, tv_weight=0.0)


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """The Gram matrices of a batch of features, normalised by C * H * W.

    `features`: N x C x H x W. Each channel is flattened to a vector of its H * W
    values (F: N x C x HW), and ``G = F F^T / (C * H * W)``: N x C x C, entry (i, j)
    the summed product of channels i and j over all positions. The normalisation by
    C * H * W is the one of CS231n's assignment 3 (``gram_matrix(features,
    normalize=True)``); Gatys et al. leave G unnormalised and divide the loss by
    4 N_l^2 M_l^2 instead. Dividing by H * W makes the Gram matrix of a texture the same
    at any image size, so a style image and a photo of different sizes compare.
    """
    if not isinstance(features, torch.Tensor) or features.dim() != 4:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(f"gram_matrix takes features of shape N x C x H x W, not {shape}")
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def style_loss(features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor],
               weights: Mapping[str, float]) -> torch.Tensor:
    """CS231n's style loss: ``sum over layers l of weights[l] * sum_ij (G_l - A_l)_ij^2``.

    `features[l]`: the image's features at layer l (N x C x H x W); `targets[l]`: the
    style's Gram matrix there (`gram_matrix` of its features, N x C x C or C x C);
    `weights[l]`: that layer's weight. A scalar tensor (differentiable)."""
    total = None
    for layer, weight in weights.items():
        term = weight * (gram_matrix(features[layer]) - targets[layer]).pow(2).sum()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("style_loss needs at least one layer")
    return total


def layer_grams(net, image, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """The Gram matrix (`gram_matrix`) of `image`'s features at each of `layers`
    (no gradient), on the network's device: 1 x C x C each."""
    x = net.as_batch(image, what="layer_grams")
    layers = [checks.layer(net, layer) for layer in layers]
    with torch.no_grad(), net.guard(), net.capture(layers) as captured:
        # the loop's layout (channels-last on a CPU): targets and steps see the same numbers
        net.forward_to(net.fast_layout(x), max(layers, key=net.layers.index))
        return {layer: gram_matrix(captured[layer].detach()) for layer in layers}


def gram_distance(grams: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Per layer, the relative distance ``||G - A|| / ||A||`` of Gram matrices (0: the
    same statistics)."""
    return {layer: float(O.relative_error(grams[layer], targets[layer].to(grams[layer].device)))
            for layer in targets}


def style_match(targets: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> O.Objective:
    """The style objective on the loop: `style_loss` against the style's Gram matrices
    `targets`, each layer's weight divided by ``||A_l||^2`` (so a weight of 1 means
    "the layer's squared relative Gram distance")."""
    targets = {layer: g.detach() for layer, g in targets.items()}
    scaled = {layer: float(w) / float(targets[layer].pow(2).sum().clamp_min(1e-30)) for layer, w in weights.items()}

    def fn(out):
        return style_loss(out, targets, scaled)

    return O.Objective.term("style", fn, tuple(weights))


def _layer_weights(net, layers, what: str) -> dict[str, float]:
    """Layers as a list (weight 1 each) or a {layer: weight} mapping, checked."""
    if isinstance(layers, str):
        layers = [layers]
    items = layers.items() if isinstance(layers, Mapping) else [(layer, 1.0) for layer in layers]
    weights = {checks.layer(net, layer): checks.number(w, f"the weight of {layer}", low=0.0) for layer, w in items}
    if not weights or not any(weights.values()):
        raise ValueError(f"{what} needs at least one layer with a weight above 0, e.g. {net.layers[1:3]}")
    return {layer: w for layer, w in weights.items() if w > 0}


@dataclass(kw_only=True)
class TextureResult(OptimizeResult):
    """An `OptimizeResult` (`image`: the synthesised texture) and:

    style_layers: the layers whose Gram matrices are matched, with their weights;
    style: the style (texture) image at the synthesis size (CPU);
    gram_distance: per layer, ||G(image) - G(style)|| / ||G(style)|| now;
    start_gram_distance: the same for the start image (the noise), so
        ``gram_distance[l] / start_gram_distance[l]`` says how far the run came.
    """

    style_layers: dict[str, float]
    style: torch.Tensor
    gram_distance: dict[str, float] = field(default_factory=dict)
    start_gram_distance: dict[str, float] = field(default_factory=dict)


@dataclass(kw_only=True)
class StyleResult(TextureResult):
    """A `TextureResult` (`image`: the stylised photo; `style`, `gram_distance`,
    `start_gram_distance`: as there, the start being the content image or noise) and:

    content_layer: the layer whose features are kept; content: the content image at
    the run's size (CPU); content_distance: ||F(image) - F(content)|| / ||F(content)||
    at `content_layer`; style_content_distance: the same for the style image (at the
    run's size): how far the style alone is from the content, for scale.
    """

    content_layer: str
    content: torch.Tensor
    content_distance: float = float("nan")
    style_content_distance: float = float("nan")


def _noise(shape, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (0.5 + 0.1 * torch.randn(shape, generator=gen)).clamp(0, 1)


def _style_target(net, style_image, size: int, what: str) -> torch.Tensor:
    return checks.pixels(net.as_batch(style_image, single=True, size=size, what=what), "style_image")


def synthesize_texture_iter(net, style_image, *, layers, size: int = DEFAULTS["size"], steps: int = DEFAULTS["steps"],
                            step_size: float = DEFAULTS["step_size"], tv_weight: float = DEFAULTS["tv_weight"],
                            seed: int = 0, every: int = 10,
                            should_stop: StopCheck = None) -> Iterator[Progress[TextureResult]]:
    """Gatys et al. 2015: a new texture whose Gram matrices at `layers` (a list, or a
    {layer: weight} mapping) match `style_image`'s, from seeded noise at size x size
    pixels; yield `Progress` carrying a `TextureResult`. Checks its settings at once."""
    weights = _layer_weights(net, layers, "texture synthesis")
    size = checks.integer(size, "size", low=16)
    seed = checks.integer(seed, "seed")
    style = _style_target(net, style_image, size, "texture synthesis")
    targets = layer_grams(net, style, list(weights))
    start = _noise(style.shape, seed)
    loop = optimize_iter(net, style_match(targets, weights), PixelParam(start), steps=steps, step_size=step_size,
                         regularizers=[TotalVariation(tv_weight)], every=every, seed=seed, should_stop=should_stop)
    return _texture_results(net, loop, weights, style, targets, gram_distance(layer_grams(net, start, weights), targets))


def _texture_results(net, loop, weights, style, targets, start_distance) -> Iterator[Progress[TextureResult]]:
    style = style.detach().cpu()
    for p in loop:
        r = p.result
        yield Progress(p.step, p.total, TextureResult(
            image=r.image, losses=r.losses, steps_taken=r.steps_taken, ended=r.ended, style_layers=dict(weights),
            style=style, gram_distance=gram_distance(layer_grams(net, r.image, weights), targets),
            start_gram_distance=dict(start_distance)), p.done)


def synthesize_texture(net, style_image, *, layers, size: int = DEFAULTS["size"], steps: int = DEFAULTS["steps"],
                       step_size: float = DEFAULTS["step_size"], tv_weight: float = DEFAULTS["tv_weight"],
                       seed: int = 0, every: int = 10) -> TextureResult:
    """`synthesize_texture_iter` run to the end."""
    return run_to_end(synthesize_texture_iter(net, style_image, layers=layers, size=size, steps=steps,
                                              step_size=step_size, tv_weight=tv_weight, seed=seed, every=every))


def transfer_style_iter(net, content_image, style_image, *, content_layer: str, style_layers,
                        style_weight: float = DEFAULTS["style_weight"], tv_weight: float = DEFAULTS["tv_weight"],
                        size: int = DEFAULTS["size"], steps: int = DEFAULTS["steps"],
                        step_size: float = DEFAULTS["step_size"], start: str = "content", seed: int = 0,
                        every: int = 10, should_stop: StopCheck = None) -> Iterator[Progress[StyleResult]]:
    """Gatys et al. 2016: the content image's features at `content_layer` with the style
    image's Gram matrices at `style_layers` (a list, or {layer: weight}), minimising
    content + `style_weight` * style + `tv_weight` * TV at size x size pixels, from the
    content image (``start="content"``, as CS231n does) or seeded noise
    (``start="noise"``, as Gatys et al. do); yield `Progress` carrying a `StyleResult`.
    Checks its settings at once."""
    content_layer = checks.layer(net, content_layer)
    weights = _layer_weights(net, style_layers, "style transfer")
    style_weight = checks.number(style_weight, "style_weight", low=0.0)
    size = checks.integer(size, "size", low=16)
    seed = checks.integer(seed, "seed")
    start = checks.choice(start, "start", ("content", "noise"))
    content = checks.pixels(net.as_batch(content_image, single=True, size=size, what="style transfer"),
                            "content_image")
    style = _style_target(net, style_image, size, "style transfer")
    targets = layer_grams(net, style, list(weights))
    content_features = _features(net, content, content_layer)
    objective = O.feature_match(content_layer, content_features)
    if style_weight > 0:
        objective = objective + style_weight * style_match(targets, weights)
    first = content.detach().cpu().clone() if start == "content" else _noise(content.shape, seed)
    loop = optimize_iter(net, objective, PixelParam(first), steps=steps, step_size=step_size,
                         regularizers=[TotalVariation(tv_weight)], every=every, seed=seed, should_stop=should_stop)
    return _style_results(net, loop, content_layer, weights, content, style, content_features, targets,
                          gram_distance(layer_grams(net, first, weights), targets))


def _features(net, image, layer: str) -> torch.Tensor:
    x = net.as_batch(image, what="style transfer")
    with torch.no_grad(), net.guard():
        # the loop's layout: a content target computed otherwise differs by float noise, and Adam
        # (which scales steps to the gradient's size) would turn that noise into full-size steps
        return net.forward_to(net.fast_layout(x), layer).detach()


def _relative(net, image, layer, reference) -> float:
    return float(O.relative_error(_features(net, image, layer), reference))


def _style_results(net, loop, content_layer, weights, content, style, content_features, targets,
                   start_distance) -> Iterator[Progress[StyleResult]]:
    style_content = _relative(net, style, content_layer, content_features)
    content, style = content.detach().cpu(), style.detach().cpu()
    for p in loop:
        r = p.result
        yield Progress(p.step, p.total, StyleResult(
            image=r.image, losses=r.losses, steps_taken=r.steps_taken, ended=r.ended, style_layers=dict(weights),
            style=style, gram_distance=gram_distance(layer_grams(net, r.image, weights), targets),
            start_gram_distance=dict(start_distance), content_layer=content_layer, content=content,
            content_distance=_relative(net, r.image, content_layer, content_features),
            style_content_distance=style_content), p.done)


def transfer_style(net, content_image, style_image, *, content_layer: str, style_layers,
                   style_weight: float = DEFAULTS["style_weight"], tv_weight: float = DEFAULTS["tv_weight"],
                   size: int = DEFAULTS["size"], steps: int = DEFAULTS["steps"], step_size: float = DEFAULTS["step_size"],
                   start: str = "content", seed: int = 0, every: int = 10) -> StyleResult:
    """`transfer_style_iter` run to the end."""
    return run_to_end(transfer_style_iter(net, content_image, style_image, content_layer=content_layer,
                                          style_layers=style_layers, style_weight=style_weight, tv_weight=tv_weight,
                                          size=size, steps=steps, step_size=step_size, start=start, seed=seed,
                                          every=every))
