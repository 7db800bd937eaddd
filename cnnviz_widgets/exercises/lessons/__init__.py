"""One module per lesson's exercise checker, and the registry of them in lesson order.

| module | lesson | checker |
|---|---|---|
| `filter_tiles` | 01 | `FilterTilesChecker` |
| `nearest_neighbors` | 02 | `NearestNeighborsChecker` |
| `pca_2d` | 03 | `Pca2dChecker` |
| `top_channels` | 04 | `TopChannelsChecker` |
| `receptive_field` | 05 | `ReceptiveFieldChecker` |
| `occlusion_map` | 06 | `OcclusionMapChecker` |
| `saliency` | 07 | `SaliencyChecker` |
| `guided_relu_backward` | 08 | `GuidedReluBackwardChecker` |
| `ascent_step` | 09 | `AscentStepChecker` |
| `pgd_step` | 10 | `PgdStepChecker` |
| `guided_dream_step` | 11 | `GuidedDreamStepChecker` |
| `total_variation` | 12 | `TotalVariationChecker` |
| `deletion_curve` | 13 | `DeletionCurveChecker` |
| `gram_matrix` | 14 | `GramMatrixChecker` |
| `style_loss` | 14 | `StyleLossChecker` |
| `unit_iou` | 15 | `UnitIouChecker` |
"""

from __future__ import annotations

from ..checker import Checker
from .filter_tiles import FilterTilesChecker
from .nearest_neighbors import NearestNeighborsChecker
from .pca_2d import Pca2dChecker
from .top_channels import TopChannelsChecker
from .receptive_field import ReceptiveFieldChecker
from .occlusion_map import OcclusionMapChecker
from .saliency import SaliencyChecker
from .guided_relu_backward import GuidedReluBackwardChecker
from .ascent_step import AscentStepChecker
from .pgd_step import PgdStepChecker
from .guided_dream_step import GuidedDreamStepChecker
from .total_variation import TotalVariationChecker
from .deletion_curve import DeletionCurveChecker
from .gram_matrix import GramMatrixChecker
from .style_loss import StyleLossChecker
from .unit_iou import UnitIouChecker

__all__ = ["CHECKERS", "checker"]

CHECKERS: dict[str, type[Checker]] = {c.name: c for c in (
    FilterTilesChecker,
    NearestNeighborsChecker,
    Pca2dChecker,
    TopChannelsChecker,
    ReceptiveFieldChecker,
    OcclusionMapChecker,
    SaliencyChecker,
    GuidedReluBackwardChecker,
    AscentStepChecker,
    PgdStepChecker,
    GuidedDreamStepChecker,
    TotalVariationChecker,
    DeletionCurveChecker,
    GramMatrixChecker,
    StyleLossChecker,
    UnitIouChecker,
)}

_INSTANCES: dict[str, Checker] = {}


def checker(name: str) -> Checker:
    """The (cached) checker of exercise `name`: its cases are built once per session."""
    if name not in _INSTANCES:
        _INSTANCES[name] = CHECKERS[name]()
    return _INSTANCES[name]
