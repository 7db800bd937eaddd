"""The one skeleton every lesson app stands on: `App` (its `Runner` is in `widgets.runner`).

An `App` is a VBox that owns its controls, one picture (`view`, a PNG Image widget),
one text area (`info`) and one message line (`message`). It takes its network as a
`Network` or a model name (a network given is used as it is, never swapped for a
model of the same name), owns the model, image and class pickers it asks for
(`pickers=`), and switches model one way: the model picker calls `on_model(net)`,
then `refresh()`. It keeps its state on itself, never in globals, never calls
`display()` in its constructor, and reports every error inside itself, so a bad
upload or a wrong setting shows a message and the app keeps working.

Anything that can take longer than about 100 ms runs in the app's `Runner`: a worker
thread fed by an engine generator, with a progress bar and a Stop button that ends
the run within a step. Starting a job stops the one under way as stale: a stale job
never draws. Tests drive an app headless: set a control's `.value`, call
`app.runner.wait()` (or build the app with ``threaded=False``), then read
`app.view.value` (PNG bytes), `app.info.value` and `app.error`.
"""

from __future__ import annotations

import html
import traceback
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Sequence

import ipywidgets as W
import numpy as np

from .. import render
from ..engine.core.network import Network
from ..engine.zoo.data import model_for
from .controls import ClassPicker, DatasetPicker, ImagePicker, ModelPicker, resolve_dataset, resolve_network
from .runner import MakeSteps, Runner, debug, describe, single_step
from .still import still_bundle

__all__ = ["App", "Runner", "single_step"]

_BLANK_PNG = render.to_png(np.full((4, 4, 3), 255, np.uint8))
PICKERS = ("model", "dataset", "image", "class")

class App(W.VBox):
    """A lesson app: pickers and controls on top, then the message line, the picture
    and the text.

    A subclass calls ``super().__init__(model, image=..., pickers=(...))``, which sets
    `self.net` (and `self.dataset`), `self.runner` and the pickers it asked for
    (`model_picker`, `dataset_picker`, `image_picker`, `class_picker`); builds its own
    controls for `self.net`; watches them (`watch`); and ends with
    `self.arrange(controls)`, which lays everything out and draws the first picture. It
    overrides `refresh()` (what a change of setting does), `on_model(net)` and
    `on_dataset(dataset)` (adapt its controls to a newly chosen network or dataset) and,
    where the Runner has a button, `run()`.
    """

    title = ""
    #: The Runner's button ("Run", "Map", ...); None: the app computes on every change
    #: of setting and its Runner shows only progress and Stop.
    run_label: str | None = None

    def __init__(self, model: Network | str | None = None, *, image: Any = None, dataset: Any = None,
                 pickers: Sequence[str] = ("model",), threaded: bool = True, title: str | None = None,
                 **kwargs):
        unknown = set(pickers) - set(PICKERS)
        if unknown:
            raise ValueError(f"unknown pickers {sorted(unknown)}: choose from {', '.join(PICKERS)}")
        # Apps over a dataset (lessons 02, 03, 05) take `dataset=` (a dataset or its name);
        # their default model is the one the dataset's lesson uses.
        self.dataset = resolve_dataset(dataset) if "dataset" in pickers else None
        self.net = resolve_network(model, model_for(self.dataset) if self.dataset is not None else None)
        self.view = W.Image(format="png", layout=W.Layout(max_width="100%", height="auto", align_self="flex-start"))
        # A blank placeholder: an empty Image shows a broken-image icon in the browser.
        self.view.value = _BLANK_PNG
        self.info = W.HTML()
        self.message = W.HTML()
        self.error: str = ""
        self.note: str = ""
        self._problems: list[str] = []
        # Quiet until `arrange`: control changes made while building do not refresh.
        self._syncing = True
        self.runner = Runner(self.run_label, threaded=threaded)
        self.runner.on_error = self.show_error
        self.runner.run_button.on_click(lambda _b: self.guarded(self.run)())

        self.model_picker = self.dataset_picker = self.image_picker = self.class_picker = None
        if "model" in pickers:
            self.model_picker = ModelPicker(self.net)
            self.watch([self.model_picker], self._switch_model)
        if "dataset" in pickers:
            self.dataset_picker = DatasetPicker(self.dataset)
            self.watch([self.dataset_picker], self._switch_dataset)
        if "image" in pickers:
            self.image_picker = ImagePicker()
            self.image_picker.on_error = self.show_error
            self.image_picker.on_note = self.show_note
            if image is not None:
                self.guarded(self.image_picker.choose, later=True)(image)
            self.watch([self.image_picker.dropdown], self.refresh)
        if "class" in pickers:
            self.class_picker = ClassPicker(self.net)
            self.watch([self.class_picker], self.refresh)
        super().__init__(children=[], **kwargs)
        self.heading = self.title if title is None else title
        self.add_class("cnnviz-app")

    def arrange(self, controls: Sequence[W.Widget]) -> None:
        """Lay out the controls above the message line, the picture and the text; from
        here on, changes refresh; draw the first picture. Problems with the constructor's
        settings (a bad image, layer, ...) are shown once it is drawn."""
        header = [W.HTML(f"<b>{html.escape(self.heading)}</b>")] if self.heading else []
        self.children = header + list(controls) + [self.message, self.view, self.info]
        self._syncing = False
        self.guarded(self.refresh)()
        if self._problems:
            self.show_error("; ".join(self._problems))

    # -- what subclasses provide
    def refresh(self) -> None:
        """Show the current settings: draw from what is at hand, or compute in the Runner."""

    def on_model(self, net: Network) -> None:
        """Adapt the app's own controls (layers, channels, sizes...) to a newly chosen
        network. Called with control changes held quiet; `refresh()` follows."""

    def on_dataset(self, dataset) -> None:
        """Adapt the app's own controls (item sliders, labels...) to a newly chosen
        dataset. Called with control changes held quiet; `refresh()` follows."""

    def run(self) -> None:
        """What the Runner's button does: by default, show the current settings again."""
        self.refresh()

    # -- switching model (and dataset): the one way
    def _switch_model(self) -> None:
        net = self._chosen(self.model_picker, self.model_picker.network, self.net, self.net.name)
        if net is None:
            return
        with self.syncing():
            self.net = net
            if self.class_picker is not None:
                self.class_picker.set_network(net)
            self.on_model(net)
        self.refresh()

    def _switch_dataset(self) -> None:
        dataset = self._chosen(self.dataset_picker, self.dataset_picker.dataset, self.dataset,
                               getattr(self.dataset, "name", None))
        if dataset is None:
            return
        with self.syncing():
            self.dataset = dataset
            self.on_dataset(dataset)
        self.refresh()

    def _chosen(self, picker: W.Widget, load: Callable[[], Any], current: Any, current_value: Any) -> Any:
        """What `picker` now names, loaded; None if it is the one in use. If it cannot be
        loaded (an online model or dataset offline, say), the picker goes back and the
        message says why."""
        try:
            chosen = load()
        except Exception:
            self.set_quietly(picker, value=current_value)
            raise
        if chosen is current:
            return None
        self.runner.cancel()  # its result would belong to the old network or dataset
        return chosen

    # -- reporting
    def show_error(self, problem: BaseException | str) -> None:
        text = problem if isinstance(problem, str) else describe(problem)
        self.error = text
        self.message.value = f'<div style="color:#b00020" class="cnnviz-error">⚠ {html.escape(text)}</div>'

    def show_note(self, text: str) -> None:
        self.note = text
        if not self.error:
            self.message.value = f'<div style="color:#555" class="cnnviz-note">{html.escape(text)}</div>' if text else ""

    def clear_error(self) -> None:
        self.error = ""
        self.message.value = (f'<div style="color:#555" class="cnnviz-note">{html.escape(self.note)}</div>'
                              if self.note else "")

    def guarded(self, fn: Callable[..., Any], later: bool = False) -> Callable[..., Any]:
        """Wrap a callback so any exception becomes the app's message, never a traceback.
        `later`: while the app is being built, keep the message to show once it is drawn."""
        def call(*args, **kwargs):
            try:
                if not later:
                    self.clear_error()
                return fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - the app must keep working
                if later:
                    self._problems.append(describe(e))
                else:
                    self.show_error(e)
                if debug():
                    traceback.print_exc()
                return None
        return call

    def watch(self, controls: Iterable[W.Widget], callback: Callable[[], Any], names: str = "value") -> None:
        """Call `callback()` (guarded) whenever one of the controls changes, except while
        controls are being set quietly (`syncing`, `set_quietly`, before `arrange`)."""
        guarded = self.guarded(callback)

        def changed(_change) -> None:
            if not self._syncing:
                guarded()

        for c in controls:
            c.observe(changed, names=names)

    # -- keeping controls consistent without refresh storms
    @contextmanager
    def syncing(self):
        """Control changes made inside do not trigger watched callbacks."""
        previous, self._syncing = self._syncing, True
        try:
            yield
        finally:
            self._syncing = previous

    def set_quietly(self, widget: W.Widget, **traits) -> None:
        """Set traits in the given order (options before the value they allow), quietly."""
        with self.syncing():
            for name, value in traits.items():
                setattr(widget, name, value)

    # -- computing
    def draw_when_ready(self, key: Any, ready: Callable[[], bool], make_steps: MakeSteps,
                        draw: Callable[[], Any]) -> None:
        """Draw at once when the data for `key` is at hand (answers from caches stay
        instant and synchronous); otherwise compute it in the Runner, with progress and
        Stop, and draw when it finishes.

        A job under way for the same key is left alone: it draws the settings of the
        moment when it ends (so a draw-only control, moved meanwhile, is drawn then).
        A job for another key is stale: it is stopped and never draws. A message shown
        since the job started (e.g. about a bad argument) stays; a failing draw is added."""
        if self.runner.busy_with(key):
            return
        if ready():
            self.runner.cancel()
            draw()
            return

        def finish(_last, stopped: bool) -> None:
            if not stopped:
                try:
                    draw()
                except Exception as e:  # noqa: BLE001 - the app must keep working
                    self.show_error(e)

        self.runner.start(make_steps, on_done=finish, key=key)

    # -- output
    def show_picture(self, image) -> None:
        """Show an array/PIL image or PNG bytes in the app's picture area."""
        self.view.value = image if isinstance(image, (bytes, bytearray)) else render.to_png(image)

    def show_text(self, text_html: str) -> None:
        self.info.value = text_html

    def still_bundle(self, timeout: float = 600, run_if_blank: bool = True) -> dict:
        """The app as a still (a MIME bundle: its picture, text and settings, and a caption
        saying it is live in Jupyter) for pages with no kernel, such as the course site.
        See `widgets.still`. How the app displays in Jupyter is unchanged."""
        return still_bundle(self, timeout, run_if_blank)
