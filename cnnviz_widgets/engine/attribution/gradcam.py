"""Grad-CAM and Guided Grad-CAM (Selvaraju et al. 2017). Lesson ``13_comparing_attributions``.

Grad-CAM weighs the feature maps A^k of one layer (by default the last one with a
spatial map) by how much the class score y^c grows with each channel on average,

    alpha_k^c = mean over (i, j) of d y^c / d A^k_ij,
    L^c       = ReLU( sum_k alpha_k^c A^k ),

a coarse map at the layer's resolution (6x6 for the shapes net's conv5, 7x7 for
EfficientNet-Lite0's head), upsampled bilinearly to the image (`to_image_size`).
Guided Grad-CAM multiplies that upsampled map into the guided backprop picture of the
same class: sharp like guided backprop, but only where Grad-CAM sees the class.

R. R. Selvaraju, M. Cogswell, A. Das, R. Vedantam, D. Parikh, D. Batra (2017).
*Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization*.
ICCV. https://arxiv.org/abs/1610.02391

The backward pass stops at the layer: its output is swapped, inside a forward hook,
for a leaf tensor of the same values, so nothing below the layer is differentiated
(cheaper than saliency's full backward). The rest of the pass gets a copy of that leaf,
so an in-place operation after the layer (DenseNet's ``F.relu(features, inplace=True)``
after ``features.norm5``) changes the copy, never the activations A^k. The hook is removed when the call ends,
also when it raises. Both methods take any `engine.targets` target (a class means its
logit) and have `_iter` twins that go `batch_size` images at a time
(`attribution.batched_iter`).
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
import torch.nn.functional as F

from ..core import checks
from ..core.network import Network
from ..core.progress import Progress, StopCheck, run_to_end
from ..core.targets import Target, score
from .base import Attribution, batched_iter
from .guided import guided_backprop

__all__ = ["grad_cam", "grad_cam_iter", "guided_grad_cam", "guided_grad_cam_iter", "last_spatial_layer",
           "spatial_layers", "to_image_size", "layer_gradient"]

def spatial_layers(net: Network) -> list[str]:
    """The readable layers whose output is a spatial map (C x h x w with h, w > 1), in
    order (`Network.spatial_layers`: one forward, cached on the network)."""
    return checks.network(net, "Grad-CAM").spatial_layers()


def last_spatial_layer(net: Network) -> str:
    """Grad-CAM's default layer: the last layer with a spatial map (the paper's choice,
    the best compromise between high-level meaning and spatial detail)."""
    layers = spatial_layers(net)
    if not layers:
        raise ValueError(f"{net.name} has no layer with a spatial map: Grad-CAM needs one")
    return layers[-1]


def _cam_layer(net: Network, layer: Any) -> str:
    """The checked Grad-CAM layer: None = the last spatial one; a layer without a spatial
    map is refused before any work."""
    checks.network(net, "Grad-CAM")
    if layer is None:
        return last_spatial_layer(net)
    layer = checks.layer(net, layer)
    if layer not in spatial_layers(net):
        raise ValueError(f"Grad-CAM needs a layer with a spatial map; {layer}'s output has shape "
                         f"{tuple(net.layer_shape(layer))}. Try {last_spatial_layer(net)}.")
    return layer


def to_image_size(layer_map: torch.Tensor, size: tuple[int, int] | int) -> torch.Tensor:
    """A layer-resolution map (h x w or N x h x w) upsampled bilinearly to `size` (the
    half-pixel convention of pytorch-grad-cam's cv2.resize and Captum's interpolate)."""
    if checks.is_integer(size):
        size = (size, size)
    size = tuple(checks.integer(v, "size", low=1) for v in size)
    m = torch.as_tensor(layer_map).float()
    single = m.dim() == 2
    if single:
        m = m[None]
    if m.dim() != 3:
        raise ValueError(f"a layer map is h x w or N x h x w, not a tensor of shape {tuple(m.shape)}")
    if tuple(m.shape[-2:]) != tuple(size):
        m = F.interpolate(m[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    return m[0] if single else m


def layer_gradient(net: Network, x: torch.Tensor, layer: str, target: Target) -> tuple[torch.Tensor, torch.Tensor]:
    """The output A of `layer` for the batch x and d target / d A (both N x C x h x w, on
    the network's device). The backward pass stops at the layer.

    Runs inside ``net.guard()``; `target` is a checked `Target`."""
    found: dict[str, torch.Tensor] = {}

    def swap(_module, _inputs, output):
        if not isinstance(output, torch.Tensor):
            raise ValueError(f"layer {layer} does not output one tensor: Grad-CAM cannot use it")
        leaf = output.detach().requires_grad_(True)
        found["leaf"] = leaf
        # The rest of the pass gets a copy: an in-place op on it (a functional ReLU) must
        # neither fail on a leaf nor change the activations kept here.
        return leaf.clone()

    with net.guard():
        handle = net.module(layer).register_forward_hook(swap)
        try:
            with torch.enable_grad():
                scores = score(net, net.fast_layout(x), target)
                if "leaf" not in found:
                    raise ValueError(f"the target is computed before layer {layer}: it cannot depend on it")
                (grad,) = torch.autograd.grad(scores.sum(), found["leaf"], allow_unused=True)
        finally:
            handle.remove()
    acts = found["leaf"].detach()
    if grad is None:
        raise ValueError(f"the target does not depend on layer {layer}")
    return acts, grad


def _explain_grad_cam(net: Network, x: torch.Tensor, target: Target, layer: str) -> Attribution:
    acts, grads = layer_gradient(net, x, layer, target)
    if acts.dim() != 4 or acts.shape[-2] * acts.shape[-1] < 2:  # at this image size
        raise ValueError(f"Grad-CAM needs a layer with a spatial map; {layer}'s output has shape "
                         f"{tuple(acts.shape[1:])} for a {x.shape[-2]}x{x.shape[-1]} image")
    weights = grads.mean(dim=(2, 3))
    layer_map = torch.relu((weights[:, :, None, None] * acts).sum(dim=1)).float().cpu()
    return Attribution(map=to_image_size(layer_map, tuple(x.shape[-2:])), per_channel=None, method="grad_cam",
                       extra={"layer": layer, "layer_map": layer_map, "weights": weights.float().cpu()})


def grad_cam_iter(net: Network, image, target: Any, *, layer: str | None = None, batch_size: int | None = None,
                  should_stop: StopCheck = None) -> Iterator[Progress[Attribution]]:
    """`grad_cam`, `batch_size` images at a time (None: from the memory budget,
    `engine.memory`), yielding `Progress` after each batch."""
    return batched_iter(_explain_grad_cam, net, image, target, batch_size=batch_size, should_stop=should_stop,
                        what="Grad-CAM", layer=_cam_layer(net, layer))


def grad_cam(net: Network, image, target: Any, *, layer: str | None = None,
             batch_size: int | None = None) -> Attribution:
    """Grad-CAM of `target` (a class index or name = its logit, one per image, or any
    `Target` computed after the layer) at `layer` (default: `last_spatial_layer(net)`).

    Returns an `Attribution` whose `map` is at image size (N x H x W, bilinear) and whose
    ``extra["layer_map"]`` is the layer-resolution map ReLU(sum_k alpha_k A^k)
    (N x h x w), with ``extra["weights"]`` (alpha, N x C) and ``extra["layer"]``.
    `per_channel` is None: Grad-CAM has no colour channels.
    """
    return run_to_end(grad_cam_iter(net, image, target, layer=layer, batch_size=batch_size))


def _explain_guided_grad_cam(net: Network, x: torch.Tensor, target: Target, layer: str) -> Attribution:
    cam = _explain_grad_cam(net, x, target, layer)
    gradient = guided_backprop(net, x, target, rule="guided", batch_size=x.shape[0]).per_channel.float()
    product = gradient * cam.map[:, None]
    return Attribution(map=product.abs().amax(dim=1), per_channel=product, method="guided_grad_cam",
                       extra={**cam.extra, "grad_cam": cam.map})


def guided_grad_cam_iter(net: Network, image, target: Any, *, layer: str | None = None,
                         batch_size: int | None = None, should_stop: StopCheck = None) -> Iterator[Progress[Attribution]]:
    """`guided_grad_cam`, `batch_size` images at a time, yielding `Progress` after each batch."""
    return batched_iter(_explain_guided_grad_cam, net, image, target, batch_size=batch_size,
                        should_stop=should_stop, what="Guided Grad-CAM", layer=_cam_layer(net, layer))


def guided_grad_cam(net: Network, image, target: Any, *, layer: str | None = None,
                    batch_size: int | None = None) -> Attribution:
    """Guided Grad-CAM: the guided backprop gradient of the target (N x 3 x H x W) times
    the upsampled Grad-CAM map. `map` is max over colour channels of |product| (as
    saliency); `per_channel` the signed product; ``extra`` Grad-CAM's, with its
    image-size map as ``extra["grad_cam"]``."""
    return run_to_end(guided_grad_cam_iter(net, image, target, layer=layer, batch_size=batch_size))
