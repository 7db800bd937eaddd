"""Segmentation from saliency (lesson 13's section; Simonyan et al. 2014): GrabCut seeded
by the saliency map, scored on the shapes' masks against two baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("cv2")

from cnnviz_widgets.engine.attribution import segmentation as S  # noqa: E402
from cnnviz_widgets.engine.zoo.data import load_dataset  # noqa: E402
from cnnviz_widgets.engine.zoo.models import load_model  # noqa: E402
from tests.helpers import assert_restored  # noqa: E402


def test_grabcut_from_saliency_beats_both_baselines_on_held_out_shapes():
    net = load_model("shapes")
    data = load_dataset("shapes", n=20, seed=99)  # not the 50 (seed 13) sigma was looked at on
    scores = {"grabcut": [], "thresholded": [], "centre box": []}
    images, labels, masks = data.arrays()
    x = torch.from_numpy(images.copy()).permute(0, 3, 1, 2).float() / 255
    with assert_restored(net):
        found = S.segment_from_saliency(net, x, labels.tolist())
    one = S.segment_from_saliency(net, data[7].image, data[7].label)  # one image, through the PIL path
    assert np.array_equal(one.mask[0], found.mask[7])
    for i, mask in enumerate(masks):
        scores["grabcut"].append(S.mask_iou(found.mask[i], mask))
        scores["thresholded"].append(S.mask_iou(S.thresholded_saliency(found.saliency[i]), mask))
        scores["centre box"].append(S.mask_iou(S.centre_box(64, 64), mask))
    mean = {k: float(np.mean(v)) for k, v in scores.items()}
    # Measured on these 20: grabcut 0.674, thresholded 0.368, centre box 0.498.
    assert mean["grabcut"] > 1.2 * mean["centre box"] and mean["grabcut"] > 1.5 * mean["thresholded"], mean


def test_seeds_follow_the_quantiles_and_the_result_is_repeatable():
    net = load_model("shapes")
    item = load_dataset("shapes", n=3, seed=5)[2]
    first = S.segment_from_saliency(net, item.image, item.label, foreground=0.9, background=0.5)
    again = S.segment_from_saliency(net, item.image, item.label, foreground=0.9, background=0.5)
    assert np.array_equal(first.mask, again.mask)
    assert first.mask.shape == (1, 64, 64)
    assert abs((first.seeds == 1).mean() - 0.1) < 0.01 and abs((first.seeds == 0).mean() - 0.5) < 0.01
    assert first.mask[first.seeds == 1].all() and not first.mask[first.seeds == 0].any()  # certain stays certain


def test_baselines_and_iou_on_hand_made_masks():
    box = S.centre_box(8, 12, side=0.5)
    assert box.sum() == 4 * 6 and box[2:6, 3:9].all()
    a = np.zeros((4, 4), bool)
    a[:2] = True
    b = np.zeros((4, 4), bool)
    b[1:3] = True
    assert S.mask_iou(a, b) == pytest.approx(4 / 12) and S.mask_iou(a, a) == 1.0
    assert S.mask_iou(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == 0.0
    heat = np.arange(16, dtype=float).reshape(4, 4)
    assert S.thresholded_saliency(heat, keep=0.25).sum() == 4


def test_bad_settings_are_refused():
    net = load_model("shapes")
    item = load_dataset("shapes", n=1, seed=5)[0]
    with pytest.raises(ValueError, match="below foreground"):
        S.segment_from_saliency(net, item.image, 0, foreground=0.3, background=0.5)
    with pytest.raises(ValueError, match="sigma"):
        S.segment_from_saliency(net, item.image, 0, sigma=0)
    with pytest.raises(ValueError, match="shape"):
        S.mask_iou(np.zeros((2, 2)), np.zeros((3, 3)))
