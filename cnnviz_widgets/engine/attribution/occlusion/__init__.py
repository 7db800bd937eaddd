"""Occlusion sensitivity (Zeiler & Fergus 2014): slide a patch over the image and watch
the class probability. Lesson ``06_occlusion``.

    omap = occlusion(net, image, target, patch=32, stride=16, fill="grey")
    for progress in occlusion_iter(net, image, target, should_stop=...): ...
    pixels = occlusion_to_pixels(omap)                  # Captum's per-pixel form
    attribution = occlusion_attribution(net, image, target)   # lesson 13's form

Modules: `maps` (the verb and its result), `plan` (patch positions; `OcclusionPlan`, a
reusable set-up), `fills` (what the patch shows), `incremental` (exact incremental
inference, Krypton), `networks` (which networks it runs, as `ops`).
"""

from .fills import FILLS, fill_image, occluded_batch, occluded_image
from .incremental import occluded_logits, supports_incremental
from .maps import (OcclusionMap, occlusion, occlusion_attribution, occlusion_error, occlusion_iter, occlusion_target,
                   occlusion_to_pixels)
from .plan import OcclusionPlan, check_settings, positions

__all__ = [
    "OcclusionMap",
    "OcclusionPlan",
    "occlusion",
    "occlusion_iter",
    "occlusion_target",
    "occlusion_to_pixels",
    "occlusion_attribution",
    "occlusion_error",
    "occluded_logits",
    "occluded_image",
    "occluded_batch",
    "supports_incremental",
    "fill_image",
    "positions",
    "check_settings",
    "FILLS",
]
