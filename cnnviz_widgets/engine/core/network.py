"""The `Network`: a classifier that takes [0, 1] pixels and knows how to be looked inside.

Every technique receives a `Network`: ``load_model("shapes")`` gives a kit model,
``load_model(your_module)`` wraps any PyTorch image classifier (layers, classes and
preprocessing found for you), `build_network(name, model)` wraps a copy of a kit
architecture, and the constructor takes every detail by hand. It owns
what every technique needs and none should write twice: the one image entry path
(`as_batch`), readable layer names (`layers`, `check_layer`, `layer_path`), running
only as far as a layer (`forward_to`), recording layer outputs (`capture`), the state
guard every technique runs inside (`guard`), and each layer's receptive field.
Normalisation lives inside the network, so gradients, budgets like 8/255 and
optimised images are all in plain pixel units.
"""

from __future__ import annotations

import difflib
import math
import threading
import weakref
from contextlib import contextmanager
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import functional as TF

from . import checks
from .cache import cache_for
from .images import as_pil, load_image
from .receptive_field import ReceptiveField, analytic_receptive_field

__all__ = ["Network", "lock_for", "noisy_copies", "make_activations_out_of_place"]


class _StopForward(Exception):
    def __init__(self, output):
        self.output = output


# Re-entrant, per network, kept outside the module so deep copies (lesson 08's
# randomised networks) neither fail on a lock nor share one.
_LOCKS: "weakref.WeakKeyDictionary[nn.Module, threading.RLock]" = weakref.WeakKeyDictionary()
_LOCKS_LOCK = threading.Lock()


def lock_for(net: nn.Module) -> threading.RLock:
    """The re-entrant lock of one network (module): a thread holds it while hooks are on."""
    with _LOCKS_LOCK:
        lock = _LOCKS.get(net)
        if lock is None:
            lock = _LOCKS[net] = threading.RLock()
        return lock


# SmoothGrad hands its noisy copies of a checked image to the method it wraps; inside
# `noisy_copies()` `as_batch` lets their values past [0, 1] (per thread: an app's worker
# and the notebook do not share it).
_NOISY = threading.local()


@contextmanager
def noisy_copies() -> Iterator[None]:
    """Inside the block, `Network.as_batch` accepts values outside [0, 1]: SmoothGrad's
    noisy copies of an image it has already checked (the noise is not clipped, as in
    the paper and in Captum's NoiseTunnel)."""
    depth = getattr(_NOISY, "depth", 0)
    _NOISY.depth = depth + 1
    try:
        yield
    finally:
        _NOISY.depth = depth


# A [0, 1] image with some noise on it (a noisy copy made by hand) stays inside this band;
# an image in 0..255 or one normalised with ImageNet's statistics does not.
PIXEL_BAND = (-1.0, 2.0)


class Network(nn.Module):
    """A classifier that takes pixels in [0, 1] and knows how to be looked inside.

    Get one with ``load_model(...)``: ``load_model("shapes")`` for a kit model,
    ``load_model(module, classes=[...])`` for any PyTorch image classifier of your own
    (its layers, classes, input size and preprocessing found for you; see
    `cnnviz_widgets.engine.zoo.models.load_model`). Every technique, app, exercise
    checker and render function takes the result.

    What it holds: ``name``; ``model`` (your module, in eval mode with its parameters
    frozen, its activation modules made out-of-place); ``classes`` (one name per output);
    ``layers`` (readable layer names, in forward order: ``conv1``..``conv5``,
    ``fc6``..``fc8`` for AlexNet-shaped nets, ``stage1``..``stage7``, ``head``,
    ``logits`` for EfficientNet, module paths such as ``layer3`` or ``features.7`` for a
    network of yours), each the output of one module (`layer_path`, `module`);
    ``input_size`` / ``resize_size`` (a PIL image is resized to ``resize_size`` and
    centre-cropped to ``input_size``); ``mean`` / ``std`` (the normalisation, applied
    inside `forward`, so pixels in and gradients out are in plain [0, 1] units);
    ``preprocessing`` (where those came from, in words).

    What a technique uses: `as_batch` (the one image entry: PIL, uint8 array, file
    bytes, or a [0, 1] float tensor), `forward_to` (run as far as a layer), `capture`
    (record layer outputs), `guard` (eval mode and frozen parameters, restored
    afterwards), `layer_shape`, `spatial_layers`, `receptive_field`, `predict`.
    """

    def __init__(
        self,
        name: str,
        model: nn.Module,
        layer_paths: dict[str, str] | None = None,
        classes: Sequence[str] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        input_size: int | None = None,
        resize_size: int | None = None,
    ):
        """Wrap `model` with every detail given by hand.

        name: what the network is called in messages and pickers. model: the
        `nn.Module`, taking normalised N x 3 x H x W images, giving N x classes logits.
        layer_paths: {readable layer name: dotted module path inside `model`}, in
        forward order. classes: one name per logit. mean, std: the per-channel
        normalisation the model was trained with. input_size: the square size it runs
        at; resize_size: the shorter side a photo is resized to before the centre crop.

        ``load_model(model, classes=...)`` finds all of these for you; use the
        constructor only to set them by hand.
        """
        missing = [k for k, v in dict(layer_paths=layer_paths, classes=classes, mean=mean, std=std,
                                      input_size=input_size, resize_size=resize_size).items() if v is None]
        if missing:
            raise TypeError(
                f"Network(name, model, ...) takes every detail by hand, and {', '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} missing: load_model(model, classes=...) finds "
                "layers, input size and preprocessing for you")
        super().__init__()
        self.name = name
        self.model = model
        self.classes = list(classes)
        self.input_size = int(input_size)
        self.resize_size = int(resize_size)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        make_activations_out_of_place(model)
        modules = dict(model.named_modules())
        for layer, path in layer_paths.items():
            if path not in modules:
                raise ValueError(f"{name}: layer {layer!r} points to missing module {path!r}")
        self._layer_paths = dict(layer_paths)
        self._layer_modules = {k: modules[v] for k, v in layer_paths.items()}
        self._rf_cache: dict[str, ReceptiveField] = {}
        self._smallest: dict[tuple, int] = {}
        self.preprocessing = "given by hand"
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
        """The module whose output is `layer`."""
        self.check_layer(layer)
        return self._layer_modules[layer]

    def layer_path(self, layer: str) -> str:
        """The dotted path of `layer`'s module inside `self.model` (``conv5`` -> ``features.11``)."""
        self.check_layer(layer)
        return self._layer_paths[layer]

    def check_layer(self, layer: str) -> str:
        """`layer` if the network has it; otherwise a ValueError listing the layers it has."""
        if not isinstance(layer, str) or layer not in self._layer_paths:
            close = difflib.get_close_matches(str(layer), self.layers, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"{self.name} has no layer {layer!r}.{hint} Its layers are: {', '.join(self.layers)}."
            )
        return layer

    def class_index(self, target: int | str) -> int:
        """A class given by index or by name (case-insensitive; a unique prefix will do)."""
        n = len(self.classes)
        if checks.is_integer(target):
            return checks.index(target, "class index", n, f"{self.name} has classes")
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
        if isinstance(image, torch.Tensor) and image.dim() == 4 and image.shape[-1] == image.shape[-2] == self.input_size:
            return image.to(self.device, torch.float32)
        pil = as_pil(image)
        pil = TF.resize(pil, self.resize_size, interpolation=TF.InterpolationMode.BICUBIC)
        if crop:
            pil = TF.center_crop(pil, self.input_size)
        return TF.to_tensor(pil).unsqueeze(0).to(self.device)

    def preprocess_mask(self, mask: np.ndarray, crop: bool = True) -> np.ndarray:
        """Apply the exact resize and crop of `preprocess` to a boolean mask."""
        m = torch.as_tensor(np.asarray(mask, dtype=np.uint8))[None]
        h, w = m.shape[-2:]
        m = TF.resize(m, self.resize_size, interpolation=TF.InterpolationMode.NEAREST)
        if crop:
            m = TF.center_crop(m, self.input_size)
        return m[0].numpy().astype(bool)

    def as_batch(self, image, *, single: bool = False, size: int | None = None,
                 what: str = "this technique", map_size: bool = True) -> torch.Tensor:
        """The one way an image enters a technique: -> N x 3 x H x W float on the device, detached.

        `image`: a PIL image, a uint8 H x W x 3 array or the bytes of an image file go
        through `preprocess` (the model's resize and centre crop); a [0, 1] tensor
        (3 x H x W or N x 3 x H x W, any size) is used as it is. Values must be finite.
        `single` insists on exactly one image; `size` resizes the result to
        size x size pixels (smoothly, at least 16), for techniques that run at a size of
        their own (DeepDream, inversion). `map_size=False` skips the check that the image
        is large enough for a map at the last spatial layer (`check_image_size`), for a
        technique that reads an earlier layer (DeepDream's smaller octaves).
        """
        if isinstance(image, (bytes, bytearray, memoryview)):
            image = load_image(bytes(image), name="the uploaded file")  # BadImage: a ValueError
        x = image if isinstance(image, torch.Tensor) else self.preprocess(image)
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] != 3 or (single and x.shape[0] != 1):
            wanted = "one RGB image (1x3xHxW)" if single else "RGB images (Nx3xHxW)"
            raise ValueError(f"{what} takes {wanted}, not a tensor of shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"{what} takes [0, 1] float pixels; convert integer tensors with x.float() / 255")
        if x.shape[0] == 0:
            raise ValueError(f"the batch given to {what} is empty (0 images): give at least one image")
        x = x.detach().to(self.device, torch.float32)
        if not torch.isfinite(x).all():
            raise ValueError(f"the image given to {what} has NaN or infinite values")
        if not getattr(_NOISY, "depth", 0):
            checks.pixel_band(x, f"the image given to {what}", PIXEL_BAND)
        if size is not None:
            size = checks.integer(size, "size", low=16)
            if tuple(x.shape[-2:]) != (size, size):
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        if map_size:
            self.check_image_size(tuple(x.shape[-2:]), what)
        return x

    def check_image_size(self, hw: tuple[int, int], what: str = "this technique") -> None:
        """Refuse an image too small for the network to give a meaningful map: its last
        spatial layer would be smaller than 2 x 2 (`smallest_input`)."""
        if min(hw) >= self.input_size or self.device.type == "meta":
            return  # the size the network was made for, or larger: nothing to work out
        smallest = self.smallest_input()
        if min(hw) < smallest:
            layers = self.spatial_layers()
            raise ValueError(
                f"the image given to {what} is {hw[0]}x{hw[1]} pixels, too small for {self.name}: "
                f"its last spatial layer ({layers[-1] if layers else 'none'}) needs images of at least "
                f"{smallest}x{smallest} for a map of 2 x 2; give a larger image ({self.input_size} px is "
                f"the size it was made for)")

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
        """The `top` classes for one image: [(name, probability)], most probable first."""
        x = self.as_batch(image, single=True, what="predict")
        top = checks.integer(top, "top", low=1)
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
        with lock_for(self):
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
        with lock_for(self):  # the hooks live only while this thread holds the network
            for name in names:
                self.check_layer(name)
            # An in-place op later in the pass (DenseNet's F.relu(features, inplace=True)
            # after norm5) must not change what is recorded: a detached record is a copy;
            # a record with its graph hands the rest of the pass a copy instead, for the
            # layers found to be overwritten (`overwritten_layers`, one pass, cached).
            overwritten = set() if detach else self.overwritten_layers() & set(names)
            try:
                for name in names:
                    def hook(_m, _inp, out, name=name):
                        outputs[name] = out.detach().clone() if detach else out
                        if name in overwritten and isinstance(out, torch.Tensor):
                            return out.clone()
                    handles.append(self.module(name).register_forward_hook(hook))
                yield outputs
            finally:
                for h in handles:
                    h.remove()

    def forward_to(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        """Run the network only as far as `layer` and return its output."""
        def stop(_m, _inp, out):
            raise _StopForward(out)

        with lock_for(self):  # another thread's forward must never meet this hook
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
        self.check_layer(layer)
        return self._probe()[0][layer]

    def layer_shapes(self) -> dict[str, tuple[int, ...]]:
        """{layer: output shape without batch} at the model's input size (one forward, cached)."""
        return dict(self._probe()[0])

    def spatial_layers(self) -> list[str]:
        """The layers whose output is a spatial map (C x h x w with h * w > 1 at the
        input size), in forward order: where Grad-CAM, activations and patches look."""
        shapes = self._probe()[0]
        return [k for k in self.layers if len(shapes[k]) == 3 and shapes[k][1] * shapes[k][2] > 1]

    def overwritten_layers(self) -> frozenset:
        """Layers whose output tensor an in-place operation later in the forward pass
        overwrites (found once from the tensors' version counters)."""
        return self._probe()[1]

    def _probe(self) -> tuple[dict[str, tuple[int, ...]], frozenset]:
        key = (self.input_size, str(self.device))
        # one forward per input size and device, kept in the network's one cache (clear_caches forgets it)
        probes = cache_for(self).setdefault("layer probes", {})
        found = probes.get(key)
        if found is not None:
            return found
        outs: dict[str, tuple[torch.Tensor, int]] = {}
        handles = []
        with torch.no_grad(), self.guard():
            try:
                for layer, module in self._layer_modules.items():
                    def hook(_m, _inp, out, layer=layer):
                        if layer not in outs:  # a module run twice: its first output, as forward_to sees it
                            outs[layer] = (out, out._version if isinstance(out, torch.Tensor) else 0)
                    handles.append(module.register_forward_hook(hook))
                s = self.input_size
                self(torch.zeros(1, 3, s, s, device=self.device))
            finally:
                for h in handles:
                    h.remove()
        missing = [k for k in self.layers if k not in outs]
        if missing:
            raise RuntimeError(f"{self.name}: layers {', '.join(missing)} were never reached in the forward pass")
        bad = [k for k, (o, _) in outs.items() if not isinstance(o, torch.Tensor)]
        if bad:
            raise ValueError(f"{self.name}: layers {', '.join(bad)} do not output one tensor; "
                             "name modules that do (layers= in load_model)")
        shapes = {k: tuple(o.shape[1:]) for k, (o, _) in outs.items()}
        overwritten = frozenset(k for k, (o, v) in outs.items() if o._version != v)
        probes[key] = found = (shapes, overwritten)
        return found

    def smallest_input(self) -> int:
        """The smallest square image (pixels) for which the last spatial layer still has
        a map of at least 2 x 2: below it no technique can give a meaningful map."""
        key = (self.input_size, str(self.device))
        if key in self._smallest:
            return self._smallest[key]
        layers = self.spatial_layers()
        size = self.input_size
        if layers:
            last = layers[-1]
            h, w = self.layer_shape(last)[1:]
            size = min(self.input_size, max(1, math.ceil(2 * self.input_size / min(h, w))))
            while size < self.input_size:
                try:
                    with torch.no_grad(), self.guard():
                        out = self.forward_to(torch.zeros(1, 3, size, size, device=self.device), last)
                    if out.dim() == 4 and min(out.shape[-2:]) >= 2:
                        break
                except RuntimeError:
                    pass  # too small for some layer before: try larger
                size = min(self.input_size, size + max(1, size // 8))
        self._smallest[key] = size
        return size

    # -- geometry
    def receptive_field(self, layer: str) -> ReceptiveField:
        """Size, stride and offset of `layer`'s units in input pixels.

        Analytic: the convolutions and poolings executed up to the layer, composed in
        order (residual shortcuts and `downsample` branches do not widen the field and
        are skipped). Checked against `empirical_receptive_field` in the tests.
        """
        self.check_layer(layer)
        if layer not in self._rf_cache:
            self._rf_cache[layer] = analytic_receptive_field(self, layer)
        return self._rf_cache[layer]

    def executed_leaves(self, layer: str) -> tuple[list[tuple[str, nn.Module]], bool]:
        """Leaf modules run before `layer`'s output is ready, in execution order, as
        (path, module); and whether the layer is past a global pooling (so it sees the
        whole image). Found by one hooked forward pass under the network's lock."""
        names = {id(m): n for n, m in self.model.named_modules()}
        order: list[tuple[str, nn.Module]] = []
        handles = []
        self.module(layer)  # an unknown layer raises here, before any hook is set
        # The hooks go on under the network's lock, so another thread's forward pass never
        # runs through them (it would add its modules to `order`).
        with torch.no_grad(), self.guard():
            try:
                for m in self.model.modules():
                    if not list(m.children()):
                        handles.append(m.register_forward_hook(
                            lambda mod, i, o: order.append((names[id(mod)], mod))))
                s = self.input_size
                out = self.forward_to(torch.zeros(1, 3, s, s, device=self.device), layer)
            finally:
                for h in handles:
                    h.remove()
        # The target's own leaves finished before its hook stopped the pass.
        return order, out.dim() < 4


def make_activations_out_of_place(model: nn.Module) -> None:
    """Switch `model`'s in-place activation modules (``nn.ReLU(inplace=True)``, ...) to
    out-of-place: the same values, but they no longer overwrite the tensors hooks record."""
    for m in model.modules():
        if getattr(m, "inplace", False) is True:
            m.inplace = False
