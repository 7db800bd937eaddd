"""The shared optimisation loop (engine/optimize/: param, transforms, objectives, regularizers, loop)."""

from __future__ import annotations

import math

import pytest
import torch

from cnnviz_widgets.engine.optimize import (AlphaNorm, Blur, Clip, Diverged, FourierParam, Jitter, L2, LinfBall,
                                            PixelParam, RandomRotate, RandomScale, TotalVariation, optimize_iter)
from cnnviz_widgets.engine.core.progress import run_to_end
from cnnviz_widgets.engine.optimize import objectives as O
from tests.helpers import assert_restored, close_to_scale

S = 64  # small images keep each step a few milliseconds


def grey(seed=0, size=S):
    g = torch.Generator().manual_seed(seed)
    return (0.5 + 0.05 * torch.randn(1, 3, size, size, generator=g)).clamp(0, 1)


def run(net, objective=None, param=None, **kw):
    """The loop run to the end (`optimize_iter`, so that `should_stop` can be given too)."""
    kw.setdefault("steps", 4)
    kw.setdefault("step_size", 0.05)
    return run_to_end(optimize_iter(net, objective or O.class_score(1), param or PixelParam(grey()), **kw))


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
    assert last.ended == "done" and last.steps_taken == 8


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
    assert last.ended == "stopped" and last.steps_taken == 2
    assert no_param_grads(effnet)

    def boom(outputs):
        raise ValueError("objective exploded on purpose")
    with assert_restored(effnet), pytest.raises(ValueError, match="on purpose"):
        run(effnet, O.Objective.term("boom", boom, ("stage2",)))
    with assert_restored(effnet), pytest.raises(ValueError, match="channel 999 is out of range: stage3 has channels 0..39"):
        run(effnet, O.channel("stage3", 999))
    assert no_param_grads(effnet)


def test_model_untouched_while_the_generator_is_paused(effnet):
    # A caller may abandon the generator between two yields: nothing may be left on.
    effnet.train()
    try:
        with assert_restored(effnet):
            it = optimize_iter(effnet, O.class_score(3), PixelParam(grey()), steps=6, step_size=0.05, every=2)
            first = next(it)
        assert first.step == 2 and first.result.steps_taken == 2 and not first.done
        with assert_restored(effnet):
            it.close()
    finally:
        effnet.eval()


def test_yields_every_n_steps_and_at_the_end(effnet):
    progress = list(optimize_iter(effnet, O.class_score(0), PixelParam(grey()), steps=7, step_size=0.05, every=3))
    assert [p.step for p in progress] == [3, 6, 7] and [p.done for p in progress] == [False, False, True]
    assert all(p.total == 7 for p in progress)
    zero = list(optimize_iter(effnet, O.class_score(0), PixelParam(grey()), steps=0, step_size=0.05))
    assert len(zero) == 1 and zero[0].done and zero[0].result.ended == "done"


def test_until_ends_the_run_with_the_image_that_met_it(effnet):
    seen = []

    def until(outputs):
        seen.append(outputs["logits"])
        return len(seen) == 3
    last = run(effnet, steps=10, until=until)
    assert last.ended == "reached" and last.steps_taken == 2
    with torch.no_grad():
        close_to_scale(effnet(last.image), seen[-1], 1e-5)


@pytest.mark.parametrize("kw, match", [
    (dict(steps=-1), "steps -1 is out of range"),
    (dict(step_size=0), "step_size 0 is out of range"),
    (dict(step_size=-0.1), "step_size -0.1 is out of range"),
    (dict(optimizer="lbfgs"), "optimizer must be one of"),
    (dict(every=0), "every 0 is out of range"),
])
def test_bad_settings_raise_at_the_call(effnet, kw, match):
    # Checked when the run is made, before the first step (an app checks in its own thread).
    settings = {"steps": 4, "step_size": 0.05, **kw}
    with assert_restored(effnet), pytest.raises(ValueError, match=match):
        optimize_iter(effnet, O.class_score(1), PixelParam(grey()), **settings)


def test_unknown_layer_and_bad_regularisers(effnet):
    with assert_restored(effnet), pytest.raises(ValueError, match="no layer 'stage99'"):
        run(effnet, O.channel("stage99", 0))
    with pytest.raises(ValueError, match="TV weight"):
        TotalVariation(-1)
    with pytest.raises(ValueError, match="PixelParam"):
        run(effnet, param=FourierParam(S), regularizers=[Blur(1, 1.0)])
    with pytest.raises(ValueError, match=r"Nx3xHxW \(or 3xHxW\), not \(2, 4, 8, 8\)"):
        PixelParam(torch.zeros(2, 4, 8, 8))
    with pytest.raises(ValueError, match=r"pixels in \[0, 1\]"):
        PixelParam(torch.full((1, 3, 8, 8), 2.0))


def test_nan_loss_stops_with_a_clear_error(effnet):
    nan = O.Objective.term("nan", lambda out: out["stage2"].mean() * float("nan"), ("stage2",))
    with assert_restored(effnet), pytest.raises(Diverged, match="diverged at step 1"):
        run(effnet, nan)


def test_exploding_image_stops_with_a_clear_error(effnet):
    # Sigmoid pixels are never clipped: a huge SGD step throws them far away.
    with assert_restored(effnet), pytest.raises(Diverged, match="exploded"):
        run(effnet, O.class_score(5) * 1e6, PixelParam(grey(), mode="sigmoid"), optimizer="sgd", step_size=1e3)


def test_sign_step_with_linf_ball_stays_in_budget(effnet):
    x0 = grey(1)
    eps = 3 / 255
    last = run(effnet, O.target_cross_entropy(7), PixelParam(x0), optimizer="sign", step_size=1 / 255,
               steps=6, regularizers=[LinfBall(x0, eps)])
    d = (last.image - x0).abs().max()
    assert eps - 1e-6 <= float(d) <= eps + 1e-6  # 6 steps of 1/255 reach the 3/255 wall


def test_normalized_step_moves_every_pixel_by_lr_on_average(effnet):
    x0 = grey(2)
    p = PixelParam(x0)
    run(effnet, O.activation_norm("stage2"), p, optimizer="normalized", step_size=0.01, steps=1, regularizers=[Clip()])
    moved = (p.image().detach() - x0).abs().mean()
    assert math.isclose(float(moved), 0.01, rel_tol=0.2)


def test_objectives_compose_with_weights(effnet):
    obj = 2 * O.class_score(1) - 0.5 * O.channel("stage3", 0)
    assert obj.layers == ["logits", "stage3"]
    out = {"logits": torch.arange(5.0)[None], "stage3": torch.ones(1, 4, 2, 2) * 3}
    total, parts = obj(out)
    assert float(parts["class 1"]) == -2.0 and float(parts["stage3:0"]) == 1.5
    assert float(total) == -0.5
