"""Wrong answers to lesson 15's exercise (`unit_iou`), written as a learner would, each
with the diagnosis `check` must name (registered into tests/exercise_mistakes.py's WRONG)."""

from __future__ import annotations

import torch

from tests.exercise_mistakes import wrong


def _on(maps, quantile):
    return maps > torch.quantile(maps.flatten().double(), 1 - quantile).to(maps.dtype)


@wrong("unit_iou", "per_image_threshold")
def iou_threshold_per_image(maps, masks, quantile):
    on = torch.stack([m > torch.quantile(m.flatten(), 1 - quantile) for m in maps])
    return ((on & masks).sum() / (on | masks).sum()).item()


@wrong("unit_iou", "mean_of_images")
def iou_mean_of_images(maps, masks, quantile):
    on = _on(maps, quantile)
    per = [(o & m).sum() / (o | m).sum().clamp(min=1) for o, m in zip(on, masks)]
    return torch.stack(per).float().mean()


@wrong("unit_iou", "bottom_quantile")
def iou_bottom(maps, masks, quantile):
    on = maps > torch.quantile(maps.flatten(), quantile)
    return ((on & masks).sum() / (on | masks).sum()).item()


@wrong("unit_iou", "over_mask")
def iou_recall(maps, masks, quantile):
    on = _on(maps, quantile)
    return ((on & masks).sum() / masks.sum()).item()


@wrong("unit_iou", "over_on")
def iou_precision(maps, masks, quantile):
    on = _on(maps, quantile)
    return ((on & masks).sum() / on.sum()).item()


@wrong("unit_iou", "sum_not_union")
def iou_sum(maps, masks, quantile):
    on = _on(maps, quantile)
    return ((on & masks).sum() / (on.sum() + masks.sum())).item()


def iou_with_ge_and_quantile(maps, masks, quantile):
    """Right, another way: torch.quantile's interpolated threshold and >=."""
    on = maps >= torch.quantile(maps.flatten(), 1 - quantile)
    return ((on & masks).sum() / (on | masks).sum()).item()
