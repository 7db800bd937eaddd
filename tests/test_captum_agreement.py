"""The kit against a peer: saliency, guided backprop, deconvnet and occlusion agree
with Captum on the same model and input (Captum is a test-only dependency).

Captum's guided backprop overrides nn.ReLU only, so it is compared on plain-ReLU
networks (shapes, random AlexNet); the ReLU6 rule is checked by hand in test_guided.
Tolerance: 1e-5 of the map's largest value.

Captum gets the input in the layout the kit runs (`Network.fast_layout`: channels-last
on a CPU). On the randomly initialised AlexNet, float32 rounding flips a few near-zero
ReLUs between layouts, which moves its gradient by ~0.3%: a property of gradients at
kinks, not of either implementation (test_saliency checks that the layouts agree on
the trained models).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

captum_attr = pytest.importorskip("captum.attr")

from cnnviz_widgets.engine.attribution import guided as G  # noqa: E402
from cnnviz_widgets.engine.attribution import occlusion as O  # noqa: E402
from cnnviz_widgets.engine.attribution.saliency import saliency  # noqa: E402
from cnnviz_widgets.engine.zoo.shapes_net import WEIGHTS_PATH  # noqa: E402
from cnnviz_widgets.engine.core.targets import ClassLogit  # noqa: E402

RTOL = 1e-5


def close(ours, theirs, rtol=RTOL):
    ours = torch.as_tensor(np.asarray(ours) if not isinstance(ours, torch.Tensor) else ours).double()
    theirs = torch.as_tensor(np.asarray(theirs) if not isinstance(theirs, torch.Tensor) else theirs).double()
    assert ours.shape == theirs.shape
    scale = float(theirs.abs().max())
    assert scale > 0, "a map of zeros compares nothing"
    err = float((ours - theirs).abs().max())
    assert err <= rtol * scale, f"largest difference {err:.3g} vs map max {scale:.3g}"


def _image(net, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, net.input_size, net.input_size, generator=g)


def _shapes_or_skip():
    if not WEIGHTS_PATH.is_file():
        pytest.skip("shapes weights not committed yet")
    from cnnviz_widgets.engine.zoo.data import load_dataset
    from cnnviz_widgets.engine.zoo.models import load_model

    net = load_model("shapes")
    item = load_dataset("shapes", n=3, seed=7)[2]
    return net, net.preprocess(item.image), item.label


@pytest.fixture(params=["effnet", "shapes", "alexnet"])
def any_net(request):
    if request.param == "shapes":
        net, x, target = _shapes_or_skip()
        return net, x, target
    net = request.getfixturevalue("effnet" if request.param == "effnet" else "random_alexnet")
    return net, _image(net), 281


@pytest.fixture(params=["shapes", "alexnet"])
def relu_net(request):
    if request.param == "shapes":
        return _shapes_or_skip()
    net = request.getfixturevalue("random_alexnet")
    return net, _image(net, 1), 281


def test_saliency(any_net):
    net, x, target = any_net
    theirs = captum_attr.Saliency(net).attribute(net.fast_layout(x.clone()).requires_grad_(True), target=target,
                                                 abs=True).amax(1)
    close(saliency(net, x, target).map, theirs)


@pytest.mark.parametrize("rule, peer", [("guided", "GuidedBackprop"), ("deconvnet", "Deconvolution")])
def test_class_gradient_rules(relu_net, rule, peer):
    net, x, target = relu_net
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Captum warns that it sets hooks on ReLUs
        theirs = getattr(captum_attr, peer)(net).attribute(net.fast_layout(x.clone()).requires_grad_(True), target=target)
    close(G.guided_backprop(net, x, target, rule=rule).per_channel, theirs)


@pytest.mark.parametrize("layer", ["conv2", "conv5"])
def test_guided_neuron(relu_net, layer):
    net, x, _ = relu_net
    ours = G.neuron_gradient(net, x, layer, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = captum_attr.NeuronGuidedBackprop(net, net.module(layer)).attribute(
            x.clone().requires_grad_(True), neuron_selector=(3, *ours.extra["position"]))
    close(ours.per_channel[0], theirs[0])


def _captum_occlusion(forward, x, target, patch, stride, fill):
    return captum_attr.Occlusion(forward).attribute(
        x, target=target, sliding_window_shapes=(3, patch, patch), strides=(3, stride, stride), baselines=fill)


@pytest.mark.parametrize("fill", ["grey", 0.2])
def test_occlusion_shapes(fill):
    net, x, target = _shapes_or_skip()
    ours = O.occlusion(net, x, target, patch=16, stride=8, fill=fill)
    theirs = _captum_occlusion(lambda z: net(z).softmax(-1), x, target, 16, 8, 0.5 if fill == "grey" else fill)
    close(O.occlusion_to_pixels(ours), theirs[0, 0])
    assert torch.equal(theirs[0, 0], theirs[0, 2])  # Captum's window spans the channels


def test_occlusion_effnet(effnet):
    x = effnet.preprocess(__import__("cnnviz_widgets").sample_image("cat"))
    ours = O.occlusion(effnet, x, 281, patch=56, stride=56)
    theirs = _captum_occlusion(lambda z: effnet(z).softmax(-1), x, 281, 56, 56, 0.5)
    close(O.occlusion_to_pixels(ours), theirs[0, 0])


def test_occlusion_alexnet_logits_per_position(random_alexnet):
    # Compared per position: with patch == stride each pixel has exactly one window.
    x = _image(random_alexnet, 2)
    ours = O.occlusion(random_alexnet, x, ClassLogit(5), patch=112, stride=112)
    theirs = _captum_occlusion(lambda z: random_alexnet(z), x, 5, 112, 112, 0.5)[0, 0]
    per_position = theirs[::112, ::112].numpy()
    close(ours.drop, per_position)
