"""Image optimisation, in Lucent's pieces (lessons 09-12).

=================  ==========================================================
`param`            what is optimised: `PixelParam`, `FourierParam`
`transforms`       random changes before each forward: `Jitter`, `RandomScale`, `RandomRotate`
`objectives`       what is minimised: `class_score`, `channel`, `maximise(target)`, ...
`regularizers`     loss terms and pixel operators: `L2`, `TotalVariation`, `AlphaNorm`,
                   `Blur`, `Clip`, `LinfBall`, `ClipNorm`, `ClipContribution`
`loop`             `optimize_iter` / `optimize`: the one loop, yielding `Progress`
=================  ==========================================================

Gradient ascent (`engine.ascent`), fooling (`engine.adversarial`), DeepDream
(`engine.deepdream`) and inversion (`engine.inversion`) are each one call of the loop
with a different start image, objective and constraint.
"""

from . import objectives
from .loop import OPTIMIZERS, SCHEDULES, Diverged, OptimizeResult, optimize, optimize_iter
from .param import PARAMETRISATIONS, FourierParam, PixelParam, make_param
from .regularizers import (AlphaNorm, Blur, Clip, ClipContribution, ClipNorm, L2, LinfBall, Regularizer,
                           TotalVariation)
from .transforms import Jitter, RandomRotate, RandomScale

__all__ = [
    "objectives", "OPTIMIZERS", "SCHEDULES", "Diverged", "OptimizeResult", "optimize", "optimize_iter",
    "PARAMETRISATIONS", "FourierParam", "PixelParam", "make_param",
    "Regularizer", "L2", "TotalVariation", "AlphaNorm", "Blur", "Clip", "LinfBall", "ClipNorm", "ClipContribution",
    "Jitter", "RandomScale", "RandomRotate",
]
