"""Shared controls: the model, image, layer, channel and class pickers.

Each is an ordinary ipywidget with a `.value` a test can set, plus a small method
that gives the engine object it stands for (`ModelPicker.network()`,
`ImagePicker.image`, `ClassPicker.class_index(net)`). Failures raise clear
exceptions that the owning `App` shows in its message line.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, Callable

import ipywidgets as W
import numpy as np
import torch
from PIL import Image

from ..engine.core.images import BadImage, as_pil, load_image
from ..engine.zoo import models
from ..engine.zoo.data import load_dataset
from ..engine.zoo.samples import sample_image, sample_names
from . import compat

__all__ = ["ModelPicker", "DatasetPicker", "ImagePicker", "ImageUpload", "LayerPicker", "ChannelSlider", "ClassPicker", "resolve_network",
           "resolve_dataset"]

_WIDE = {"description_width": "70px"}


def resolve_network(model: Any = None, default: str | None = None) -> models.Network:
    """A `Network` as it is, or a model by name (None: `default`, then
    ``$CNNVIZ_MODEL``, then the embedded model). A wrong name raises the engine's one
    message (``unknown model 'alexnett'. Did you mean alexnet? ...``)."""
    if isinstance(model, models.Network):
        return model
    if model is None or isinstance(model, str):
        return models.load_model(model or default)
    if isinstance(model, torch.nn.Module):
        raise TypeError(f"model is a Network or a model name, not a bare {type(model).__name__} module: wrap it "
                        f"with load_model(model, classes=...), which finds its layers and preprocessing")
    raise TypeError(f"model is a Network or a model name, not {type(model).__name__}")


def resolve_dataset(dataset: Any = None):
    """A dataset as it is, or one by name (None: ``$CNNVIZ_DATA``, then ``shapes``);
    a wrong name raises the engine's one message."""
    if dataset is None or isinstance(dataset, str):
        return load_dataset(dataset)
    return dataset


class DatasetPicker(W.Dropdown):
    """The dataset given plus the kit's others (the shapes and the bundled photos
    offline, 500 Imagenette photos online); `dataset()` returns the choice, the same
    object each time it is chosen again."""

    KIT = {"shapes": ("shapes (offline)", {}), "samples": ("the bundled photos (offline)", {}),
           "imagenette": ("imagenette, 500 photos (online)", {"n": 500})}

    def __init__(self, dataset: Any = None, **kwargs):
        self._loaded: dict[str, Any] = {}
        options = [(label, name) for name, (label, _) in self.KIT.items()]
        given = None
        if dataset is not None:
            given = str(getattr(dataset, "name", "your dataset"))
            self._loaded[given] = dataset
            options.insert(0, (given, given))
        super().__init__(options=options, value=given or "shapes", description="dataset", style=_WIDE, **kwargs)
        compat.set_tooltip(self, "Online datasets download once into $CNNVIZ_DATA_HOME.")

    def dataset(self) -> Any:
        if self.value not in self._loaded:
            self._loaded[self.value] = load_dataset(self.value, **self.KIT[self.value][1])
        return self._loaded[self.value]


class ModelPicker(W.Dropdown):
    """The kit's models (and whether each works offline now) plus the networks given to
    it; `network()` returns the choice. A network given is listed under its own name
    and returned as it is, never swapped for the kit's model of that name."""

    def __init__(self, net: models.Network | str | None = None, **kwargs):
        self._given: dict[str, models.Network] = {}
        super().__init__(options=self._options(), description="model", style=_WIDE, **kwargs)
        compat.set_tooltip(self, "Embedded models work offline; online ones download once into TORCH_HOME.")
        if isinstance(net, models.Network):
            self.add_network(net)
        else:
            names = [value for _, value in self.options]
            wanted = net or os.environ.get("CNNVIZ_MODEL") or models.DEFAULT_MODEL
            self.value = wanted if wanted in names else names[0]

    def _options(self) -> list[tuple[str, str]]:
        options, zoo = [], set()
        for info in models.available_models():
            zoo.add(info.name)
            where = "embedded" if info.name in models.EMBEDDED_MODELS else ("cached" if info.offline else "online")
            options.append((f"{info.name} ({where})", info.name))
        return [(f"{name} (your network)", name) for name in self._given if name not in zoo] + options

    def add_network(self, net: models.Network, select: bool = True) -> None:
        """List `net` (under its name) and, by default, choose it."""
        keep = self.value
        if self._given.get(net.name) is not net:
            self._given[net.name] = net
            self.options = self._options()  # (resets the value: it is set again below)
        self.value = net.name if select or keep is None else keep

    def network(self) -> models.Network:
        return self._given.get(self.value) or models.load_model(self.value)


class ImageUpload(W.FileUpload):
    """An upload button for one image: each file is checked (`load_image`) and handed
    to `on_image(name, image)`; one that is not a usable image goes to `on_error`, and
    a conversion worth knowing about (16-bit, CMYK, EXIF rotation...) to `on_note`."""

    def __init__(self, **kwargs):
        super().__init__(accept="image/*", multiple=False, description="upload", **kwargs)
        compat.set_tooltip(self, "Upload a photo (JPEG, PNG, ...). It is checked before use.")
        self.on_image: Callable[[str, Image.Image], Any] = lambda name, image: None
        self.on_error: Callable[[BaseException], None] = lambda e: None
        self.on_note: Callable[[str], None] = lambda text: None
        self.observe(self._on_value, names="value")

    def load(self, name: str, data: bytes) -> Any:
        """Check one file and hand it on; a bad one is reported, never raised."""
        try:
            image = load_image(data, name=name)
        except BadImage as e:
            self.on_error(e)
            return None
        return self.hand_on(name, image)

    def hand_on(self, name: str, image: Image.Image) -> Any:
        """Give a checked image to `on_image` (saying what was converted, if anything)."""
        note = image.info.get("cnnviz_note")
        if note:
            self.on_note(f"{name}: {note}")
        return self.on_image(name, image)

    def _on_value(self, _change) -> None:
        files = compat.uploaded_files(self)
        for name, data in files:
            self.load(name, data)
        if files:
            compat.clear_upload(self)  # so that the same file can be uploaded again


@lru_cache(maxsize=1)
def _shape_examples(count: int = 4) -> dict[str, tuple[Image.Image, np.ndarray]]:
    """A few synthetic shapes (what the ``shapes`` model knows), offered beside the
    photos, each with its ground-truth object mask (lesson 13 scores maps against it)."""
    from ..engine.zoo.shapes import ShapesDataset

    data = ShapesDataset(count, seed=404)
    return {f"shape: {data.classes[item.label]}": (item.image, item.mask) for item in data}


class ImagePicker(W.HBox):
    """The bundled photos, a few synthetic shapes, and images of one's own; `image` is
    the chosen PIL image.

    `choose(image)` is the one way to seed it: a listed name, a PIL image, an array, a
    tensor, or an image file (its bytes, a FileUpload entry, a path). The upload button
    goes the same way. An upload that is not a usable image leaves the choice unchanged
    and raises nothing: the message goes to `on_error` (the app's message line).
    """

    def __init__(self, allow_upload: bool = True, description: str = "image"):
        self._images: dict[str, Image.Image | None] = dict.fromkeys(sample_names())  # loaded on first use
        examples = _shape_examples()
        self._images.update({name: image for name, (image, _mask) in examples.items()})
        self._masks: dict[str, np.ndarray] = {name: mask for name, (_image, mask) in examples.items()}
        self.dropdown = W.Dropdown(options=list(self._images), description=description, style=_WIDE)
        self.upload = ImageUpload()
        self.on_error: Callable[[BaseException], None] = lambda e: None
        self.on_note: Callable[[str], None] = lambda text: None
        self.upload.on_image = self.add_image
        self.upload.on_error = lambda e: self.on_error(e)
        self.upload.on_note = lambda text: self.on_note(text)
        super().__init__(children=[self.dropdown, self.upload] if allow_upload else [self.dropdown])

    @property
    def value(self) -> str:
        return self.dropdown.value

    @value.setter
    def value(self, name: str) -> None:
        self.dropdown.value = name

    @property
    def image(self) -> Image.Image:
        name = self.dropdown.value
        if self._images.get(name) is None:
            self._images[name] = sample_image(name)
        return self._images[name]

    @property
    def mask(self) -> np.ndarray | None:
        """The chosen image's ground-truth object mask (H x W bool, at the image's size)
        where one is known (the synthetic shapes, or given to `add_image`), else None."""
        mask = self._masks.get(self.dropdown.value)
        return None if mask is None else mask.copy()

    def add_image(self, name: str, image: Image.Image, select: bool = True, mask: np.ndarray | None = None) -> str:
        """List `image` under `name` (made unique) and select it; `mask`: its object's
        ground-truth mask, if known (H x W, the image's size)."""
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != (image.height, image.width):
                raise ValueError(f"the mask is {'x'.join(map(str, mask.shape))} but the image is "
                                 f"{image.height}x{image.width}")
        base, k = name, 2
        while name in self._images and self._images[name] is not image:
            name, k = f"{base} ({k})", k + 1
        self._images[name] = image
        if mask is not None:
            self._masks[name] = mask
        self.dropdown.options = list(self._images)
        if select:
            self.dropdown.value = name
        return name

    def choose(self, image: Any, name: str = "your image") -> str:
        """Select `image`: a listed name, a PIL image, an array or tensor, or an image file
        (bytes, a FileUpload entry, a path). Raises a clear error for anything else."""
        if isinstance(image, str) and image in self._images:
            self.dropdown.value = image
            return image
        if isinstance(image, (str, os.PathLike)) and not os.path.isfile(image):
            raise ValueError(f"unknown image {str(image)!r}: choose one of {', '.join(self._images)}, "
                             "or pass a PIL image, an array, a tensor or an image file")
        if isinstance(image, (str, os.PathLike)):
            name = os.path.basename(image)
        elif isinstance(image, dict):  # one FileUpload entry
            name = str(image.get("name") or name)
        elif not isinstance(image, (bytes, bytearray, memoryview)):
            return self.add_image(name, as_pil(image))
        return self.upload.hand_on(name, load_image(image, name=name))

    def load_upload(self, name: str, data: bytes) -> str | None:
        """Check an uploaded file and select it; report a bad one and keep the old choice."""
        return self.upload.load(name, data)


class LayerPicker(W.Dropdown):
    """The network's readable layer names, in forward order (those `only` accepts)."""

    def __init__(self, net: models.Network | None = None, value: str | None = None,
                 only: Callable[[models.Network, str], bool] | None = None, **kwargs):
        super().__init__(options=[], description="layer", style=_WIDE, **kwargs)
        self.only = only
        if net is not None:
            self.set_network(net, value)

    def set_network(self, net: models.Network, value: str | None = None) -> None:
        layers = [l for l in net.layers if self.only is None or self.only(net, l)]
        keep = value if value in layers else (self.value if self.value in layers else layers[-1 if not value else 0])
        if list(self.options) != layers:
            self.options = layers
        self.value = keep


class ChannelSlider(W.IntSlider):
    """A channel index bounded by the layer's channel count."""

    def __init__(self, **kwargs):
        kwargs.setdefault("continuous_update", False)
        super().__init__(min=0, max=0, value=0, description="channel", style=_WIDE, **kwargs)

    def set_count(self, n: int) -> None:
        with self.hold_trait_notifications():
            self.max = max(0, n - 1)
            if self.value > self.max:
                self.value = 0


class ClassPicker(W.Combobox):
    """A searchable class name; empty means "the predicted class"."""

    def __init__(self, net: models.Network | None = None, **kwargs):
        super().__init__(value="", placeholder="predicted class (type to search)", description="class",
                         ensure_option=False, continuous_update=False, style=_WIDE, **kwargs)
        if net is not None:
            self.set_network(net)

    def set_network(self, net: models.Network) -> None:
        self.options = list(net.classes)

    def chosen(self, net: models.Network) -> int | None:
        """The chosen class's index (by name or index text), None when empty."""
        text = (self.value or "").strip()
        if not text:
            return None
        return net.class_index(int(text) if text.lstrip("-").isdigit() else text)

    def class_index(self, net: models.Network, predicted: int | None = None) -> int:
        """The chosen class, or `predicted` when empty."""
        chosen = self.chosen(net)
        if chosen is not None:
            return chosen
        if predicted is None:
            raise ValueError("choose a class")
        return predicted
