"""Image optimisation, in Lucent's pieces (lessons 09-12, 14).

=================  ==========================================================
`param`            what is optimised: `PixelParam`, `FourierParam` (batches; colours
                   optionally decorrelated: `decorrelated_to_rgb`)
`transforms`       random changes before each forward: `Pad`, `Jitter`, `RandomScale`,
                   `RandomRotate`, `RandomCrop`; Lucid's stack `standard_transforms()`
`objectives`       what is minimised: `class_score`, `channel`, `maximise(target)`,
                   `diversity(layer)`, ...
`regularizers`     loss terms and pixel operators: `L2`, `TotalVariation`, `AlphaNorm`,
                   `Blur`, `Clip`, `LinfBall`, `ClipNorm`, `ClipContribution`
`loop`             `optimize_iter` / `optimize`: the one loop, yielding `Progress`
=================  ==========================================================

The recipes on the loop, each one call of it with a different start image, objective and
constraint:

=================  ==========================================================
`ascent`           09: a picture for a class or a unit (`visualize_class`, `visualize_channel`)
`adversarial`      10: fooling images, FGSM, PGD
`deepdream`        11: DeepDream (octaves, jitter)
`inversion`        12: an image from a layer's features
`style`            14: texture synthesis and style transfer (Gram matrices)
`judge`            09, 10: an independent network's verdict on a picture
`frequency`        09: how much of a picture's energy is fine detail
=================  ==========================================================

`optimize` imports `core` and `zoo`; its recipes import its pieces.
"""

from . import objectives
from .loop import OPTIMIZERS, SCHEDULES, Diverged, OptimizeResult, optimize, optimize_iter
from .param import (COLOR_CORRELATION_SQRT, PARAMETRISATIONS, FourierParam, PixelParam, decorrelated_to_rgb, make_param,
                    rgb_to_decorrelated)
from .regularizers import L2, AlphaNorm, Blur, Clip, ClipContribution, ClipNorm, LinfBall, Regularizer, TotalVariation
from .transforms import Jitter, Pad, RandomCrop, RandomRotate, RandomScale, standard_transforms

__all__ = [
    "objectives", "OPTIMIZERS", "SCHEDULES", "Diverged", "OptimizeResult", "optimize", "optimize_iter",
    "PARAMETRISATIONS", "FourierParam", "PixelParam", "make_param",
    "COLOR_CORRELATION_SQRT", "decorrelated_to_rgb", "rgb_to_decorrelated",
    "Regularizer", "L2", "TotalVariation", "AlphaNorm", "Blur", "Clip", "LinfBall", "ClipNorm", "ClipContribution",
    "Pad", "Jitter", "RandomScale", "RandomRotate", "RandomCrop", "standard_transforms",
]
