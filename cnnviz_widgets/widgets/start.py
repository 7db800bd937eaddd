"""Lesson 00's tiny app: pick or upload a photo, see what the network thinks it is.

If the picture and the bars appear, widgets render in this Jupyter.
"""

from __future__ import annotations

import html

from .base import App, single_step

__all__ = ["HelloApp"]


class HelloApp(App):
    """The network's top guesses for a photo (``notebooks/00_start_here.ipynb``).

    Headless use: set ``app.model_picker.value`` or ``app.image_picker.value`` (or
    ``app.image_picker.choose(picture)``), then read ``app.predictions``,
    ``app.view.value`` (PNG) and ``app.error``.
    """

    title = "Hello, network: what does it see?"

    def __init__(self, model=None, *, image=None, top: int = 5, threaded: bool = True):
        super().__init__(model, image=image, pickers=("model", "image"), threaded=threaded)
        self.top = top
        self.predictions: list[tuple[str, float]] = []
        self._answers: dict[tuple, tuple] = {}
        self.arrange([self.model_picker, self.image_picker, self.runner])

    def _key(self) -> tuple:
        return (id(self.net), self.image_picker.value, id(self.image_picker.image))

    def refresh(self) -> None:
        key, net, picture = self._key(), self.net, self.image_picker.image

        def predict():
            # What the network sees (resized and cropped) and its top guesses.
            x = net.as_batch(picture, single=True, what="the start app")
            self._answers[key] = (net.deprocess(x), net.predict(x, top=self.top))

        self.draw_when_ready(key, lambda: key in self._answers, single_step(predict), self.draw)

    def draw(self) -> None:
        seen, self.predictions = self._answers[self._key()]
        self.show_picture(seen)
        self.show_text("".join(
            f"<div style='font-family:monospace'>{html.escape(label):<24.24} "
            f"<span style='display:inline-block;background:#3b82f6;height:10px;width:{int(200 * p)}px'></span>"
            f" {p:.1%}</div>"
            for label, p in self.predictions
        ))
