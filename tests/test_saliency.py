"""Lesson 07, saliency maps and SmoothGrad: definition, batching, seeding, restoring
the model, bad input, and ground truth from the shapes masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnviz_widgets.engine.attribution.base import smoothgrad, smoothgrad_iter
from cnnviz_widgets.engine.attribution.guided import guided_backprop
from cnnviz_widgets.engine.core.progress import run_to_end
from cnnviz_widgets.engine.attribution.saliency import saliency, saliency_iter
from cnnviz_widgets.engine.zoo.shapes_net import WEIGHTS_PATH
from cnnviz_widgets.engine.core.targets import Neuron
from tests.helpers import assert_restored, close_to_scale

needs_shapes_weights = pytest.mark.skipif(not WEIGHTS_PATH.is_file(), reason="shapes weights not committed yet")


@pytest.fixture(scope="module")
def two_images():
    g = torch.Generator().manual_seed(3)
    return torch.rand(2, 3, 224, 224, generator=g)


def test_is_max_over_channels_of_abs_logit_gradient(random_alexnet, two_images):
    # The same memory layout as the kit's (see test_captum_agreement on random AlexNet).
    x = random_alexnet.fast_layout(two_images[:1].clone()).requires_grad_(True)
    random_alexnet(x)[0, 5].backward()
    expected = x.grad.abs().amax(1)
    got = saliency(random_alexnet, two_images[:1], 5)
    assert got.map.shape == (1, 224, 224) and got.method == "saliency" and got.ended == "done"
    close_to_scale(got.map, expected, 1e-5)
    close_to_scale(got.per_channel, x.grad, 1e-5)  # the signed gradient before the reduction


def test_batch_with_one_target_per_image(random_alexnet, two_images):
    both = saliency(random_alexnet, two_images, [5, 9]).map
    close_to_scale(both[0], saliency(random_alexnet, two_images[:1], 5).map[0], 1e-5)
    close_to_scale(both[1], saliency(random_alexnet, two_images[1:], 9).map[0], 1e-5)
    assert not torch.allclose(both[1], saliency(random_alexnet, two_images[1:], 5).map[0])
    # batch by batch: the same maps, with a preview after each batch
    progress = list(saliency_iter(random_alexnet, two_images, [5, 9], batch_size=1))
    assert [p.step for p in progress] == [1, 2] and [p.done for p in progress] == [False, True]
    assert progress[0].result.map.shape[0] == 1 and progress[0].result.ended == ""
    close_to_scale(progress[-1].result.map, both, 1e-5)


def test_a_neuron_target_gives_the_neurons_gradient(random_alexnet, two_images):
    x = random_alexnet.fast_layout(two_images[:1].clone()).requires_grad_(True)
    act = random_alexnet.forward_to(x, "conv3")[0, 4]
    row, col = divmod(int(act.argmax()), act.shape[1])  # a unit that fires (a ReLU's zero has no gradient)
    act[row, col].backward()
    got = saliency(random_alexnet, two_images[:1], Neuron("conv3", np.int64(4), (row, col)))
    close_to_scale(got.per_channel, x.grad, 1e-5)


def test_smoothgrad_is_seeded_and_leaves_the_global_rng(random_alexnet, two_images):
    x = two_images[:1]
    state = torch.get_rng_state()
    a = smoothgrad(saliency, random_alexnet, x, 5, samples=3, noise=0.2, seed=1).map
    assert torch.equal(torch.get_rng_state(), state)
    b = smoothgrad(saliency, random_alexnet, x, 5, samples=3, noise=0.2, seed=1, batch_size=2).map
    c = smoothgrad(saliency, random_alexnet, x, 5, samples=3, noise=0.2, seed=2).map
    # Batching does not matter beyond float summation order: compared on the map's scale,
    # not element by element (near-zero pixels differ by ~1e-10 between CPUs).
    close_to_scale(a, b, 1e-4)
    assert float((a - c).abs().max()) > 1e-2 * float(a.abs().max())
    # No noise: every sample is the plain map.
    close_to_scale(smoothgrad(saliency, random_alexnet, x, 5, samples=2, noise=0.0).map,
                   saliency(random_alexnet, x, 5).map, 1e-5)


def test_smoothgrad_wraps_any_method_guided_backprop_too(random_alexnet, two_images):
    # The same noisy copies as SmoothGrad draws them, run through guided backprop by hand.
    x = two_images[:1]
    g = torch.Generator().manual_seed(7)
    spread = float(x.max() - x.min()) * 0.1
    noisy = x.repeat(3, 1, 1, 1) + torch.randn((3, 3, 224, 224), generator=g) * spread
    by_hand = torch.stack([guided_backprop(random_alexnet, noisy[i:i + 1], 5, rule="deconvnet").map[0]
                           for i in range(3)]).mean(0)
    ours = smoothgrad(guided_backprop, random_alexnet, x, 5, samples=3, noise=0.1, seed=7, rule="deconvnet")
    assert ours.method == "smoothgrad(deconvnet)" and ours.extra["rule"] == "deconvnet"
    close_to_scale(ours.map[0], by_hand, 1e-5)


def test_smoothgrad_iter_previews_and_stops(random_alexnet, two_images):
    steps = list(smoothgrad_iter(saliency, random_alexnet, two_images, [5, 9], samples=3, batch_size=2))
    assert [p.step for p in steps] == [2, 4, 6] and steps[-1].done and steps[-1].total == 6
    full = run_to_end(smoothgrad_iter(saliency, random_alexnet, two_images, [5, 9], samples=3, batch_size=2))
    close_to_scale(full.map, steps[-1].result.map, 1e-6)
    asked = iter(range(10))
    stopped = list(smoothgrad_iter(saliency, random_alexnet, two_images, [5, 9], samples=3, batch_size=2,
                                   should_stop=lambda: next(asked) >= 1))
    assert stopped[-1].done and stopped[-1].result.ended == "stopped" and stopped[-1].step == 4


def test_model_restored_also_on_error(effnet):
    x = torch.rand(1, 3, 224, 224)
    with assert_restored(effnet):
        smoothgrad(saliency, effnet, x, 1, samples=2)
    with assert_restored(effnet):
        with pytest.raises(ValueError, match="out of range"):
            saliency(effnet, x, 5000)


@pytest.mark.parametrize("kwargs, words", [
    (dict(target=[1, 2, 3]), "3 targets for 1 images"),
    (dict(target="no such class"), "no class named"),
    (dict(samples=-1), "samples -1 is out of range"),
    (dict(noise=2.0), "noise 2 is out of range"),
])
def test_bad_input_names_the_problem(random_alexnet, kwargs, words):
    args = dict(target=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=words):
        smoothgrad(saliency, random_alexnet, torch.rand(1, 3, 224, 224), args.pop("target"), **args)


def test_wrong_shape_is_refused(random_alexnet):
    with pytest.raises(ValueError, match="RGB"):
        saliency(random_alexnet, torch.rand(1, 1, 224, 224), 0)


@needs_shapes_weights
@pytest.mark.xfail(strict=True, reason="measured on the shipped shapes net: 34% of raw saliency (39% SmoothGrad) "
                   "on the object vs 23% area; the brief's >60% does not hold (see report)")
def test_most_saliency_falls_on_the_object(shapes_net, shapes_data):
    """Ground truth: the gradient should concentrate on the shape, not the clutter."""
    images, labels, masks = shapes_data.arrays()
    n = 40
    x = torch.from_numpy(np.ascontiguousarray(images[:n])).permute(0, 3, 1, 2).float() / 255
    maps = saliency(shapes_net, x, [int(t) for t in labels[:n]]).map.numpy()
    inside = (maps * masks[:n]).sum(axis=(1, 2)) / maps.sum(axis=(1, 2))
    area = masks[:n].mean(axis=(1, 2))
    assert inside.mean() > 0.6, f"only {inside.mean():.0%} of the saliency is on the object"
    assert inside.mean() > area.mean() + 0.2, f"{inside.mean():.0%} on the object, which covers {area.mean():.0%}"


# --- the app (headless) ---------------------------------------------------------------

def test_saliency_app_caches_switches_and_survives_bad_input(random_alexnet):
    from cnnviz_widgets.engine.zoo.samples import sample_names
    from cnnviz_widgets.widgets import SaliencyApp
    from tests.helpers import png_to_array

    app = SaliencyApp(random_alexnet, image="coffee", threaded=False)
    assert app.error == "" and len(app._cache) == 1
    raw = app.view.value
    app.opacity.value = 0.2               # redraw only: no new map
    assert len(app._cache) == 1 and app.view.value != raw
    app.method.value = "SmoothGrad"
    app.samples.value = 2
    assert app.error == "" and "noisy copies" in app.info.value
    app.class_picker.value = "not a class at all"
    assert "no class named" in app.error
    app.class_picker.value = "espresso"
    assert app.error == "" and "espresso" in app.info.value
    app.show_all.value = "all samples"
    grid = png_to_array(app.view.value)
    assert app.error == "" and grid.shape[1] > grid.shape[0] and len(sample_names()) == 4


@pytest.mark.parametrize("which", ["effnet", "shapes"])
def test_fast_layout_gives_the_same_map_on_trained_networks(request, which):
    """Channels-last (the CPU's faster layout) changes only summation order: on the
    trained networks the map equals the plain NCHW gradient within 1e-4 of its max."""
    if which == "shapes":
        from cnnviz_widgets.engine.zoo.shapes_net import WEIGHTS_PATH

        if not WEIGHTS_PATH.is_file():
            pytest.skip("shapes weights not committed yet")
        net = request.getfixturevalue("shapes_net")
    else:
        net = request.getfixturevalue("effnet")
    x = torch.rand(2, 3, net.input_size, net.input_size, generator=torch.Generator().manual_seed(3))
    plain = x.clone().contiguous().requires_grad_(True)
    with net.guard():
        net(plain)[:, 1].sum().backward()
    expected = plain.grad.abs().amax(1)
    got = saliency(net, x, 1).map
    assert net.fast_layout(x).is_contiguous(memory_format=torch.channels_last)
    assert float((got - expected).abs().max()) <= 1e-4 * float(expected.max())


def test_gradient_input_is_a_fresh_leaf_in_the_fast_layout(random_alexnet):
    for x in (torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)):
        g = random_alexnet.gradient_input(x)
        assert g.is_leaf and g.requires_grad and not x.requires_grad
        assert g.is_contiguous(memory_format=torch.channels_last)
        assert g.data_ptr() != x.data_ptr() and torch.equal(g.detach(), x)


def test_stop_ends_a_50_sample_smoothgrad_run_in_the_app_within_one_batch(monkeypatch):
    """The app runs SmoothGrad through `smoothgrad_iter`: Stop, pressed while the first
    batch of noisy copies is in the network, ends the run when that batch is done."""
    import threading

    from cnnviz_widgets.engine.core import memory
    from cnnviz_widgets.widgets import SaliencyApp
    from tests.helpers import tiny_network

    net = tiny_network()
    monkeypatch.setenv("CNNVIZ_MEMORY_BUDGET", str(6 * memory.image_cost(net, backward=True)))
    batch = memory.batch_size(net, backward=True)  # measured now, so the run below only explains
    assert 1 < batch < 50
    app = SaliencyApp(net, image=torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0)))
    app.runner.wait()
    app.class_picker.value = net.classes[1]
    app.samples.value = 50
    app.runner.wait()
    assert app.error == "" and len(app._cache) == 2  # raw maps, before and after choosing the class
    images_explained: list[int] = []
    hook = net.model.register_forward_pre_hook(
        lambda _m, args: images_explained.append(args[0].shape[0]) if torch.is_grad_enabled() else None)
    body = net.model
    body.gate, body.entered = threading.Event(), threading.Event()
    try:
        app.method.value = "SmoothGrad"  # 50 noisy copies, `batch` at a time
        assert body.entered.wait(30), "the SmoothGrad run never reached the network"
        app.runner.stop_button.click()  # the learner's Stop, during the first batch
        body.gate.set()
        app.runner.wait()
    finally:
        body.gate.set()
        hook.remove()
    assert images_explained == [batch]  # one batch of noisy copies, not 50
    assert app.runner.status.value == "stopped"
    assert app.runner.progress.value == pytest.approx(batch / 50)
    assert len(app._cache) == 2  # a stopped run is not cached as the map of these settings
    assert app.error == ""


def test_target_none_means_the_predicted_class_of_each_image(random_alexnet, two_images):
    from cnnviz_widgets.engine.core.targets import ClassLogit, as_target

    with torch.no_grad():
        predicted = random_alexnet(two_images).argmax(1).tolist()
    assert as_target(random_alexnet, None, 2, image=two_images) == ClassLogit(tuple(predicted))
    assert as_target(random_alexnet, None, 1, image=two_images[1:]) == ClassLogit(predicted[1])
    close_to_scale(saliency(random_alexnet, two_images, None).map,
                   saliency(random_alexnet, two_images, predicted).map, 1e-6)
    with pytest.raises(ValueError, match="no image"):
        as_target(random_alexnet, None, 1)
