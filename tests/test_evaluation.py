"""Scores for attribution maps (lesson 13), tested where they can fail: on the shapes,
whose masks are ground truth, an oracle map (the mask itself) must win, a random map
must sit at chance (the object's area), and a map of the background must lose.

Also: the scores by hand on tiny maps, the curves' range and shape, argument checks,
and the cascading randomisation for any method (on a copy: the network is untouched).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnviz_widgets.engine.evaluation import scores as E
from cnnviz_widgets.engine.attribution.base import Attribution

from .helpers import assert_restored

N_IMAGES = 24  # the lesson's check cell measures the same on 50


@pytest.fixture(scope="module")
def shapes_set():
    from cnnviz_widgets.engine.zoo.data import load_dataset

    data = load_dataset("shapes", n=N_IMAGES, seed=77)
    images, labels, masks = data.arrays()
    x = torch.from_numpy(images.copy()).permute(0, 3, 1, 2).float() / 255
    backgrounds = torch.from_numpy(np.stack([data.background(i) for i in range(N_IMAGES)])).permute(0, 3, 1, 2)
    return x, labels.tolist(), masks, backgrounds.float() / 255


# --- by hand -----------------------------------------------------------------------------------

def test_pointing_game_by_hand():
    mask = np.zeros((5, 5), bool)
    mask[1:3, 1:3] = True
    heat = np.zeros((5, 5))
    heat[2, 2] = 1.0
    assert E.pointing_game(heat, mask) is True
    heat[4, 4] = 2.0
    assert E.pointing_game(heat, mask) is False
    assert E.pointing_game(heat, mask, tolerance=3) is True  # (4, 4) is within 3 px of (2, 2)
    assert E.pointing_game(np.ones((5, 5)), mask) is False  # a flat map points nowhere
    tie = np.zeros((5, 5))
    tie[1, 1] = tie[1, 2] = tie[0, 0] = 1.0  # two of three maxima on the object
    assert E.pointing_game(tie, mask) is True
    assert E.pointing_game(torch.from_numpy(heat)[None], torch.from_numpy(mask)) is False  # 1 x H x W, tensors


def test_mask_mass_by_hand():
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    heat = np.zeros((4, 4))
    heat[0, 0], heat[3, 3], heat[2, 2] = 3.0, 1.0, -5.0  # negative values are not mass
    assert E.mask_mass(heat, mask) == pytest.approx(0.75)
    assert E.mask_mass(-np.ones((4, 4)), mask) == 0.0
    assert E.mask_mass(Attribution(map=torch.from_numpy(heat)[None]), mask) == pytest.approx(0.75)


@pytest.mark.parametrize("call, words", [
    (lambda: E.pointing_game(np.zeros((4, 4)), np.zeros((4, 4), bool)), "mask is empty"),
    (lambda: E.mask_mass(np.zeros((4, 4)), np.ones((5, 5), bool)), "at the same size"),
    (lambda: E.mask_mass(np.zeros((2, 4, 4)), np.ones((4, 4), bool)), "one H x W map"),
    (lambda: E.mask_mass(np.full((4, 4), np.nan), np.ones((4, 4), bool)), "NaN"),
    (lambda: E.pointing_game(np.zeros((4, 4)), np.ones((4, 4), bool), tolerance=-1), "tolerance -1"),
])
def test_bad_maps_and_masks_name_the_problem(call, words):
    with pytest.raises((ValueError, TypeError), match=words):
        call()


def test_curves_lie_in_0_1_start_and_end_where_they_must(shapes_net, shapes_set):
    x, labels, masks, _ = shapes_set
    image, label = x[0], labels[0]
    with torch.no_grad():
        p_image = float(shapes_net(x[:1]).softmax(-1)[0, label])
    curve = E.deletion_curve(shapes_net, image, label, masks[0], steps=8, fill="grey")
    assert len(curve.fractions) == 9 and curve.fractions[0] == 0 and curve.fractions[-1] == 1
    assert curve.probabilities[0] == pytest.approx(p_image, rel=1e-4)
    with torch.no_grad():
        p_grey = float(shapes_net(torch.full_like(x[:1], 0.5)).softmax(-1)[0, label])
    assert curve.probabilities[-1] == pytest.approx(p_grey, rel=1e-4)  # everything deleted: all grey
    assert 0 <= curve.auc <= 1
    assert curve.auc == pytest.approx(np.trapezoid(curve.probabilities, curve.fractions))
    ins = E.insertion_curve(shapes_net, image, label, masks[0], steps=8)
    assert ins.probabilities[-1] == pytest.approx(p_image, rel=1e-4)  # everything inserted: the image
    assert E.insertion_auc(shapes_net, image, label, masks[0], steps=8) == pytest.approx(ins.auc)


def test_curves_take_a_layer_map_and_check_their_arguments(shapes_net, shapes_set):
    x, labels, masks, _ = shapes_set
    coarse = torch.rand(6, 6, generator=torch.Generator().manual_seed(0))
    assert 0 <= E.deletion_auc(shapes_net, x[0], labels[0], coarse, steps=4) <= 1  # upsampled to the image
    with pytest.raises(ValueError, match="fill must be one of"):
        E.deletion_auc(shapes_net, x[0], labels[0], masks[0], fill="white")
    with pytest.raises(ValueError, match="steps 1 is out of range"):
        E.insertion_auc(shapes_net, x[0], labels[0], masks[0], steps=1)
    with pytest.raises(ValueError, match="one RGB image"):
        E.deletion_auc(shapes_net, x[:2], labels[0], masks[0])
    with pytest.raises(ValueError, match="one class"):
        from cnnviz_widgets.engine.core.targets import Neuron

        E.deletion_auc(shapes_net, x[0], Neuron("conv5", 0), masks[0])
    with pytest.raises(ValueError, match="shaped like the image"):
        E.deletion_auc(shapes_net, x[0], labels[0], masks[0], fill=torch.zeros(3, 8, 8))


def test_auc_scores_of_many_maps_equal_one_map_at_a_time(shapes_net, shapes_set):
    """The batched scorer gives each map what deletion_auc / insertion_auc give it: a mask
    (large ties), a random map, a 6x6 layer map (upsampled), with a black and a blur fill."""
    x, labels, masks, _ = shapes_set
    coarse = torch.rand(6, 6, generator=torch.Generator().manual_seed(2)).double()
    maps = [masks[1].astype(float), E.random_map(64, seed=4), coarse]
    for fill in ("blur", "black"):
        table = E.auc_scores(shapes_net, x[1], labels[1], maps, steps=6, fill=fill, batch_size=5)
        assert table.kinds == ["deletion", "insertion"] and table.deletion.shape == (3,) and table.ended == "done"
        for k, m in enumerate(maps):
            one = E.deletion_auc(shapes_net, x[1], labels[1], m, steps=6, fill=fill)
            assert table.deletion[k] == pytest.approx(one, rel=1e-5)
            one = E.insertion_auc(shapes_net, x[1], labels[1], m, steps=6, fill=fill)
            assert table.insertion[k] == pytest.approx(one, rel=1e-5)
    only = E.auc_scores(shapes_net, x[1], labels[1], np.stack(maps[:2]), kinds=["insertion"], steps=6)
    assert only.deletion is None and only.insertion.shape == (2,)
    with pytest.raises(ValueError, match="kind must be one of"):
        E.auc_scores(shapes_net, x[1], labels[1], maps, kinds=["erasure"])


# --- scores that can fail -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reference_scores(shapes_net, shapes_set):
    """Oracle (the mask), random and background maps, scored on every image."""
    x, labels, masks, backgrounds = shapes_set
    maps = {"oracle": masks.astype(float), "random": np.stack([E.random_map(64, seed=i) for i in range(N_IMAGES)]),
            "background": 1.0 - masks}
    out = {}
    for name, m in maps.items():
        out[name] = {
            "pointing": np.mean([E.pointing_game(m[i], masks[i]) for i in range(N_IMAGES)]),
            "mass": np.mean([E.mask_mass(m[i], masks[i]) for i in range(N_IMAGES)]),
            "deletion": np.mean([E.deletion_auc(shapes_net, x[i], labels[i], m[i], steps=12) for i in range(N_IMAGES)]),
            "deletion_truth": np.mean([E.deletion_auc(shapes_net, x[i], labels[i], m[i], steps=12, fill=backgrounds[i])
                                       for i in range(N_IMAGES)]),
            "insertion": np.mean([E.insertion_auc(shapes_net, x[i], labels[i], m[i], steps=12)
                                  for i in range(N_IMAGES)]),
        }
    out["area"] = float(masks.mean())
    return out


def test_the_oracle_wins_the_pointing_game_and_random_sits_at_the_area(reference_scores):
    r, area = reference_scores, reference_scores["area"]
    assert r["oracle"]["pointing"] == 1.0 and r["oracle"]["mass"] == 1.0
    assert r["background"]["pointing"] == 0.0 and r["background"]["mass"] == 0.0
    assert abs(r["random"]["mass"] - area) < 0.02 * max(1.0, area / 0.25)  # uniform noise: mass = area share
    assert abs(r["random"]["pointing"] - area) < 0.25  # a hit is a coin flip with p = area: 24 flips


def test_the_oracle_has_the_lowest_deletion_and_the_background_map_loses(reference_scores):
    r = reference_scores
    for fill in ("deletion", "deletion_truth"):  # blurred fill (default) and the object-free background
        assert r["oracle"][fill] < r["random"][fill] - 0.05, (fill, r)
        assert r["random"][fill] < r["background"][fill] - 0.05, (fill, r)
    assert r["oracle"]["insertion"] > r["random"]["insertion"] > r["background"]["insertion"] + 0.05, r


def test_every_method_beats_a_random_map(shapes_net, shapes_set, reference_scores):
    from cnnviz_widgets.engine.evaluation.compare import METHODS

    x, labels, masks, _ = shapes_set
    settings = {"smoothgrad": {"samples": 6}, "integrated_gradients": {"steps": 12}, "occlusion": {"patch": 16, "stride": 8}}
    for name, method in METHODS.items():
        maps = method(shapes_net, x, labels, **settings.get(name, {})).map.numpy()
        pointing = np.mean([E.pointing_game(maps[i], masks[i]) for i in range(N_IMAGES)])
        mass = np.mean([E.mask_mass(maps[i], masks[i]) for i in range(N_IMAGES)])
        deletion = np.mean([E.deletion_auc(shapes_net, x[i], labels[i], maps[i], steps=12) for i in range(N_IMAGES)])
        assert pointing > 1.5 * reference_scores["area"], (name, pointing)  # chance: the object's area
        assert mass > 1.2 * reference_scores["area"], (name, mass)
        assert deletion < reference_scores["random"]["deletion"] - 0.05, (name, deletion)


def test_scores_of_one_map(shapes_net, shapes_set):
    x, labels, masks, _ = shapes_set
    s = E.score_map(shapes_net, x[0], labels[0], masks[0], mask=masks[0], steps=4)
    assert s.pointing is True and s.mask_mass == 1.0 and 0 <= s.deletion <= 1 and 0 <= s.insertion <= 1
    assert E.score_map(shapes_net, x[0], labels[0], masks[0], steps=4).as_dict().keys() == {"deletion", "insertion"}
    assert E.score_map(shapes_net, x[0], labels[0], masks[0], mask=masks[0], curves=False).deletion is None


# --- the sanity check for any method ------------------------------------------------------------

def test_rank_correlation():
    a = np.arange(16.0).reshape(4, 4)
    assert E.rank_correlation(a, a * 3 + 1) == pytest.approx(1.0)
    assert E.rank_correlation(a, -a) == pytest.approx(1.0)  # absolute values, as Adebayo et al.
    assert E.rank_correlation(a, np.ones((4, 4))) == 0.0
    assert E.rank_correlation(a, (15 - a)) == pytest.approx(-1.0)


def test_randomised_network_is_a_copy_with_the_top_layers_new(shapes_net, shapes_set):
    x = shapes_set[0][:2]
    before = {k: v.clone() for k, v in shapes_net.state_dict().items()}
    with assert_restored(shapes_net):
        probe = E.randomised_network(shapes_net, 2, seed=1)
    for k, v in shapes_net.state_dict().items():
        assert torch.equal(v, before[k])
    changed = {k for k, v in probe.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"model.classifier.6.weight", "model.classifier.6.bias",
                       "model.classifier.4.weight", "model.classifier.4.bias"}  # fc8 and fc7
    again = E.randomised_network(shapes_net, 2, seed=1)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in probe.state_dict().items())  # seeded
    with torch.no_grad():
        assert torch.equal(E.randomised_network(shapes_net, 0)(x), shapes_net(x))
    with pytest.raises(ValueError, match="top_layers 9 is out of range"):
        E.randomised_network(shapes_net, 9)


def test_cascading_randomisation_for_every_method(shapes_net, shapes_set):
    """Adebayo et al.: Grad-CAM's map falls apart once the top layers are random, guided
    backprop's hardly changes (measured on 12 shapes: rank correlation about +0.0 vs +0.96)."""
    x, labels, _, _ = shapes_set
    stages = ["fc8", "fc7", "fc6", "conv5"]
    final = {"grad_cam": [], "guided_backprop": [], "integrated_gradients": []}
    with assert_restored(shapes_net):
        for i in range(4):
            r = E.cascading_randomisation(shapes_net, x[i], labels[i], methods=list(final), layers_top_down=stages)
            assert r.stages == ["original"] + stages
            for m in final:
                assert r.correlations[m][0] == pytest.approx(1.0) and len(r.maps[m]) == 5
                final[m].append(r.correlations[m][-1])
    assert np.mean(final["guided_backprop"]) > 0.8
    assert np.mean(final["grad_cam"]) < 0.5
    assert np.mean(final["integrated_gradients"]) < np.mean(final["guided_backprop"]) - 0.3
    # A dict of any callables works too (here a method of one's own).
    r = E.cascading_randomisation(shapes_net, x[0], labels[0],
                                  methods={"mine": lambda net, image, t: torch.ones(1, 64, 64)}, layers_top_down=["fc8"])
    assert r.correlations["mine"] == [0.0, 0.0]  # a flat map correlates with nothing
    with pytest.raises(ValueError, match="method must be one of"):
        E.cascading_randomisation(shapes_net, x[0], labels[0], methods=["lime"])


def test_cascading_randomisation_can_stop(shapes_net, shapes_set):
    x, labels, _, _ = shapes_set
    answers = iter([False, True])
    steps = list(E.cascading_randomisation_iter(shapes_net, x[0], labels[0], methods=["saliency"],
                                                layers_top_down=["fc8", "fc7", "fc6"],
                                                should_stop=lambda: next(answers)))
    assert steps[-1].done and steps[-1].result.ended == "stopped"
    assert steps[-1].result.stages == ["original", "fc8"]
