"""Segmentation from a saliency map, with no segmentation labels (lesson 13's section
"Segmentation from saliency"; Simonyan, Vedaldi & Zisserman 2014, "Deep Inside
Convolutional Networks", section 3.1, weakly supervised object localisation).

The saliency map seeds GrabCut (Rother, Kolmogorov & Blake 2004): the most salient pixels
(above the `foreground` quantile of the map; 0.95 in the paper) are certainly the object,
the least salient (below the `background` quantile; 0.30) certainly background, and the
rest is left for GrabCut's colour models and graph cut to decide. One departure: the map
is first blurred (a Gaussian of `sigma` = 2 px; ``sigma=None`` seeds from the raw map, as
the paper). On the 64-px shapes the raw gradient is speckled, and seeds from it make
GrabCut lose to the centre box (mean IoU 0.43 against 0.51 on 50 shapes); blurred, it wins
(0.70; 0.68 on another 50 it was not chosen on). benchmarks/README.md has the numbers. GrabCut is OpenCV's
``cv2.grabCut`` (``opencv-python-headless``): scikit-image has no GrabCut, and OpenCV's
is the implementation of Rother et al.'s algorithm most people use.

`segment_from_saliency` returns the mask with the two baselines the lesson measures it
against: the saliency map thresholded at a fixed share of the pixels, and the centre box.
`mask_iou` scores a mask against the shapes' ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core import checks
from ..core.blur import gaussian_blur
from .saliency import saliency

__all__ = ["Segmentation", "segment_from_saliency", "thresholded_saliency", "centre_box", "mask_iou"]


@dataclass(frozen=True)
class Segmentation:
    """Images segmented from their saliency maps.

    mask: N x H x W bool, GrabCut's foreground; saliency: N x H x W float tensor, the
    maps that seeded it, blurred by `sigma` pixels (None: the raw maps); seeds: N x H x W
    uint8, the labels GrabCut started from (0 certain background, 1 certain object,
    2 probably background, 3 probably object: OpenCV's GC_* values); foreground,
    background: the quantiles of each map that made the seeds; iterations: GrabCut's
    iterations.
    """

    mask: np.ndarray
    saliency: torch.Tensor
    seeds: np.ndarray
    foreground: float
    background: float
    iterations: int
    sigma: float | None


def _check_quantiles(foreground, background) -> tuple[float, float]:
    foreground = checks.fraction(foreground, "foreground")
    background = checks.fraction(background, "background")
    if not background < foreground:
        raise ValueError(f"background {background:g} must be below foreground {foreground:g}: the least salient "
                         "pixels are the background seeds, the most salient the object's")
    return foreground, background


def segment_from_saliency(net, image, target, *, foreground: float = 0.95, background: float = 0.30,
                          iterations: int = 5, sigma: float | None = 2.0) -> Segmentation:
    """GrabCut seeded by the saliency map of `target` (Simonyan et al. 2014), for one image
    or a batch (`target` then one class per image; the maps come from one batched pass).

    Pixels whose saliency is above the map's `foreground` quantile start as certain
    object, those below the `background` quantile as certain background, the rest as
    "probably background" (the map blurred by a Gaussian of `sigma` pixels first, None:
    not blurred); GrabCut fits a colour model (Gaussian mixtures) to each side and cuts
    the image with a graph cut, `iterations` times.
    """
    import cv2  # deferred: an optional heavy dependency that only this section needs

    foreground, background = _check_quantiles(foreground, background)
    iterations = checks.integer(iterations, "iterations", low=1)
    if sigma is not None:
        sigma = checks.number(sigma, "sigma", low=0, low_open=True)
    x = net.as_batch(image, what="segment_from_saliency")
    heat = saliency(net, x, target).map
    if sigma is not None:
        heat = gaussian_blur(heat[:, None], sigma)[:, 0]
    pixels = [np.ascontiguousarray(net.deprocess(x[i:i + 1])) for i in range(len(x))]
    seeds = np.full(tuple(heat.shape), cv2.GC_PR_BGD, dtype=np.uint8)
    masks = np.zeros(tuple(heat.shape), dtype=bool)
    for i, one in enumerate(heat.double()):
        low, high = torch.quantile(one.flatten(), torch.tensor([background, foreground], dtype=torch.float64))
        seeds[i][(one <= low).numpy()] = cv2.GC_BGD
        seeds[i][(one >= high).numpy()] = cv2.GC_FGD
        labels = seeds[i].copy()
        background_model, foreground_model = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)  # GrabCut's k-means starts from random centres: the same answer every run
        cv2.grabCut(pixels[i], labels, None, background_model, foreground_model, iterations,
                    cv2.GC_INIT_WITH_MASK)
        masks[i] = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    return Segmentation(mask=masks, saliency=heat, seeds=seeds, foreground=foreground, background=background,
                        iterations=iterations, sigma=sigma)


def thresholded_saliency(heat, keep: float = 0.25) -> np.ndarray:
    """The baseline without GrabCut: the `keep` share of the pixels with the highest saliency."""
    keep = checks.number(keep, "keep", low=0, high=1, low_open=True)
    heat = torch.as_tensor(heat).double()
    return (heat >= torch.quantile(heat.flatten(), 1 - keep)).numpy()


def centre_box(height: int, width: int, side: float = 0.5) -> np.ndarray:
    """The baseline that looks at nothing: a centred box `side` of the image's height and width."""
    side = checks.number(side, "side", low=0, high=1, low_open=True)
    mask = np.zeros((int(height), int(width)), dtype=bool)
    h, w = max(1, round(height * side)), max(1, round(width * side))
    top, left = (height - h) // 2, (width - w) // 2
    mask[top:top + h, left:left + w] = True
    return mask


def mask_iou(predicted, truth) -> float:
    """|predicted ∩ truth| / |predicted ∪ truth| of two H x W boolean masks (0 when both are empty)."""
    predicted, truth = np.asarray(predicted, dtype=bool), np.asarray(truth, dtype=bool)
    if predicted.shape != truth.shape:
        raise ValueError(f"the masks differ in shape: {predicted.shape} and {truth.shape}")
    union = np.logical_or(predicted, truth).sum()
    return float(np.logical_and(predicted, truth).sum() / union) if union else 0.0
