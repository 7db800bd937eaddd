"""Your own network (issue 27): `load_model(module)` on networks the kit does not ship,
every technique of the registry on each (random weights, small inputs, few steps), the
messages that teach, Grad-CAM under an in-place op after its layer, and guided backprop
at rectifiers that are not `nn.ReLU` modules.

Each outside model is built once per module (a module-scoped fixture), at 64 px (the
CIFAR-style net at its 32 px), so the whole file stays small in time.
"""

from __future__ import annotations

import copy
import functools
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnviz_widgets.engine import TECHNIQUES
from cnnviz_widgets.engine.attribution import gradcam as GC
from cnnviz_widgets.engine.attribution import guided as G
from cnnviz_widgets.engine.attribution.base import smoothgrad
from cnnviz_widgets.engine.attribution.saliency import saliency
from cnnviz_widgets.engine.core.network import Network
from cnnviz_widgets.engine.core.targets import Neuron
from cnnviz_widgets.engine.inspect.embedding import embed
from cnnviz_widgets.engine.zoo.data import ListDataset, load_dataset
from cnnviz_widgets.engine.zoo.models import load_model
from tests.helpers import assert_restored, close_to_scale

SIZE = 64


class CifarNet(nn.Module):
    """PyTorch's CIFAR-10 tutorial net: every ReLU is a functional `F.relu`, one pooling
    module serves twice, and its first fully connected layer fixes the input at 32 px."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def sequential_net() -> nn.Module:
    """A Sequential net with in-place ReLUs and BatchNorm."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5))


def _torchvision(name):
    def make():
        import torchvision  # deferred: only the torchvision models need it

        return torchvision.models.get_model(name, weights=None)
    return make


def _timm(name):
    def make():
        import timm  # deferred: timm's import is heavy; only its models need it

        return timm.create_model(name, pretrained=False)
    return make


OUTSIDE = {
    "resnet50": _torchvision("resnet50"),
    "densenet121": _torchvision("densenet121"),
    "convnext_tiny": _torchvision("convnext_tiny"),
    "mobilenet_v3_small": _torchvision("mobilenet_v3_small"),
    "regnety_002": _timm("regnety_002"),
    "mobilevitv2_050": _timm("mobilevitv2_050"),
    "cifar_functional_relu": CifarNet,
    "sequential_inplace_bn": sequential_net,
}


@functools.lru_cache(maxsize=None)
def wrap(key: str) -> Network:
    """Each outside network built once for this file (dropped at its end)."""
    torch.manual_seed(0)
    module = OUTSIDE[key]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the hand-made nets state no normalisation: said, and fine here
        if key == "cifar_functional_relu":
            return load_model(module)  # no argument but the module: it finds its 32 px itself
        return load_model(module, input_size=SIZE)


@pytest.fixture(scope="module", autouse=True)
def _drop_the_networks():
    yield
    wrap.cache_clear()


@pytest.fixture(scope="module", params=list(OUTSIDE))
def outside(request):
    return request.param, wrap(request.param)


def _images(net, n=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, net.input_size, net.input_size, generator=g)


def _dataset(net):
    shapes = load_dataset("shapes", n=3, seed=3, size=net.input_size)
    return ListDataset([shapes[i] for i in range(3)], shapes.classes, "")


def _run(net, lesson, given=None):
    """The registry's technique `lesson` on `net` with the smallest settings that still run
    it; `given`: what the technique gets instead of `net` (a bare module)."""
    technique = TECHNIQUES[lesson]
    subject = net if given is None else given
    x = _images(net)
    last = net.spatial_layers()[-1]
    s = net.input_size
    calls = {
        "01": lambda f: f(subject),
        "02": lambda f: f(subject, _dataset(net), last, batch_size=3),
        "04": lambda f: f(subject, x, last),
        "05": lambda f: f(subject, _dataset(net), last, k=1, batch_size=3, cache=False),
        "06": lambda f: f(subject, x, 1, patch=s // 2, stride=s // 2, batch_size=4),
        "07": lambda f: f(subject, x, 1, batch_size=1),
        "08": lambda f: f(subject, x, 1, batch_size=1),
        "09": lambda f: f(subject, 1, size=s, steps=1, jitter=0),
        "10": lambda f: f(subject, x, 1, steps=1, eps=0.05, step_size=0.01),
        "11": lambda f: f(subject, x, last, octaves=1, steps=1, jitter=0),
        "12": lambda f: f(subject, x, last, size=s, steps=1),
        "13a": lambda f: f(subject, x, 1, batch_size=1),
        "13b": lambda f: f(subject, x, 1, batch_size=1),
        "13c": lambda f: f(subject, x, 1, steps=2, batch_size=2),
        "14a": lambda f: f(subject, x[0], layers={last: 1.0}, size=s, steps=1),
        "14b": lambda f: f(subject, x[0], x[0].flip(-1), content_layer=last, style_layers=[last], size=s, steps=1),
        "15": lambda f: f(subject, _dataset(net), net.spatial_layers()[0], quantile=0.05, batch_size=3),
    }
    return calls[lesson](technique.verb)


NETWORK_TECHNIQUES = [k for k, t in TECHNIQUES.items() if t.subject != "features"]


def test_the_recipes_cover_the_registry():
    assert sorted(NETWORK_TECHNIQUES) == sorted(set(TECHNIQUES) - {"03"})
    assert TECHNIQUES["03"].subject == "features"  # embed takes feature vectors, no network: run below


def test_every_technique_runs_on_every_outside_network(outside):
    key, net = outside
    assert isinstance(net, Network) and net.spatial_layers(), key
    for lesson in NETWORK_TECHNIQUES:
        with assert_restored(net):
            result = _run(net, lesson)
        assert result is not None, (key, lesson)
    # lesson 03's embedding of that network's features
    from cnnviz_widgets.engine.inspect.features import extract_features

    feats = extract_features(net, _dataset(net), net.spatial_layers()[-1], batch_size=3)
    assert embed(feats, "pca").coords.shape == (3, 2)


def test_what_load_model_found(outside):
    key, net = outside
    expected_last = {
        "resnet50": "layer4", "densenet121": "features.norm5", "convnext_tiny": "features.7",
        "mobilenet_v3_small": "features.12", "regnety_002": "s4", "mobilevitv2_050": "stages.4",
        "cifar_functional_relu": "conv2", "sequential_inplace_bn": "relu2",
    }
    assert net.spatial_layers()[-1] == expected_last[key]
    assert net.layers[-1] == "logits"
    assert len(net.classes) == net(_images(net)).shape[1]
    if key in ("resnet50", "densenet121", "convnext_tiny", "mobilenet_v3_small"):
        assert net.preprocessing.startswith("ImageNet statistics") and net.classes[281] == "tabby"
    elif key in ("regnety_002", "mobilevitv2_050"):
        assert net.preprocessing == "timm's data config"
    else:
        assert net.preprocessing.startswith("none") and net.classes[0] == "class 0"
    if key == "cifar_functional_relu":
        assert net.input_size == 32 and net.layers == ["conv1", "conv2", "fc1", "fc2", "logits"]
    if key == "sequential_inplace_bn":
        assert net.layers[:4] == ["conv1", "bn1", "relu1", "pool1"]
    if key == "resnet50":
        assert [f"layer{i}" for i in range(1, 5)] == [k for k in net.layers if k.startswith("layer")]


def test_no_argument_but_the_module_and_names_given():
    module = sequential_net()
    with pytest.warns(UserWarning, match="mean=..., std=..."):
        net = load_model(module, input_size=32)
    named = load_model(sequential_net(), classes={i: f"kind {i}" for i in range(5)}, mean=(0.5,) * 3,
                       std=(0.25,) * 3, input_size=32, name="mine", layers={"early": "0", "late": "6"})
    assert named.name == "mine" and named.layers == ["early", "late"] and named.classes[4] == "kind 4"
    assert named.preprocessing == "given" and float(named.std[0, 0]) == 0.25
    assert net.classes == [f"class {i}" for i in range(5)]
    assert load_model(net) is net  # a Network is already wrapped


# --- Grad-CAM under an in-place op after its layer ------------------------------------

def test_grad_cam_on_densenet_default_layer_matches_a_hand_computation():
    net = wrap("densenet121")
    x = _images(net, seed=4)
    # by hand: norm5's output A, then DenseNet's tail (its in-place ReLU, pooling, classifier) on a leaf copy
    model = net.model
    with torch.no_grad():
        features = model.features((x - net.mean) / net.std)
    a = features.clone().requires_grad_(True)
    logits = model.classifier(torch.flatten(F.adaptive_avg_pool2d(F.relu(a), (1, 1)), 1))
    maps = {}
    for target in range(8):  # random weights: take a class whose map is not all zero
        (grad,) = torch.autograd.grad(logits[0, target], a, retain_graph=True)
        maps[target] = (grad.mean(dim=(2, 3)), torch.relu((grad.mean(dim=(2, 3))[:, :, None, None] * features).sum(1)))
    target = max(maps, key=lambda t: float(maps[t][1].max()))
    alpha, by_hand = maps[target]
    result = GC.grad_cam(net, x, target)
    assert result.extra["layer"] == "features.norm5"
    close_to_scale(result.extra["weights"], alpha, 1e-4)
    close_to_scale(result.extra["layer_map"], by_hand, 1e-4)
    # captured activations are norm5's output, not the ReLU's that overwrites it in place
    from cnnviz_widgets.engine.inspect.activations import activations

    assert (features < 0).any()
    close_to_scale(activations(net, x, "features.norm5").maps, features[0], 1e-5)


# --- guided backprop at rectifiers that are not nn.ReLU modules ---------------------------

def _gelu_net():
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.GELU(), nn.Conv2d(6, 4, 3, padding=1), nn.SiLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


def test_the_guided_rule_at_gelu_and_silu_is_the_stated_one():
    """guided: f'(x) max(g, 0) where x > 0; checked against the rule written out by hand."""
    net = load_model(_gelu_net(), input_size=8, mean=(0, 0, 0), std=(1, 1, 1))
    x = _images(net, seed=2)
    ours = G.guided_backprop(net, x, 2).per_channel
    conv1, _, conv2, _, pool, flat, fc = net.model
    xg = x.clone().requires_grad_(True)
    z1 = conv1(xg)
    h1 = F.gelu(z1)
    z2 = conv2(h1)
    h2 = F.silu(z2)
    out = fc(flat(pool(h2)))
    g_h2 = torch.autograd.grad(out[0, 2], h2, retain_graph=True)[0]

    def rule(z, g, f):
        zd = z.detach().requires_grad_(True)
        (slope,) = torch.autograd.grad(f(zd).sum(), zd)
        return slope * g.clamp_min(0) * (z > 0)

    g_z2 = rule(z2, g_h2, F.silu)
    g_h1 = torch.autograd.grad(z2, h1, grad_outputs=g_z2, retain_graph=True)[0]
    g_z1 = rule(z1, g_h1, F.gelu)
    by_hand = torch.autograd.grad(z1, xg, grad_outputs=g_z1)[0]
    close_to_scale(ours, by_hand, 1e-5)
    plain = saliency(net, x, 2)
    assert not torch.allclose(ours.abs().amax(1), plain.map)


@pytest.mark.parametrize("key", ["convnext_tiny", "mobilevitv2_050", "cifar_functional_relu"])
def test_guided_backprop_differs_from_the_plain_gradient_where_relu_is_not_a_module(key):
    net = wrap(key)
    if key == "convnext_tiny":
        # ConvNeXt starts its blocks' layer scale at 1e-6: untrained, every gradient runs through
        # the shortcuts and no rule at the GELUs could show. A trained one has scales near 1.
        net = copy.deepcopy(net)
        with torch.no_grad():
            for m in net.modules():
                if hasattr(m, "layer_scale"):
                    m.layer_scale.fill_(1.0)
    x = _images(net, seed=1)
    assert not any(isinstance(m, nn.ReLU) for m in net.modules()) or key == "mobilevitv2_050"
    assert G.rectifier_calls(net, x) > 0
    guided = G.guided_backprop(net, x, 1).per_channel
    plain = G.guided_backprop(net, x, 1, rule="plain").per_channel
    assert not torch.allclose(guided, plain, rtol=1e-3, atol=1e-6 * float(plain.abs().max()))


def test_guided_backprop_refuses_a_network_without_rectifiers():
    torch.manual_seed(0)
    net = load_model(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                   nn.Linear(4, 2)), input_size=16, mean=(0, 0, 0), std=(1, 1, 1))
    with pytest.raises(ValueError, match=r"met no rectifier.*plain gradient.*saliency"):
        G.guided_backprop(net, _images(net), 1)
    assert G.guided_backprop(net, _images(net), 1, rule="plain").per_channel.abs().sum() > 0


# --- messages that teach --------------------------------------------------------------------

@pytest.fixture(scope="module")
def small():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_model(sequential_net(), input_size=32)


@pytest.mark.parametrize("lesson", NETWORK_TECHNIQUES)
def test_a_bare_module_given_to_any_technique_says_wrap_it(lesson, small):
    with pytest.raises(TypeError, match=r"wrap it with load_model\(model, classes=\.\.\.\)"):
        _run(small, lesson, given=sequential_net())


def test_a_bare_module_given_to_an_app_says_wrap_it():
    from cnnviz_widgets.widgets.saliency import SaliencyApp

    with pytest.raises(TypeError, match=r"wrap it with load_model\(model, classes=\.\.\.\)"):
        SaliencyApp(sequential_net(), threaded=False)


def test_wrong_class_counts_name_the_fix():
    with pytest.raises(ValueError, match=r"classes has 10 names but Sequential gives 5 scores: give 5 names"):
        load_model(sequential_net(), classes=[str(i) for i in range(10)], input_size=32)
    with pytest.raises(ValueError, match=r"give one name for each index 0..4"):
        load_model(sequential_net(), classes={0: "a", 1: "b"}, input_size=32)


def test_a_model_without_a_spatial_layer_names_the_fix():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 4))
    with pytest.raises(ValueError, match=r"no layer with a spatial map.*convolutional"):
        load_model(mlp, input_size=16, mean=(0, 0, 0), std=(1, 1, 1))


def test_an_input_size_the_model_cannot_take_names_the_fix():
    with pytest.raises(ValueError, match=r"cannot take 64x64 images.*give input_size= a size it was made for"):
        load_model(CifarNet(), input_size=64)


def test_half_precision_and_other_devices_name_the_fix():
    with pytest.raises(TypeError, match=r"float16.*load_model\(model.float\(\)\)"):
        load_model(sequential_net().half(), input_size=32)
    with torch.device("meta"):
        on_meta = sequential_net()
    with pytest.raises(ValueError, match=r"meta device.*load_model\(model\)"):
        load_model(on_meta, input_size=32)
    spread = sequential_net()
    spread[0].to("meta")
    with pytest.raises(ValueError, match=r"spread over.*load_model\(model.to\('cpu'\)\)"):
        load_model(spread, input_size=32)


def test_pixels_outside_0_1_say_divide_by_255(small):
    x = _images(small) * 255
    with pytest.raises(ValueError, match=r"pixels are in \[0, 1\]: divide by 255"):
        saliency(small, x, 1)
    normalised = (_images(small) - 0.45) / 0.226
    with pytest.raises(ValueError, match=r"not normalised.*before transforms.Normalize"):
        saliency(small, normalised, 1)
    # SmoothGrad's own noisy copies (even at half the pixel range) are not refused
    assert smoothgrad(saliency, small, _images(small), 1, samples=2, noise=0.5).map.shape == (1, 32, 32)


def test_an_empty_batch_says_give_an_image(small):
    with pytest.raises(ValueError, match=r"empty \(0 images\): give at least one image"):
        saliency(small, torch.zeros(0, 3, 32, 32), 1)


def test_an_image_too_small_names_the_smallest_size(small):
    assert small.smallest_input() == 4  # relu2 is 16 x 16 at 32 px: 2 x 2 at 4 px
    with pytest.raises(ValueError, match=r"1x1 pixels, too small.*at least 4x4"):
        saliency(small, torch.rand(1, 3, 1, 1), 1)
    assert saliency(small, torch.rand(1, 3, 4, 4), 1).map.shape == (1, 4, 4)


def test_network_by_hand_without_its_details_points_to_load_model():
    with pytest.raises(TypeError, match=r"layer_paths, classes.*load_model\(model, classes=\.\.\.\) finds"):
        Network("r50", sequential_net())
    assert "load_model" in Network.__doc__ and "layer_paths" in Network.__init__.__doc__


def test_neuron_targets_and_grad_cam_layers_on_an_outside_network(small):
    x = _images(small, n=2)
    cam = GC.grad_cam(small, x, [0, 1], layer="relu1")
    assert cam.map.shape == (2, 32, 32) and cam.extra["layer_map"].shape == (2, 32, 32)
    neuron = G.guided_backprop(small, x, Neuron("relu2", np.int64(3)))
    assert neuron.per_channel.shape == (2, 3, 32, 32)


# --- the apps, headless, on two outside networks --------------------------------------------

@pytest.mark.parametrize("key", ["cifar_functional_relu", "mobilenet_v3_small"])
def test_apps_work_headless_on_an_outside_network(key):
    from cnnviz_widgets.widgets.activations import ActivationsApp
    from cnnviz_widgets.widgets.saliency import SaliencyApp

    net = wrap(key)
    sal = SaliencyApp(net, image="coffee", threaded=False)
    assert sal.error == "" and sal.net is net and sal.view.value[:8] == b"\x89PNG\r\n\x1a\n"
    sal.class_picker.value = net.classes[3]
    assert sal.error == "" and net.classes[3] in sal.info.value
    act = ActivationsApp(net, image="coffee", threaded=False)
    assert act.error == "" and act.net is net and act.view.value[:8] == b"\x89PNG\r\n\x1a\n"
