"""Lesson 08, guided backprop / deconvnet / plain: the rules on a hand-set net with
hand-computed gradients, the hooks always removed, neurons, crops, and the
model-randomisation sanity check on a copy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnviz_widgets.engine.attribution import guided as G
from cnnviz_widgets.engine.evaluation import scores
from cnnviz_widgets.engine.zoo.shapes_net import WEIGHTS_PATH
from cnnviz_widgets.engine.core.targets import Neuron
from tests.helpers import assert_restored, close_to_scale, hook_count

needs_shapes_weights = pytest.mark.skipif(not WEIGHTS_PATH.is_file(), reason="shapes weights not committed yet")


def tiny_net(activation: nn.Module) -> nn.Module:
    """x = (1, 3) gives pre-activations (-1, 3, 8, 2, 1); the top layer's weights
    (2, 1, 3, -1, 5) are the gradient that reaches the activation."""
    net = nn.Sequential(nn.Linear(2, 5), activation, nn.Linear(5, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1., 0.], [0., 1.], [1., 1.], [0., 1.], [1., 0.]]))
        net[0].bias.copy_(torch.tensor([-2., 0., 4., -1., 0.]))
        net[2].weight.copy_(torch.tensor([[2., 1., 3., -1., 5.]]))
        net[2].bias.zero_()
    return net


def input_gradient(net: nn.Module, rule: str) -> list[float]:
    x = torch.tensor([[1.0, 3.0]], requires_grad=True)
    with G.backprop_rule(net, rule):
        net(x).sum().backward()
    return x.grad[0].tolist()


# Worked by hand. Upstream gradient g = (2, 1, 3, -1, 5), pre-activations (-1, 3, 8, 2, 1),
# first-layer rows w_i = (1,0), (0,1), (1,1), (0,1), (1,0); dx = sum_i passed_i * w_i.
@pytest.mark.parametrize("activation, rule, expected", [
    # ReLU6 passes 0 < pre < 6: units 1, 3, 4 -> 1*(0,1) - 1*(0,1) + 5*(1,0)
    (nn.ReLU6(), "plain", [5.0, 0.0]),
    # ... and only positive gradients: units 1, 4 -> (0,1) + 5*(1,0)
    (nn.ReLU6(), "guided", [5.0, 1.0]),
    # deconvnet ignores the input: relu(g) = (2,1,3,0,5) -> 2(1,0)+(0,1)+3(1,1)+5(1,0)
    (nn.ReLU6(), "deconvnet", [10.0, 4.0]),
    # plain ReLU passes unit 2 (pre 8) as well: guided -> (0,1) + 3(1,1) + 5(1,0)
    (nn.ReLU(), "guided", [8.0, 4.0]),
    (nn.ReLU(), "plain", [8.0, 3.0]),
])
def test_rules_by_hand(activation, rule, expected):
    assert input_gradient(tiny_net(activation), rule) == pytest.approx(expected)


def test_the_forward_is_unchanged_and_nothing_is_left():
    net = tiny_net(nn.ReLU6())
    x = torch.tensor([[1.0, 3.0]])
    before = net(x)
    with G.backprop_rule(net, "guided"):
        assert hook_count(net) == 0  # a function mode: no hook, the model untouched
        assert torch.equal(net(x), before)
    assert hook_count(net) == 0
    assert input_gradient(net, "plain") == pytest.approx([5.0, 0.0])  # the rule ended with the block
    with pytest.raises(RuntimeError, match="inside"):
        with G.backprop_rule(net, "guided"):
            raise RuntimeError("failure inside the block")
    assert hook_count(net) == 0
    with pytest.raises(ValueError, match="rule must be one of"):
        with G.backprop_rule(net, "smooth"):
            pass


def test_efficientnet_relu6_inside_batchnormact_is_covered(effnet):
    relu6 = [m for m in effnet.modules() if isinstance(m, nn.ReLU6)]
    assert effnet.model.bn1.act in relu6  # timm applies ReLU6 as a module inside BatchNormAct2d
    with assert_restored(effnet):
        # every ReLU6 module runs once per pass, and the rule meets each of them
        assert G.rectifier_calls(effnet, torch.rand(1, 3, 64, 64)) == len(relu6)


def test_plain_rule_is_the_true_gradient_on_efficientnet(effnet):
    torch.manual_seed(0)
    x = torch.rand(1, 3, 224, 224)
    plain = G.guided_backprop(effnet, x, 281, rule="plain")
    xr = x.clone().requires_grad_(True)
    effnet(xr)[0, 281].backward()
    assert plain.method == "plain" and plain.extra == {"rule": "plain"}
    close_to_scale(plain.per_channel, xr.grad, 1e-4)
    close_to_scale(plain.map, xr.grad.abs().amax(1), 1e-4)
    guided = G.guided_backprop(effnet, x, 281, rule="guided")
    assert not torch.allclose(guided.per_channel, plain.per_channel)


def test_neuron_defaults_to_the_strongest_position(random_alexnet):
    torch.manual_seed(2)
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        act = random_alexnet.forward_to(x, "conv2")[0, 7]
    result = G.neuron_gradient(random_alexnet, x, "conv2", np.int64(7))
    position = result.extra["position"]
    assert position == tuple(int(v) for v in divmod(int(act.argmax()), act.shape[1]))
    gradient = result.per_channel[0]
    assert gradient.shape == (3, 224, 224)
    # The gradient lives inside the neuron's receptive field.
    top, left, bottom, right = random_alexnet.receptive_field("conv2").box(*position)
    outside = gradient.abs().sum(0).clone()
    outside[max(top, 0):bottom, max(left, 0):right] = 0
    assert gradient.abs().sum() > 0 and outside.sum() == 0
    tops = G.top_positions(random_alexnet, x, "conv2", np.int64(7), k=np.int64(3))
    assert tops[0][:2] == position and tops[0][2] >= tops[1][2] >= tops[2][2]
    # the same unit as a target of the attribution method
    same = G.guided_backprop(random_alexnet, x, Neuron("conv2", 7, position))
    close_to_scale(same.per_channel, result.per_channel, 1e-6)


def test_restored_also_on_error(random_alexnet):
    x = torch.rand(1, 3, 224, 224)
    with assert_restored(random_alexnet):
        G.neuron_gradient(random_alexnet, x, "conv5", 3, rule="deconvnet")
    with assert_restored(random_alexnet):
        with pytest.raises(ValueError, match="channel 999 is out of range: conv5 has channels 0..255"):
            G.neuron_gradient(random_alexnet, x, "conv5", 999)
    with assert_restored(random_alexnet):
        with pytest.raises(ValueError, match="channel 999 is out of range: conv5 has channels 0..255"):
            G.guided_backprop(random_alexnet, x, Neuron("conv5", 999))
    with assert_restored(random_alexnet):
        with pytest.raises(ValueError, match="position row 40 is out of range"):
            G.neuron_gradient(random_alexnet, x, "conv5", 3, position=(40, 0))
    with pytest.raises(ValueError, match="no layer"):
        G.neuron_gradient(random_alexnet, x, "conv9", 0)


def test_neuron_pictures_are_receptive_field_crops(random_alexnet):
    torch.manual_seed(4)
    x = torch.rand(1, 3, 224, 224)
    pics = G.neuron_pictures(random_alexnet, x, "conv3", 2, k=2)
    size = random_alexnet.receptive_field("conv3").size
    assert len(pics) == 2 and pics[0].activation >= pics[1].activation
    assert pics[0].crop.shape == (size, size, 3) and pics[0].gradient.shape == (3, size, size)
    # The crop holds the whole gradient: nothing of it lies outside the field.
    full = G.neuron_gradient(random_alexnet, x, "conv3", 2, position=pics[0].position).per_channel
    assert float(pics[0].gradient.abs().sum()) == pytest.approx(float(full.abs().sum()), rel=1e-5)


def test_layer_parameters_follow_forward_order(random_alexnet):
    owned = scores.layer_parameters(random_alexnet)
    assert owned["conv1"] == [random_alexnet.model.features[0]]
    assert owned["fc8"] == [random_alexnet.model.classifier[6]]


def test_randomisation_works_on_a_copy(random_alexnet):
    x = torch.rand(1, 3, 224, 224)
    with assert_restored(random_alexnet):
        res = scores.cascading_randomisation(random_alexnet, x, 3, methods=("saliency", "guided_backprop"),
                                             layers_top_down=["fc8", "fc7"])
    assert res.stages == ["original", "fc8", "fc7"]
    assert res.correlations["saliency"][0] == pytest.approx(1.0)
    assert res.correlations["saliency"][-1] < 0.99  # the copy really was re-initialised
    assert res.maps["guided_backprop"][0].shape == (224, 224)
    with pytest.raises(ValueError, match="no layer"):
        scores.cascading_randomisation(random_alexnet, x, 3, layers_top_down=["fc99"])


@needs_shapes_weights
def test_sanity_check_saliency_changes_guided_barely(shapes_net, shapes_data):
    """Adebayo et al. 2018 on the shapes model: destroying the top layers changes the
    gradient a lot, the guided backprop picture hardly."""
    sal, gb = [], []
    for i in range(4):
        item = shapes_data[i]
        res = scores.cascading_randomisation(shapes_net, shapes_net.preprocess(item.image), item.label,
                                             methods=("saliency", "guided_backprop"),
                                             layers_top_down=["fc8", "fc7", "fc6", "conv5"])
        sal.append(res.correlations["saliency"][-1])
        gb.append(res.correlations["guided_backprop"][-1])
    assert np.mean(gb) > 0.5 and np.mean(gb) > np.mean(sal) + 0.2, (sal, gb)


# --- the app (headless) ---------------------------------------------------------------

def test_guided_app_methods_layers_and_bad_input(random_alexnet):
    from cnnviz_widgets.widgets import GuidedBackpropApp

    app = GuidedBackpropApp(random_alexnet, image="astronaut", layer="conv2", channel=4, threaded=False)
    assert app.error == "" and app.channel.max == random_alexnet.layer_shape("conv2")[0] - 1
    guided_png = app.view.value
    app.method.value = "deconvnet"
    assert app.error == "" and app.view.value != guided_png and "deconvnet" in app.info.value
    app.layer.value = "fc6"               # a vector layer: the whole image is the field
    assert app.error == "" and "whole image" in app.info.value
    app.k.value = 1
    assert app.error == ""
    app.image_picker.load_upload("notes.txt", b"this is not a picture")
    assert "notes.txt" in app.error
    app.channel.value = 1
    assert app.error == ""


def test_guided_app_switches_model_and_its_layers_together():
    from cnnviz_widgets.widgets.guided import GuidedBackpropApp

    app = GuidedBackpropApp(model="efficientnet_lite0", threaded=False)
    assert app.error == "" and app.layer.value.startswith("stage")
    before = app.view.value
    app.model_picker.value = "shapes"
    assert app.error == "", app.error
    assert list(app.layer.options) == app.net.layers and app.layer.value in app.net.layers
    assert app.net.name == "shapes" and app.view.value != before
    app.model_picker.value = "efficientnet_lite0"
    assert app.error == "" and app.layer.value in app.net.layers
