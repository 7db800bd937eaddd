"""The small base every lesson app stands on.

An `App` is a VBox that owns its controls, one picture (`view`, a PNG Image
widget), one text area (`info`) and one message line (`message`). It keeps its
state on itself, never in globals, never calls `display()` in its constructor, and
reports every error inside itself, so a bad upload or a wrong setting shows a
message and the app keeps working. Tests drive it headless: set a control's
`.value`, then read `app.view.value` (PNG bytes), `app.info.value` and
`app.error`.

Long computations go through `Runner`: a worker thread fed by an engine generator,
with a progress bar, a live preview and a Stop button that ends the run within a step.
"""

from __future__ import annotations

import html
import threading
import time
import traceback
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Sequence

import ipywidgets as W
import numpy as np

from .. import render

__all__ = ["App", "Runner"]

_BLANK_PNG = render.to_png(np.full((4, 4, 3), 255, np.uint8))


class App(W.VBox):
    """A lesson app: controls on top, then the picture, the text and the message line."""

    title = ""

    def __init__(self, controls: Sequence[W.Widget], title: str | None = None, **kwargs):
        self.view = W.Image(format="png", layout=W.Layout(max_width="100%", height="auto", align_self="flex-start"))
        # A blank placeholder: an empty Image shows a broken-image icon in the browser.
        self.view.value = _BLANK_PNG
        self.info = W.HTML()
        self.message = W.HTML()
        self.error: str = ""
        self.note: str = ""
        self._job_lock = threading.Lock()  # draw_when_ready's job, shared with the worker
        self._job_key = None
        self.heading = title or self.title
        header = W.HTML(f"<b>{html.escape(title or self.title)}</b>") if (title or self.title) else None
        children = ([header] if header else []) + list(controls) + [self.message, self.view, self.info]
        super().__init__(children=children, **kwargs)
        self.add_class("cnnviz-app")

    # -- reporting
    def show_error(self, problem: BaseException | str) -> None:
        text = problem if isinstance(problem, str) else _describe(problem)
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

    def guarded(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a callback so any exception becomes the app's message, never a traceback."""
        def call(*args, **kwargs):
            try:
                self.clear_error()
                return fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - the app must keep working
                self.show_error(e)
                if _debug():
                    traceback.print_exc()
                return None
        return call

    def connect_runner(self, runner: "Runner", on_run: Callable[[], Any]) -> None:
        """The runner reports its errors in this app's message line, and its Run
        button calls `on_run` (guarded)."""
        runner.on_error = self.show_error
        runner.run_button.on_click(lambda _b: self.guarded(on_run)())

    def draw_when_ready(self, runner: "Runner", key: Any, ready: Callable[[], bool],
                        make_steps: Callable[[Callable[[], bool]], Iterable[Any]], draw: Callable[[], Any],
                        current_key: Callable[[], Any]) -> None:
        """Draw at once when the data for `key` is at hand (answers from caches stay
        instant and synchronous); otherwise compute it in `runner`'s worker thread, with
        progress and Stop, and draw when it finishes.

        A job already under way for the same key is left alone: it draws the settings
        of the moment when it ends (so a draw-only control, moved meanwhile, is drawn
        then). A job for another key is stopped first. A finished job draws only if its
        key is still the current one."""
        with self._job_lock:
            if self._job_key is not None and self._job_key == key and runner.running:
                return
        if runner.running:
            runner.stop()
            runner.wait()
        if ready():
            draw()
            return
        with self._job_lock:
            self._job_key = key

        def finish(_last, stopped: bool) -> None:
            with self._job_lock:
                self._job_key = None  # from here on, a refresh draws by itself
            # The end of the action that started the work: a message shown since then
            # (e.g. about a bad argument) stays; only a failure of the drawing is added.
            if not stopped and current_key() == key:
                try:
                    draw()
                except Exception as e:  # noqa: BLE001 - the app must keep working
                    self.show_error(e)

        runner.start(make_steps, lambda _progress: None, finish)

    def watch(self, controls: Iterable[W.Widget], callback: Callable[[], Any], names: str = "value") -> None:
        """Call `callback()` (guarded) whenever one of the controls changes."""
        guarded = self.guarded(callback)
        for c in controls:
            c.observe(lambda _change: guarded(), names=names)

    # -- keeping controls consistent without refresh storms
    _syncing = False

    @contextmanager
    def syncing(self):
        """Control changes made inside do not trigger the app's refresh (check `_syncing`)."""
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

    def current_network(self):
        """The network `self.model` (a ModelPicker) names, kept in `self.net`.

        If the chosen model cannot be loaded (an online model offline, say), the picker
        goes back to the model that worked and the error propagates to the message line.
        `on_new_network(net)` is called when the network changes.
        """
        net = getattr(self, "net", None)
        if net is None or net.name != self.model.value:
            try:
                loaded = self.model.network()
            except Exception:
                if net is not None:
                    self.set_quietly(self.model, value=net.name)
                raise
            self.net = loaded
            self.on_new_network(loaded)
        return self.net

    def on_new_network(self, net) -> None:
        """Hook: adapt controls (layers, classes...) to a newly chosen network."""

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
        from .still import still_bundle

        return still_bundle(self, timeout, run_if_blank)


def _describe(e: BaseException) -> str:
    text = str(e).strip().strip('"')
    if isinstance(e, (ValueError, TypeError, KeyError, RuntimeError, OSError)) and text:
        return text
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _debug() -> bool:
    import os

    return os.environ.get("CNNVIZ_DEBUG", "") not in ("", "0")


class Runner(W.HBox):
    """Run / Stop buttons and a progress bar around an engine generator.

    `start(make_steps, on_update, on_done)`: `make_steps(should_stop)` returns an
    iterable of progress objects (each with `step` and `total`, or a float in
    [0, 1]); `on_update(progress)` is called for each (throttled to `preview_every`
    seconds, and always for the last), `on_done(last, stopped)` once at the end.
    Runs in a worker thread so the notebook stays responsive; `wait()` joins it
    (tests). Errors are reported through `on_error`.
    """

    def __init__(self, run_label: str = "Run", preview_every: float = 0.25, threaded: bool = True):
        self.run_button = W.Button(description=run_label, button_style="primary", icon="play")
        self.stop_button = W.Button(description="Stop", icon="stop", disabled=True)
        self.progress = W.FloatProgress(value=0.0, min=0.0, max=1.0, layout=W.Layout(width="240px"))
        self.status = W.Label(value="")
        super().__init__(children=[self.run_button, self.stop_button, self.progress, self.status])
        self.preview_every = preview_every
        self.threaded = threaded
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_error: Callable[[BaseException], None] = lambda e: None
        self.stop_button.on_click(lambda _b: self.stop())

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self.running:
            self.status.value = "stopping…"

    def wait(self, timeout: float | None = 600) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def start(self, make_steps: Callable[[Callable[[], bool]], Iterable[Any]],
              on_update: Callable[[Any], None], on_done: Callable[[Any, bool], None]) -> None:
        if self.running:
            self.status.value = "already running — press Stop first"
            return
        self._stop.clear()
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.progress.value, self.progress.bar_style = 0.0, ""
        self.status.value = "starting…"

        def work():
            last, last_shown, stopped = None, 0.0, False
            try:
                for last in make_steps(self._stop.is_set):
                    self.progress.value = _fraction(last)
                    now = time.monotonic()
                    if now - last_shown >= self.preview_every:
                        on_update(last)
                        last_shown = now
                    self.status.value = _status_text(last)
                    if self._stop.is_set():
                        stopped = True
                        break
                stopped = stopped or self._stop.is_set()
                if last is not None:
                    on_update(last)
                on_done(last, stopped)
                self.progress.bar_style = "warning" if stopped else "success"
                self.status.value = "stopped" if stopped else "done"
            except Exception as e:  # noqa: BLE001 - reported in the app
                self.progress.bar_style = "danger"
                self.status.value = "failed"
                self.on_error(e)
            finally:
                self.run_button.disabled, self.stop_button.disabled = False, True

        if self.threaded:
            self._thread = threading.Thread(target=work, daemon=True, name="cnnviz-runner")
            self._thread.start()
        else:
            self._thread = None
            work()


def _fraction(progress: Any) -> float:
    if isinstance(progress, (int, float, np.floating)):
        return float(progress)
    step, total = getattr(progress, "step", None), getattr(progress, "total", None)
    if step is not None and total:
        return min(1.0, float(step) / float(total))
    return 0.0


def _status_text(progress: Any) -> str:
    step, total = getattr(progress, "step", None), getattr(progress, "total", None)
    if step is not None and total:
        loss = getattr(progress, "loss", None)
        tail = f" · loss {loss:.3g}" if isinstance(loss, (int, float)) else ""
        return f"{step}/{total}{tail}"
    return ""
