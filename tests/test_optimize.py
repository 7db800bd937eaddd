"""The shared optimisation loop (engine/optimize.py, engine/objectives.py)."""

from __future__ import annotations

import math

import pytest
import torch

from cnnviz_widgets.engine import objectives as O
from cnnviz_widgets.engine.optimize import (AlphaNorm, Blur, Clip, Diverged, FourierParam, Jitter, L2, LinfBall,
                                            PixelParam, RandomRotate, RandomScale, TotalVariation, optimize,
                                            optimize_iter)
from tests.helpers import assert_restored

S = 64  # small images keep each step a few milliseconds


def grey(seed=0, size=S):
    g = torch.Generator().manual_seed(seed)
    return (0.5 + 0.05 * torch.randn(1, 3, size, size, generator=g)).clamp(0, 1)


def run(net, objective=None, param=None, **kw):
    kw.setdefault("steps", 4)
    kw.setdefault("lr", 0.05)
    return optimize(net, objective or O.class_score(1), param or PixelParam(grey()), **kw)


def no_param_grads(net):
    return all(p.grad is None for p in net.parameters())


def test_class_score_rises_and_image_stays_valid(effnet):
    param = PixelParam(grey())
    with torch.no_grad():
        before = float(effnet(param.image())[0, 1])
    last = run(effnet, param=param, steps=8, transforms=[Jitter(2)], regularizers=[L2(0.1), Blur(2, 0.5)])
    with torch.no_grad():
        after = float(effnet(last.image)[0, 1])
    assert after > before + 1.0
    assert last.image.shape == (1, 3, S, S)
    assert 0 <= float(last.image.min()) and float(last.image.max()) <= 1
    assert not last.image.requires_grad
    assert set(last.losses) == {"class 1", "L2", "total"}
    assert last.ended == "done" and last.step == last.total == 8


@pytest.mark.parametrize("make", [lambda: PixelParam(grey()), lambda: FourierParam(S, seed=3)])
def test_same_seed_same_image_different_seed_different(effnet, make):
    kw = dict(steps=4, transforms=[Jitter(3), RandomScale((0.9, 1.1)), RandomRotate(10)])
    a = run(effnet, param=make(), seed=7, **kw).image
    b = run(effnet, param=make(), seed=7, **kw).image
    c = run(effnet, param=make(), seed=8, **kw).image
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_fourier_param_is_seeded_and_in_range():
    a, b, c = FourierParam(S, seed=1), FourierParam(S, seed=1), FourierParam(S, seed=2)
    assert torch.equal(a.image(), b.image()) and not torch.equal(a.image(), c.image())
    img = FourierParam((48, 40), decorrelate=False).image()
    img = img.detach()
    assert img.shape == (1, 3, 48, 40) and 0 < float(img.min()) and float(img.max()) < 1


def test_global_rng_untouched(effnet):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run(effnet, transforms=[Jitter(4), RandomScale(), RandomRotate(5)])
    assert torch.equal(torch.rand(3), expected)


def test_model_restored_after_run_stop_and_error(effnet):
    with assert_restored(effnet):
        run(effnet, O.channel("stage3", 2), regularizers=[TotalVariation(0.1), AlphaNorm(0.1)])
    assert no_param_grads(effnet)
    with assert_restored(effnet):
        calls = iter(range(100))
        last = run(effnet, steps=20, should_stop=lambda: next(calls) >= 2)
    assert last.ended == "stopped" and last.step == 2
    assert no_param_grads(effnet)

    def boom(outputs):
        raise ValueError("objective exploded on purpose")
    with assert_restored(effnet), pytest.raises(ValueError, match="on purpose"):
        run(effnet, O.Objective.term("boom", boom, ("stage2",)))
    with assert_restored(effnet), pytest.raises(ValueError, match="channel 999 is out of range.*40 channels"):
        run(effnet, O.channel("stage3", 999))
    assert no_param_grads(effnet)


def test_model_untouched_while_the_generator_is_paused(effnet):
    # A caller may abandon the generator between two yields: nothing may be left on.
    effnet.train()
    try:
        with assert_restored(effnet):
            it = optimize_iter(effnet, O.class_score(3), PixelParam(grey()), steps=6, lr=0.05, every=2)
            first = next(it)
        assert first.step == 2
        with assert_restored(effnet):
            it.close()
    finally:
        effnet.eval()


def test_yields_every_n_steps_and_at_the_end(effnet):
    steps = [p.step for p in optimize_iter(effnet, O.class_score(0), PixelParam(grey()), steps=7, lr=0.05, every=3)]
    assert steps == [3, 6, 7]
    zero = list(optimize_iter(effnet, O.class_score(0), PixelParam(grey()), steps=0, lr=0.05))
    assert len(zero) == 1 and zero[0].ended == "done"


def test_until_ends_the_run_with_the_image_that_met_it(effnet):
    seen = []

    def until(outputs):
        seen.append(outputs["logits"])
        return len(seen) == 3
    last = run(effnet, steps=10, until=until)
    assert last.ended == "reached" and last.step == 2
    with torch.no_grad():
        assert torch.allclose(effnet(last.image), seen[-1], atol=1e-4)


@pytest.mark.parametrize("kw, match", [
    (dict(steps=-1), "steps"),
    (dict(lr=0), "learning rate"),
    (dict(lr=-0.1), "learning rate"),
    (dict(optimizer="lbfgs"), "optimizer"),
    (dict(every=0), "every"),
])
def test_bad_settings(effnet, kw, match):
    with assert_restored(effnet), pytest.raises(ValueError, match=match):
        run(effnet, **kw)


def test_unknown_layer_and_bad_regularisers(effnet):
    with assert_restored(effnet), pytest.raises(ValueError, match="no layer 'stage99'"):
        run(effnet, O.channel("stage99", 0))
    with pytest.raises(ValueError, match="TV weight"):
        TotalVariation(-1)
    with pytest.raises(ValueError, match="PixelParam"):
        run(effnet, param=FourierParam(S), regularizers=[Blur(1, 1.0)])
    with pytest.raises(ValueError, match="1x3xHxW"):
        PixelParam(torch.zeros(2, 3, 8, 8))


def test_nan_loss_stops_with_a_clear_error(effnet):
    nan = O.Objective.term("nan", lambda out: out["stage2"].mean() * float("nan"), ("stage2",))
    with assert_restored(effnet), pytest.raises(Diverged, match="diverged at step 1"):
        run(effnet, nan)


def test_exploding_image_stops_with_a_clear_error(effnet):
    # Sigmoid pixels are never clipped: a huge SGD step throws them far away.
    with assert_restored(effnet), pytest.raises(Diverged, match="exploded"):
        run(effnet, O.class_score(5) * 1e6, PixelParam(grey(), mode="sigmoid"), optimizer="sgd", lr=1e3)


def test_sign_step_with_linf_ball_stays_in_budget(effnet):
    x0 = grey(1)
    eps = 3 / 255
    last = run(effnet, O.target_cross_entropy(7), PixelParam(x0), optimizer="sign", lr=1 / 255,
               steps=6, regularizers=[LinfBall(x0, eps)])
    d = (last.image - x0).abs().max()
    assert eps - 1e-6 <= float(d) <= eps + 1e-6  # 6 steps of 1/255 reach the 3/255 wall


def test_normalized_step_moves_every_pixel_by_lr_on_average(effnet):
    x0 = grey(2)
    p = PixelParam(x0)
    run(effnet, O.activation_norm("stage2"), p, optimizer="normalized", lr=0.01, steps=1, regularizers=[Clip()])
    moved = (p.image().detach() - x0).abs().mean()
    assert math.isclose(float(moved), 0.01, rel_tol=0.2)


def test_objectives_compose_with_weights(effnet):
    obj = 2 * O.class_score(1) - 0.5 * O.channel("stage3", 0)
    assert obj.layers == ["logits", "stage3"]
    out = {"logits": torch.arange(5.0)[None], "stage3": torch.ones(1, 4, 2, 2) * 3}
    total, parts = obj(out)
    assert float(parts["class 1"]) == -2.0 and float(parts["stage3:0"]) == 1.5
    assert float(total) == -0.5
