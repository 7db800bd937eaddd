"""Every attribution method by name, with one call shape (lesson 13 compares them).

``METHODS[name](net, image, target, **settings) -> Attribution`` whose ``map`` is N x H x W
at image size with larger = more for the class:

=====================  =================================================================
saliency               max over colour channels of |d logit / d pixel| (lesson 07)
smoothgrad             saliency averaged over noisy copies (`base.smoothgrad`)
guided_backprop        the guided backprop gradient of the class, |.| max over channels (08)
grad_cam               ReLU of the channel-weighted last spatial layer, upsampled (`gradcam`)
guided_grad_cam        guided backprop x Grad-CAM (`gradcam`)
integrated_gradients   gradients summed along the path from a black image, summed over
                       colour channels (signed; `integrated_gradients`)
occlusion              the logit's drop when a grey patch hides the pixel, averaged over
                       the patches that cover it (lesson 06, Captum's per-pixel form)
=====================  =================================================================

Lesson 13's comparison (`evaluation.compare`) and its sanity check
(`evaluation.scores.cascading_randomisation`) both read this table.
"""

from __future__ import annotations

from typing import Any, Callable

from ..core.network import Network
from ..core.targets import ClassLogit, Target, as_target
from .base import Attribution, smoothgrad
from .gradcam import grad_cam, guided_grad_cam
from .guided import guided_backprop
from .integrated_gradients import integrated_gradients
from .occlusion import occlusion_attribution
from .saliency import saliency

__all__ = ["METHODS", "LABELS", "class_list", "occlusion_logit", "saliency_attribution", "smoothgrad_attribution",
           "guided_backprop_attribution"]


def class_list(net: Network, target: Any, n: int) -> list[int]:
    """The class of a class target for each of n images (a class index or name, a list of
    them, a `ClassLogit` / `ClassProbability`)."""
    checked = as_target(net, target, n)
    classes = getattr(checked, "classes", None)
    if classes is None:
        raise ValueError("this method explains a class: give a class index or name")
    return classes * n if len(classes) == 1 else list(classes)


def saliency_attribution(net: Network, image, target: Any) -> Attribution:
    """Saliency (lesson 07), named "saliency"."""
    return saliency(net, image, target)


def smoothgrad_attribution(net: Network, image, target: Any, *, samples: int = 25, noise: float = 0.15,
                           seed: int = 0) -> Attribution:
    """SmoothGrad over saliency (`attribution.smoothgrad`), named "smoothgrad"."""
    result = smoothgrad(saliency, net, image, target, samples=samples, noise=noise, seed=seed)
    result.method = "smoothgrad"
    return result


def guided_backprop_attribution(net: Network, image, target: Any) -> Attribution:
    """Guided backprop of the target (lesson 08): map |gradient| max over colour channels."""
    result = guided_backprop(net, image, target, rule="guided")
    result.method = "guided_backprop"
    return result


def occlusion_logit(net: Network, image, target: Any, *, patch: int | None = None,
                    stride: int | None = None) -> Attribution:
    """Occlusion (lesson 06) as a per-pixel map: the class *logit*'s drop when a grey patch
    hides the pixel, averaged over the patch positions that cover it
    (`occlusion.occlusion_attribution`; the logit, as the gradient methods explain it,
    rather than the probability, which a confident network barely moves). A `Target`
    (e.g. ``ClassProbability(c)``) is used as it is."""
    x = net.as_batch(image, what="occlusion")
    if not isinstance(target, Target):
        target = ClassLogit(tuple(class_list(net, target, x.shape[0])))
    return occlusion_attribution(net, x, target, patch=patch, stride=stride)


METHODS: dict[str, Callable[..., Attribution]] = {
    "saliency": saliency_attribution,
    "smoothgrad": smoothgrad_attribution,
    "guided_backprop": guided_backprop_attribution,
    "grad_cam": grad_cam,
    "guided_grad_cam": guided_grad_cam,
    "integrated_gradients": integrated_gradients,
    "occlusion": occlusion_logit,
}

LABELS = {
    "saliency": "saliency",
    "smoothgrad": "SmoothGrad",
    "guided_backprop": "guided backprop",
    "grad_cam": "Grad-CAM",
    "guided_grad_cam": "Guided Grad-CAM",
    "integrated_gradients": "Integrated Gradients",
    "occlusion": "occlusion",
}
