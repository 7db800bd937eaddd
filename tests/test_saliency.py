"""Lesson 07, saliency maps and SmoothGrad: definition, batching, seeding, restoring
the model, bad input, and ground truth from the shapes masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnviz_widgets.engine.saliency import saliency
from cnnviz_widgets.engine.shapes_net import WEIGHTS_PATH
from tests.helpers import assert_restored

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
    assert got.shape == (1, 224, 224)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-7 * float(expected.max()))


def test_batch_with_one_target_per_image(random_alexnet, two_images):
    both = saliency(random_alexnet, two_images, [5, 9])
    assert torch.allclose(both[0], saliency(random_alexnet, two_images[:1], 5)[0], atol=1e-6 * float(both.max()))
    assert torch.allclose(both[1], saliency(random_alexnet, two_images[1:], 9)[0], atol=1e-6 * float(both.max()))
    assert not torch.allclose(both[1], saliency(random_alexnet, two_images[1:], 5)[0])


def test_smoothgrad_is_seeded_and_leaves_the_global_rng(random_alexnet, two_images):
    x = two_images[:1]
    state = torch.get_rng_state()
    a = saliency(random_alexnet, x, 5, smooth=3, noise=0.2, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    b = saliency(random_alexnet, x, 5, smooth=3, noise=0.2, seed=1, batch_size=2)  # batching does not matter
    c = saliency(random_alexnet, x, 5, smooth=3, noise=0.2, seed=2)
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-6 * float(a.max()))
    assert not torch.allclose(a, c)
    # No noise: every sample is the plain map.
    assert torch.allclose(saliency(random_alexnet, x, 5, smooth=2, noise=0.0), saliency(random_alexnet, x, 5),
                          rtol=1e-5, atol=1e-7 * float(a.max()))


def test_model_restored_also_on_error(effnet):
    x = torch.rand(1, 3, 224, 224)
    with assert_restored(effnet):
        saliency(effnet, x, 1, smooth=2)
    with assert_restored(effnet):
        with pytest.raises(ValueError, match="out of range"):
            saliency(effnet, x, 5000)


@pytest.mark.parametrize("kwargs, words", [
    (dict(target=[1, 2, 3]), "3 targets for 1 images"),
    (dict(target="no such class"), "no class named"),
    (dict(smooth=-1), "smooth"),
    (dict(noise=2.0), "noise"),
])
def test_bad_input_names_the_problem(random_alexnet, kwargs, words):
    args = dict(target=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=words):
        saliency(random_alexnet, torch.rand(1, 3, 224, 224), args.pop("target"), **args)


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
    maps = saliency(shapes_net, x, [int(t) for t in labels[:n]]).numpy()
    inside = (maps * masks[:n]).sum(axis=(1, 2)) / maps.sum(axis=(1, 2))
    area = masks[:n].mean(axis=(1, 2))
    assert inside.mean() > 0.6, f"only {inside.mean():.0%} of the saliency is on the object"
    assert inside.mean() > area.mean() + 0.2, f"{inside.mean():.0%} on the object, which covers {area.mean():.0%}"


# --- the app (headless) ---------------------------------------------------------------

def test_saliency_app_caches_switches_and_survives_bad_input(random_alexnet):
    from cnnviz_widgets.engine.images import sample_names
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
        from cnnviz_widgets.engine.shapes_net import WEIGHTS_PATH

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
    got = saliency(net, x, 1)
    assert net.fast_layout(x).is_contiguous(memory_format=torch.channels_last)
    assert float((got - expected).abs().max()) <= 1e-4 * float(expected.max())


def test_gradient_input_is_a_fresh_leaf_in_the_fast_layout(random_alexnet):
    for x in (torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)):
        g = random_alexnet.gradient_input(x)
        assert g.is_leaf and g.requires_grad and not x.requires_grad
        assert g.is_contiguous(memory_format=torch.channels_last)
        assert g.data_ptr() != x.data_ptr() and torch.equal(g.detach(), x)
