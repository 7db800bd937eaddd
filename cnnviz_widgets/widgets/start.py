"""Lesson 00's tiny app: pick or upload a photo, see what the network thinks it is.

If the picture and the bars appear, widgets render in this Jupyter.
"""

from __future__ import annotations

import html

from ..engine.models import load_model
from .base import App
from .controls import ImagePicker, ModelPicker


class HelloApp(App):
    title = "Hello, network: what does it see?"

    def __init__(self, model: str | None = None, image: str | None = None, top: int = 5):
        self.model = ModelPicker(value=model)
        self.image = ImagePicker(value=image)
        self.top = top
        super().__init__([self.model, self.image])
        self.image.on_error = self.show_error
        self.image.on_note = self.show_note
        self.watch([self.model], self.refresh)
        self.image.observe_value(lambda _c: self.guarded(self.refresh)())
        self.guarded(self.refresh)()

    def refresh(self) -> None:
        net = load_model(self.model.value)
        picture = self.image.image
        predictions = net.predict(picture, top=self.top)
        self.predictions = predictions
        self.show_picture(net.deprocess(net.preprocess(picture)))
        rows = "".join(
            f"<div style='font-family:monospace'>{html.escape(label):<24.24} "
            f"<span style='display:inline-block;background:#3b82f6;height:10px;width:{int(200 * p)}px'></span>"
            f" {p:.1%}</div>"
            for label, p in predictions
        )
        self.show_text(rows)
