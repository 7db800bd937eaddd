"""Grad-CAM, Guided Grad-CAM and Integrated Gradients (lesson 13): agreement with the
peers (pytorch-grad-cam, Captum), completeness, SmoothGrad over them, argument checks
and the model left as it was.

Peers get the input in the layout the kit runs (`Network.fast_layout`, channels-last
on a CPU), as in test_captum_agreement: on random weights, float32 rounding flips a
few near-zero ReLUs between layouts, a property of gradients at kinks.
Tolerance: 1e-5 of the map's largest value.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnviz_widgets.engine.attribution import gradcam as G
from cnnviz_widgets.engine.attribution.base import Attribution, smoothed
from cnnviz_widgets.engine.attribution.integrated_gradients import (baseline_image, integrated_gradients,
                                                        integrated_gradients_iter, path_points)
from cnnviz_widgets.engine.core.progress import run_to_end
from cnnviz_widgets.engine.core.targets import ClassLogit, Neuron

from .helpers import assert_restored

RTOL = 1e-5


def close(ours, theirs, rtol=RTOL):
    ours = torch.as_tensor(np.asarray(ours) if not isinstance(ours, torch.Tensor) else ours).double()
    theirs = torch.as_tensor(np.asarray(theirs) if not isinstance(theirs, torch.Tensor) else theirs).double()
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    scale = float(theirs.abs().max())
    assert scale > 0, "a map of zeros compares nothing"
    err = float((ours - theirs).abs().max())
    assert err <= rtol * scale, f"largest difference {err:.3g} vs map max {scale:.3g}"


def minmax(m: torch.Tensor) -> torch.Tensor:
    """pytorch-grad-cam's normalisation of each map to [0, 1]."""
    m = m - m.amin(dim=(-2, -1), keepdim=True)
    return m / m.amax(dim=(-2, -1), keepdim=True)


@pytest.fixture(scope="module")
def shapes_batch(shapes_net):
    from cnnviz_widgets.engine.zoo.data import load_dataset

    images, labels, masks = load_dataset("shapes", n=6, seed=21).arrays()
    x = torch.from_numpy(images.copy()).permute(0, 3, 1, 2).float() / 255
    return x, labels.tolist(), masks


@pytest.fixture(scope="module")
def alexnet_image(random_alexnet):
    g = torch.Generator().manual_seed(3)
    return torch.rand(2, 3, 224, 224, generator=g)


# --- Grad-CAM ------------------------------------------------------------------------------

def test_default_layer_is_the_last_spatial_one(shapes_net, random_alexnet, effnet):
    assert G.last_spatial_layer(shapes_net) == "conv5"
    assert G.last_spatial_layer(random_alexnet) == "conv5"
    assert G.last_spatial_layer(effnet) == "head"
    assert G.spatial_layers(shapes_net) == ["conv1", "conv2", "conv3", "conv4", "conv5"]


def test_grad_cam_by_hand(shapes_net, shapes_batch):
    x, labels, _ = shapes_batch
    result = G.grad_cam(shapes_net, x, labels)
    # The definition written out with plain autograd: alpha = mean gradient, ReLU of the weighted sum.
    with shapes_net.capture("conv5") as out:
        z = x.clone().requires_grad_(True)
        logits = shapes_net(z)
    acts = out["conv5"]
    grads = torch.autograd.grad(logits.gather(1, torch.tensor(labels).view(-1, 1)).sum(), acts)[0]
    expected = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * acts).sum(1)).detach()
    close(result.extra["layer_map"], expected)
    assert result.map.shape == (6, 64, 64) and result.extra["layer_map"].shape == (6, 6, 6)
    assert result.per_channel is None and result.method == "grad_cam"
    close(result.map, G.to_image_size(expected, 64))


@pytest.mark.parametrize("which", ["shapes", "alexnet"])
def test_grad_cam_agrees_with_pytorch_grad_cam_and_captum(which, shapes_net, shapes_batch, random_alexnet,
                                                          alexnet_image):
    pgc = pytest.importorskip("pytorch_grad_cam")
    from captum.attr import LayerGradCam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if which == "shapes":
        net, (x, targets, _) = shapes_net, shapes_batch
    else:
        net, x, targets = random_alexnet, alexnet_image, [281, 7]
    ours = G.grad_cam(net, x, targets, layer="conv5")
    module = net.module("conv5")
    # Captum: the layer-resolution map, same layer and target, ReLU applied.
    captum = LayerGradCam(net, module).attribute(net.fast_layout(x.clone()), target=torch.tensor(targets),
                                                 relu_attributions=True)[:, 0]
    close(ours.extra["layer_map"], captum)
    # pytorch-grad-cam: each map upsampled to the image and normalised to [0, 1].
    with pgc.GradCAM(net, [module]) as cam:
        theirs = cam(net.fast_layout(x.clone()).requires_grad_(True), [ClassifierOutputTarget(t) for t in targets])
    close(minmax(ours.map), torch.from_numpy(theirs))


def test_guided_grad_cam_agrees_with_captum(shapes_net, shapes_batch):
    from captum.attr import GuidedGradCam

    x, labels, _ = shapes_batch
    ours = G.guided_grad_cam(shapes_net, x, labels)
    theirs = GuidedGradCam(shapes_net, shapes_net.module("conv5")).attribute(
        shapes_net.fast_layout(x.clone()), target=torch.tensor(labels), interpolate_mode="bilinear")
    close(ours.per_channel, theirs)
    close(ours.map, theirs.abs().amax(1))


def test_grad_cam_needs_a_spatial_layer_and_a_target_above_it(shapes_net, shapes_batch):
    x, labels, _ = shapes_batch
    with pytest.raises(ValueError, match="spatial map"):
        G.grad_cam(shapes_net, x, labels, layer="fc7")
    with pytest.raises(ValueError, match="no layer 'conv9'"):
        G.grad_cam(shapes_net, x, labels, layer="conv9")
    with pytest.raises(ValueError, match="before layer conv5"):
        G.grad_cam(shapes_net, x, Neuron("conv3", 0), layer="conv5")
    with pytest.raises(ValueError, match="class index 99 is out of range"):
        G.grad_cam(shapes_net, x, 99)
    # A neuron above the layer is a fine target.
    neuron = G.grad_cam(shapes_net, x[:1], Neuron("fc6", 3), layer="conv4")
    assert neuron.extra["layer_map"].shape == (1, 6, 6)


# --- Integrated Gradients --------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_left", "riemann_middle", "riemann_right"])
@pytest.mark.parametrize("baseline", ["black", "blur", "noise"])
def test_integrated_gradients_agree_with_captum(shapes_net, shapes_batch, rule, baseline):
    from captum.attr import IntegratedGradients

    x, labels, _ = shapes_batch
    x, labels = x[:3], labels[:3]
    ours = integrated_gradients(shapes_net, x, labels, baseline=baseline, steps=12, rule=rule, batch_size=7)
    start = baseline_image(x, baseline)
    theirs, delta = IntegratedGradients(shapes_net).attribute(
        shapes_net.fast_layout(x.clone()), baselines=shapes_net.fast_layout(start), target=torch.tensor(labels),
        n_steps=12, method=rule, return_convergence_delta=True)
    close(ours.per_channel, theirs)
    close(ours.map, theirs.sum(1))
    close(ours.extra["delta"], delta.float(), rtol=1e-3)


def test_integrated_gradients_with_a_tensor_baseline_on_alexnet(random_alexnet, alexnet_image):
    from captum.attr import IntegratedGradients

    x = alexnet_image[:1]
    start = torch.full_like(x, 0.5)
    ours = integrated_gradients(random_alexnet, x, 281, baseline=start[0], steps=8)
    theirs = IntegratedGradients(random_alexnet).attribute(random_alexnet.fast_layout(x.clone()),
                                                           baselines=random_alexnet.fast_layout(start), target=281,
                                                           n_steps=8)
    close(ours.per_channel, theirs)
    assert ours.extra["baseline"] == "tensor"


def test_completeness_gap_under_one_percent_at_128_steps(shapes_net):
    """Sundararajan et al.'s completeness: attributions add up to f(x) - f(x'). A ReLU
    network's path integrand jumps, so the gap shrinks with steps; at 128 it is under 1%
    on average over the shapes (per image, a few reach 1.5% from a black baseline:
    measured on 50 images)."""
    from cnnviz_widgets.engine.zoo.data import load_dataset

    images, labels, _ = load_dataset("shapes", n=20, seed=31).arrays()
    x = torch.from_numpy(images.copy()).permute(0, 3, 1, 2).float() / 255
    gaps = {}
    for steps in (8, 128):
        result = integrated_gradients(shapes_net, x, labels.tolist(), steps=steps)
        gaps[steps] = result.extra["completeness_gap"].numpy()
        # the gap is what it says: |sum of attributions - (f(x) - f(x'))| / |f(x) - f(x')|
        change = result.extra["f_image"] - result.extra["f_baseline"]
        by_hand = (result.per_channel.double().sum(dim=(1, 2, 3)) - change.double()).abs() / change.double().abs()
        np.testing.assert_allclose(gaps[steps], by_hand.numpy(), rtol=1e-3, atol=1e-6)
    assert gaps[128].mean() < 0.01, gaps[128]
    assert np.median(gaps[128]) < 0.01
    assert gaps[128].mean() < gaps[8].mean()


def test_path_points_are_the_quadrature_rules():
    a, w = path_points(5, "riemann_trapezoid")
    assert torch.allclose(a, torch.linspace(0, 1, 5, dtype=torch.float64))
    assert float((w * a).sum()) == pytest.approx(0.5)
    assert float(w.sum()) == pytest.approx(1.0) and float(w[0]) == pytest.approx(0.125)
    for rule in ("gausslegendre", "riemann_left", "riemann_middle", "riemann_right"):
        a, w = path_points(7, rule)
        assert float(w.sum()) == pytest.approx(1.0) and 0 <= float(a.min()) and float(a.max()) <= 1
        # exact for a straight line: the integral of a from 0 to 1 is 1/2 (left/right are off by 1/2n)
        if rule in ("gausslegendre", "riemann_middle"):
            assert float((w * a).sum()) == pytest.approx(0.5)


def test_integrated_gradients_progress_and_stop(shapes_net, shapes_batch):
    x, labels, _ = shapes_batch
    steps = list(integrated_gradients_iter(shapes_net, x[:2], labels[:2], steps=10, batch_size=4))
    assert [p.step for p in steps] == [4, 8, 12, 16, 20] and steps[-1].done
    assert all(p.result.ended == "" for p in steps[:-1]) and steps[-1].result.ended == "done"
    # A preview integrates the points done so far: at step 8 none of the second image's,
    # at step 12 all ten of the first image's.
    full = steps[-1].result
    assert not steps[1].result.per_channel[1].any() and full.per_channel[1].any()
    assert torch.allclose(steps[2].result.per_channel[0], full.per_channel[0])
    assert torch.equal(full.per_channel, run_to_end(integrated_gradients_iter(shapes_net, x[:2], labels[:2], steps=10,
                                                                               batch_size=4)).per_channel)
    calls = iter([False, False, True])
    stopped = run_to_end(integrated_gradients_iter(shapes_net, x[:2], labels[:2], steps=10, batch_size=4,
                                                   should_stop=lambda: next(calls)))
    assert stopped.ended == "stopped" and stopped.extra["points_done"] == 8


@pytest.mark.parametrize("kwargs, words", [
    (dict(baseline="white"), "baseline must be one of"),
    (dict(steps=0), "steps 0 is out of range"),
    (dict(steps=2.5), "steps is a whole number"),
    (dict(rule="simpson"), "rule must be one of"),
    (dict(batch_size=0), "batch_size 0 is out of range"),
    (dict(baseline=torch.zeros(3, 8, 8)), "shaped like the image"),
])
def test_integrated_gradients_bad_settings_name_the_problem(shapes_net, shapes_batch, kwargs, words):
    x, labels, _ = shapes_batch
    with pytest.raises((ValueError, TypeError), match=words):
        integrated_gradients(shapes_net, x[:1], labels[0], **kwargs)


def test_numpy_integers_are_welcome(shapes_net, shapes_batch):
    x, labels, _ = shapes_batch
    a = integrated_gradients(shapes_net, x[:1], np.int64(labels[0]), steps=np.int32(4))
    b = integrated_gradients(shapes_net, x[:1], labels[0], steps=4)
    assert torch.equal(a.per_channel, b.per_channel)


# --- SmoothGrad over any of them, and the model left alone ------------------------------------

@pytest.mark.parametrize("method", [G.grad_cam, integrated_gradients, G.guided_grad_cam])
def test_smoothgrad_wraps_the_new_methods(shapes_net, shapes_batch, method):
    x, labels, _ = shapes_batch
    x, labels = x[:2], labels[:2]
    smooth = smoothed(method, samples=3, noise=0.1, seed=5)
    a = smooth(shapes_net, x, labels)
    b = smooth(shapes_net, x, labels)
    assert isinstance(a, Attribution) and a.map.shape == (2, 64, 64)
    assert torch.equal(a.map, b.map)  # seeded
    plain = method(shapes_net, x, labels)
    assert not torch.allclose(a.map, plain.map)  # the noise changed something
    # The average of the maps of the very noisy copies SmoothGrad makes, by hand, for image 0:
    gen = torch.Generator().manual_seed(5)
    spread = (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3))).view(-1, 1, 1, 1) * 0.1
    copies = x.repeat_interleave(3, dim=0)
    noisy = copies + torch.randn(copies.shape, generator=gen) * spread.repeat_interleave(3, dim=0)
    by_hand = method(shapes_net, noisy, [labels[0]] * 3 + [labels[1]] * 3).map.view(2, 3, 64, 64).mean(1)
    close(a.map, by_hand, rtol=1e-4)


@pytest.mark.parametrize("call", [
    lambda net, x: G.grad_cam(net, x, 1),
    lambda net, x: G.guided_grad_cam(net, x, 1),
    lambda net, x: integrated_gradients(net, x, 1, steps=4),
    lambda net, x: G.grad_cam(net, x, Neuron("conv3", 0), layer="conv5"),  # raises inside the hook's life
    lambda net, x: integrated_gradients(net, x, 1, steps=4, baseline="nothing"),
], ids=["grad_cam", "guided_grad_cam", "ig", "grad_cam-error", "ig-error"])
def test_model_restored_after_every_call_also_on_error(shapes_net, shapes_batch, call):
    x, _, _ = shapes_batch
    shapes_net.train()  # a mode the call must give back
    try:
        with assert_restored(shapes_net):
            try:
                call(shapes_net, x[:2])
            except ValueError:
                pass
    finally:
        shapes_net.eval()


def test_targets_as_callables(shapes_net, shapes_batch):
    x, labels, _ = shapes_batch
    by_index = G.grad_cam(shapes_net, x[:2], labels[:2])
    by_target = G.grad_cam(shapes_net, x[:2], ClassLogit(tuple(labels[:2])))
    assert torch.equal(by_index.map, by_target.map)
    name = shapes_net.classes[labels[0]]
    assert torch.equal(G.grad_cam(shapes_net, x[:1], name).map, G.grad_cam(shapes_net, x[:1], labels[0]).map)
