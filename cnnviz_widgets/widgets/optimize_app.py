"""The base the four image-optimisation apps share (lessons 09-12).

An `OptimizeApp` is an `App` whose Runner's button starts a run: `prepare()` reads
and checks the settings on the caller's thread (a bad one is a message, not a run)
and returns an engine generator factory (yielding `engine.progress.Progress`); the
Runner drives it in a worker thread, every preview redraws the picture
(`picture(progress)`), and Stop ends the run within one step and keeps the image so
far (the engine yields a last progress whose ``result.ended`` is ``"stopped"``, drawn
like any other). The app never computes a gradient: it only calls the engine.
"""

from __future__ import annotations

import html
from typing import Any, Callable, Iterable, Sequence

import ipywidgets as W
import numpy as np

from .. import render
from .base import App

__all__ = ["OptimizeApp"]


class OptimizeApp(App):
    """Controls, Run/Stop/progress, a live picture. Subclasses implement `prepare`,
    and may override `picture`, `summary` and `on_model`."""

    run_label = "Run"
    display_height = 224

    def __init__(self, model=None, *, image=None, dataset=None, pickers: Sequence[str] = ("model",),
                 threaded: bool = True):
        super().__init__(model, image=image, dataset=dataset, pickers=pickers, threaded=threaded)
        self.last = None          # the last progress drawn
        self.previews = 0         # how many pictures the current run has drawn (tests wait on it)

    def arrange(self, controls: Sequence[W.Widget]) -> None:
        super().arrange([self.model_picker, *controls, self.runner])

    # -- what subclasses provide
    def prepare(self) -> Callable[[Callable[[], bool]], Iterable[Any]]:
        """Read and check the settings here (caller's thread); return the generator factory."""
        raise NotImplementedError

    def picture(self, progress) -> np.ndarray:
        return render.at_height(progress.result.image, self.display_height)

    def summary(self, progress, stopped: bool) -> str:
        losses = ", ".join(f"{k} {v:.3g}" for k, v in progress.result.losses.items())
        state = "stopped" if stopped else "done"
        return f"{state} after {progress.step}/{progress.total} steps · {html.escape(losses)}"

    # -- running
    def run(self) -> None:
        """Start a run (what the Run button does); errors show in the message line."""
        self.guarded(self._start)()

    def _start(self) -> None:
        if self.runner.running:
            raise ValueError("a run is in progress: press Stop first")
        make = self.prepare()
        self.previews = 0
        self.runner.start(make, self._update, self._done)

    def stop(self) -> None:
        self.runner.stop()

    def _update(self, progress) -> None:
        self.last = progress
        self.show_picture(self.picture(progress))
        self.previews += 1

    def _done(self, last, stopped: bool) -> None:
        if last is not None:
            self.show_text(self.summary(last, stopped))
