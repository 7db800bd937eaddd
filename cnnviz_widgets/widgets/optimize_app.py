"""The base the four image-optimisation apps share (lessons 09-12).

An `OptimizeApp` owns a model picker, its lesson's controls and a `Runner`: Run
asks the subclass for an engine generator (`steps(should_stop)`, yielding `engine.progress.Progress`), the Runner drives
it in a worker thread, every preview redraws the picture (`picture(progress)`), and
Stop ends the run within one step and keeps the image so far (the engine yields a
last progress whose ``result.ended`` is ``"stopped"``, which is drawn like any other). Settings are
read and checked on the caller's thread, so a bad one is a message, not a run.
The app never computes a gradient: it only calls the engine.
"""

from __future__ import annotations

import html
from typing import Any, Callable, Iterable, Sequence

import ipywidgets as W
import numpy as np

from .. import render
from ..engine import models
from .base import App, Runner
from .controls import ModelPicker

__all__ = ["OptimizeApp", "image_array"]


def image_array(image, height: int | None = None) -> np.ndarray:
    """A 1x3xHxW [0,1] tensor -> uint8 HxWx3, optionally resized to `height`."""
    a = models.Network.deprocess(image)
    if height and a.shape[0] != height:
        w = max(1, int(round(a.shape[1] * height / a.shape[0])))
        a = render.resize_to(a, (height, w))
    return a


class OptimizeApp(App):
    """Controls, Run/Stop/progress, a live picture. Subclasses implement `steps`,
    and may override `picture`, `summary` and `on_model`."""

    run_label = "Run"
    display_height = 224

    def __init__(self, controls: Sequence[W.Widget], model=None, title: str | None = None):
        self.net = model if isinstance(model, models.Network) else models.load_model(model)
        names = [i.name for i in models.available_models()]
        self.model_picker = ModelPicker(value=self.net.name if self.net.name in names else None)
        self.runner = Runner(run_label=self.run_label)
        self.connect_runner(self.runner, self.run)
        self.last = None          # the last Progress drawn
        self.previews = 0         # how many pictures the current run has drawn (tests wait on it)
        super().__init__([self.model_picker, *controls, self.runner], title=title)
        self.model_picker.observe(lambda _c: self.guarded(self._switch_model)(), names="value")

    # -- what subclasses provide
    def steps(self, should_stop: Callable[[], bool]) -> Iterable[Any]:
        raise NotImplementedError

    def prepare(self) -> Callable[[Callable[[], bool]], Iterable[Any]]:
        """Read and check the settings here (caller's thread); return the generator factory."""
        return self.steps

    def picture(self, progress) -> np.ndarray:
        return image_array(progress.result.image, self.display_height)

    def summary(self, progress, stopped: bool) -> str:
        losses = ", ".join(f"{k} {v:.3g}" for k, v in progress.result.losses.items())
        state = "stopped" if stopped else "done"
        return f"{state} after {progress.step}/{progress.total} steps · {html.escape(losses)}"

    def on_model(self, net: models.Network) -> None:
        pass

    # -- running
    def _switch_model(self) -> None:
        if self.model_picker.value != self.net.name:
            self.net = self.model_picker.network()
            self.on_model(self.net)

    def run(self) -> None:
        """Start a run (what the Run button does); errors show in the message line."""
        def start():
            if self.runner.running:
                raise ValueError("a run is in progress: press Stop first")
            make = self.prepare()
            self.previews = 0
            self.runner.start(make, self._update, self._done)
        self.guarded(start)()

    def stop(self) -> None:
        self.runner.stop()

    def _update(self, progress) -> None:
        self.last = progress
        self.show_picture(self.picture(progress))
        self.previews += 1

    def _done(self, last, stopped: bool) -> None:
        if last is not None:
            self.show_text(self.summary(last, stopped))
