"""Shared controls: model, image (with upload), layer, channel and class pickers.

Each is an ordinary ipywidget with a `.value` a test can set, plus a small method
that gives the engine object it stands for (`ModelPicker.network()`,
`ImagePicker.image`, `ClassPicker.class_index(net)`). Failures raise clear
exceptions that the owning `App` shows in its message line.
"""

from __future__ import annotations

import os
from typing import Callable

import ipywidgets as W
from PIL import Image

from ..engine import models
from ..engine.images import BadImage, load_image, sample_image, sample_names
from . import compat

__all__ = ["ModelPicker", "ImagePicker", "LayerPicker", "ChannelSlider", "ClassPicker"]

_WIDE = {"description_width": "70px"}


class ModelPicker(W.Dropdown):
    """Lists every model and whether it works offline now; `network()` loads the choice."""

    def __init__(self, value: str | None = None, names: list[str] | None = None, **kwargs):
        infos = {i.name: i for i in models.available_models()}
        names = names or list(infos)
        options = []
        for n in names:
            where = "embedded" if n in models.EMBEDDED_MODELS else ("cached" if infos[n].offline else "online")
            options.append((f"{n} ({where})", n))
        value = value or os.environ.get("CNNVIZ_MODEL") or models.DEFAULT_MODEL
        if value not in names:
            value = names[0]
        super().__init__(options=options, value=value, description="model", style=_WIDE, **kwargs)
        compat.set_tooltip(self, "Embedded models work offline; online ones download once into TORCH_HOME.")

    def network(self) -> models.Network:
        return models.load_model(self.value)


class ImagePicker(W.HBox):
    """Bundled photos plus your own uploads; `image` is the chosen PIL image.

    An upload that is not a usable image leaves the choice unchanged and raises
    nothing: the message goes to `on_error` (the app's message line).
    """

    def __init__(self, extra: dict[str, Image.Image] | None = None, value: str | None = None,
                 allow_upload: bool = True, description: str = "image"):
        self._images: dict[str, Image.Image] = {}
        for name in sample_names():
            self._images[name] = None  # loaded on first use
        for name, img in (extra or {}).items():
            self._images[name] = img
        names = list(self._images)
        self.dropdown = W.Dropdown(options=names, value=value if value in names else names[0],
                                   description=description, style=_WIDE)
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="upload")
        compat.set_tooltip(self.upload, "Upload a photo (JPEG, PNG, ...). It is checked before use.")
        self.on_error: Callable[[BaseException], None] = lambda e: None
        self.on_note: Callable[[str], None] = lambda text: None
        self.upload.observe(self._on_upload, names="value")
        super().__init__(children=[self.dropdown, self.upload] if allow_upload else [self.dropdown])

    @property
    def value(self) -> str:
        return self.dropdown.value

    @value.setter
    def value(self, name: str) -> None:
        self.dropdown.value = name

    def observe_value(self, handler: Callable[[dict], None]) -> None:
        self.dropdown.observe(handler, names="value")

    @property
    def image(self) -> Image.Image:
        name = self.dropdown.value
        if self._images.get(name) is None:
            self._images[name] = sample_image(name)
        return self._images[name]

    def add_image(self, name: str, image: Image.Image, select: bool = True) -> str:
        base, k = name, 2
        while name in self._images and self._images[name] is not image:
            name, k = f"{base} ({k})", k + 1
        self._images[name] = image
        self.dropdown.options = list(self._images)
        if select:
            self.dropdown.value = name
        return name

    def load_upload(self, name: str, data: bytes) -> str | None:
        """Check an uploaded file and select it; report a bad one and keep the old choice."""
        try:
            img = load_image(data, name=name)
        except BadImage as e:
            self.on_error(e)
            return None
        note = img.info.get("cnnviz_note")
        if note:
            self.on_note(f"{name}: {note}")
        return self.add_image(name, img)

    def _on_upload(self, change) -> None:
        files = compat.uploaded_files(self.upload)
        for name, data in files:
            self.load_upload(name, data)
        if files:
            compat.clear_upload(self.upload)


class LayerPicker(W.Dropdown):
    """The network's readable layer names, in forward order."""

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

    def class_index(self, net: models.Network, predicted: int | None = None) -> int:
        """The chosen class (by name or index text), or `predicted` when empty."""
        text = (self.value or "").strip()
        if not text:
            if predicted is None:
                raise ValueError("choose a class")
            return predicted
        return net.class_index(int(text) if text.lstrip("-").isdigit() else text)
