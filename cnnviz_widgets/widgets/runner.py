"""The Runner: long work in a worker thread, with progress, Stop, and the stale job.

An app never computes in its own thread for long: it hands the Runner a job, usually an
engine `*_iter` verb (`runner.start(lambda should_stop: verb_iter(..., should_stop=should_stop),
on_update, on_done)`), and the Runner drives it: a progress bar, a status line, Run and Stop
buttons, and the one place that cancels a job whose settings were replaced (a stale job
never draws). `single_step` makes a plain verb a one-step job; `in_sequence` joins
several engine runs into one job with one progress bar.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Sequence

import ipywidgets as W
import numpy as np

from ..engine.core.progress import Progress

__all__ = ["Runner", "single_step", "in_sequence", "MakeSteps", "describe", "debug"]

MakeSteps = Callable[[Callable[[], bool]], Iterable[Any]]


def single_step(compute: Callable[[], Any]) -> MakeSteps:
    """A plain engine verb as a one-step job for `Runner.start`: the progress bar goes
    from 0 to 1 when `compute()` returns."""
    def steps(_should_stop):
        yield Progress(1, 1, compute(), done=True)
    return steps


def in_sequence(runs: Sequence[Callable[[], Iterable[Progress]]]) -> Iterator[Progress]:
    """Several engine runs (each a function that starts one, e.g. ``lambda: verb_iter(...,
    should_stop=should_stop)``) as one stream of `Progress` for one bar: run i of k fills
    the bar's i-th k-th. Each run's own results pass through; a run that ends stopped
    ends the sequence, and only the last run's last progress is ``done``."""
    count = len(runs)
    for i, start in enumerate(runs):
        for p in start():
            stopped = getattr(p.result, "ended", "") == "stopped"
            total = max(1, p.total)
            yield Progress(i * total + p.step, count * total, p.result,
                           done=p.done and (stopped or i == count - 1))
            if stopped:
                return


def describe(e: BaseException) -> str:
    text = str(e).strip().strip('"')
    if isinstance(e, (ValueError, TypeError, KeyError, RuntimeError, OSError)) and text:
        return text
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def debug() -> bool:
    return os.environ.get("CNNVIZ_DEBUG", "") not in ("", "0")


class _Job:
    """One run of the Runner: its key, its stop flag, whether it is stale (superseded:
    it must not call back) and its thread."""

    def __init__(self, key: Any):
        self.key = key
        self.stop = threading.Event()
        self.stale = False
        self.active = True
        self.thread: threading.Thread | None = None


class Runner(W.HBox):
    """Run / Stop buttons and a progress bar around an engine generator; the one place
    that cancels a stale job.

    `start(make_steps, on_update, on_done, key=...)`: `make_steps(should_stop)` returns
    an iterable of progress objects (each with `step` and `total`, or a float in [0, 1]);
    `on_update(progress)` is called for each (throttled to `preview_every` seconds, and
    always for the last), `on_done(last, stopped)` once at the end. A job under way when
    another starts is stale: it is stopped within a step and never calls back, and the
    new job begins when it has ended (one job at a time on a network). `stop()` is the
    learner's Stop: the job ends within a step and `on_done(last, True)` keeps what it has.
    Jobs run in a worker thread so the notebook stays responsive (``threaded=False``:
    in the caller, for tests); `wait()` waits for the current job. Errors go to `on_error`.
    """

    def __init__(self, run_label: str | None = "Run", preview_every: float = 0.25, threaded: bool = True):
        self.run_button = W.Button(description=run_label or "Run", button_style="primary", icon="play")
        if run_label is None:
            self.run_button.layout.display = "none"
        self.stop_button = W.Button(description="Stop", icon="stop", disabled=True)
        self.progress = W.FloatProgress(value=0.0, min=0.0, max=1.0, layout=W.Layout(width="240px"))
        self.status = W.Label(value="")
        super().__init__(children=[self.run_button, self.stop_button, self.progress, self.status])
        self.preview_every = preview_every
        self.threaded = threaded
        self._job: _Job | None = None
        # Held while a job calls back, and while a job is made stale: a stale job never
        # draws over the picture of the settings that replaced it.
        self._lock = threading.RLock()
        self.on_error: Callable[[BaseException], None] = lambda e: None
        self.stop_button.on_click(lambda _b: self.stop())

    @property
    def running(self) -> bool:
        job = self._job
        return job is not None and job.active

    def busy_with(self, key: Any) -> bool:
        """A job for `key` (not None) is under way and not being stopped."""
        job = self._job
        return key is not None and job is not None and job.active and job.key == key and not job.stop.is_set()

    def stop(self) -> None:
        """The learner's Stop: the job ends within a step and keeps what it has."""
        job = self._job
        if job is not None and job.active:
            job.stop.set()
            self.status.value = "stopping…"

    def cancel(self) -> None:
        """Stop the job under way as stale: it ends within a step and never calls back."""
        with self._lock:
            job = self._job
            if job is None or job.stale:
                return
            job.stale = True
            job.stop.set()
            if job.active:
                self._idle("cancelled", "")

    def wait(self, timeout: float | None = 600) -> None:
        """Wait until no job runs (also one started by a job's own callback)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self._job
            thread = job.thread if job is not None else None
            if job is None or not job.active or thread is None or thread is threading.current_thread():
                if job is self._job:
                    return
                continue
            if thread.is_alive():
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            else:
                time.sleep(0.001)  # published a moment before its thread starts
            if deadline is not None and time.monotonic() >= deadline:
                return

    def start(self, make_steps: MakeSteps, on_update: Callable[[Any], None] | None = None,
              on_done: Callable[[Any, bool], None] | None = None, *, key: Any = None) -> bool:
        """Start a job (the one under way becomes stale). With a `key` equal to the one
        of a job under way, that job is left alone and False is returned."""
        if self.busy_with(key):
            return False
        job, previous = _Job(key), None

        def work() -> None:
            if previous is not None and previous.thread is not None and previous.thread is not threading.current_thread():
                previous.thread.join()
            try:
                self._drive(job, make_steps, on_update, on_done)
            except Exception as e:  # noqa: BLE001 - reported in the app
                with self._lock:
                    if not job.stale:
                        self._idle("failed", "danger")
                        self.on_error(e)
            finally:
                job.active = False
                with self._lock:
                    if self._job is job:
                        self.run_button.disabled, self.stop_button.disabled = False, True

        if self.threaded:  # before the job is published, so that `wait` always finds its thread
            job.thread = threading.Thread(target=work, daemon=True, name="cnnviz-runner")
        with self._lock:
            previous = self._job
            if previous is not None:
                previous.stale = True
                previous.stop.set()
            self._job = job
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.progress.value, self.progress.bar_style = 0.0, ""
        self.status.value = "working…"
        if job.thread is not None:
            job.thread.start()
        else:
            work()
        return True

    def _drive(self, job: _Job, make_steps: MakeSteps, on_update, on_done) -> None:
        if job.stale:
            return
        last, last_shown, stopped = None, 0.0, False
        for last in make_steps(job.stop.is_set):
            if job.stale:
                return
            self._call(job, self._show_progress, last)
            now = time.monotonic()
            if on_update is not None and now - last_shown >= self.preview_every:
                self._call(job, on_update, last)
                last_shown = now
            if job.stop.is_set():
                stopped = True
                break
        stopped = stopped or job.stop.is_set()
        if on_update is not None and last is not None:
            self._call(job, on_update, last)
        if on_done is not None:
            self._call(job, on_done, last, stopped)
        with self._lock:
            if not job.stale:
                self._idle("stopped" if stopped else "done", "warning" if stopped else "success")

    def _call(self, job: _Job, fn: Callable[..., Any], *args) -> None:
        with self._lock:
            if not job.stale:
                fn(*args)

    def _show_progress(self, progress: Any) -> None:
        self.progress.value = _fraction(progress)
        self.status.value = _status_text(progress)

    def _idle(self, status: str, bar_style: str) -> None:
        self.status.value = status
        self.progress.bar_style = bar_style
        self.run_button.disabled, self.stop_button.disabled = False, True


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
        loss = getattr(getattr(progress, "result", None), "loss", None)
        tail = f" · loss {loss:.3g}" if isinstance(loss, (int, float)) else ""
        return f"{step}/{total}{tail}"
    return "working…"
