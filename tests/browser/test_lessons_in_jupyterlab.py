"""Every lesson works in a real JupyterLab, in Chromium.

For each lesson notebook (notebooks/NN_*.ipynb, new lessons are picked up by the glob):
open it in JupyterLab, run all cells from the Run menu, wait for the kernel, then check
that no cell failed, that the lesson's app rendered as widgets (not as a text repr),
and that changing one of its controls in the browser changes its picture. One screenshot
per lesson goes to tests/browser/screenshots/.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from .conftest import NOTEBOOKS, SCREENSHOTS

pytestmark = pytest.mark.browser

LESSONS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))

PAGE_LOAD_TIMEOUT = 180  # s: JupyterLab's first load on 2 busy cores
KERNEL_IDLE_TIMEOUT = 120  # s: kernel start
RUN_ALL_TIMEOUT = 300  # s: a lesson in quick mode takes well under a minute; the CPU is shared
CHANGE_TIMEOUT = 45  # s: one interaction (a select or a slider) redraws the picture
RUN_BUTTON_TIMEOUT = 120  # s: a Run button starts a (quick-mode) optimisation
INTERACTION_BUDGET = 240  # s: all tries at changing a control, together

# Where a lesson's app needs a specific interaction, try it first:
# (kind, control label, option; "" = the next option). The generic order follows anyway.
OVERRIDES: dict[str, list[tuple[str, str, str]]] = {
    "00_start_here": [("select", "image", "coffee")],
    # the Scan (Map) button re-reads a cached scan (same picture); a new layer draws anew
    "02_nearest_neighbors": [("select", "layer", "")],
    "03_dimensionality_reduction": [("select", "layer", "")],
    "05_max_activating_patches": [("select", "layer", "")],
    # the Compare button redraws the cached maps (same picture); a new image computes anew
    "13_comparing_attributions": [("select", "image", "")],
}

# Cells tagged like this are meant to raise; JupyterLab runs on past them.
RAISES_TAGS = {"raises-exception", "nbval-raises-exception"}

_CELLS_JS = """
() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')].map((c, i) => ({
    i,
    code: c.classList.contains('jp-CodeCell'),
    prompt: c.classList.contains('jp-CodeCell') ? (c.querySelector('.jp-InputPrompt')?.textContent || '').trim() : '',
    outs: [...c.querySelectorAll('.jp-OutputArea-output')].map(o => ({
        mime: o.getAttribute('data-mime-type') || '',
        text: (o.innerText || '').slice(0, 3000),
    })),
}))
"""

_MARK_APP_JS = """
() => {
    const apps = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .cnnviz-app')]
        .filter(a => !a.parentElement.closest('.cnnviz-app'));
    apps.forEach(a => a.removeAttribute('data-cnnviz-test'));
    if (!apps.length) return 0;
    apps[apps.length - 1].setAttribute('data-cnnviz-test', 'app');
    return apps.length;
}
"""

_PICTURES_JS = """
a => [...a.querySelectorAll('img')].filter(i => i.offsetParent !== null || i.getAttribute('src')).map(i => ({
    src: i.getAttribute('src') || '',
    loaded: i.complete && i.naturalWidth > 0,
}))
"""

_APP_ERROR_JS = "a => [...a.querySelectorAll('.cnnviz-error')].map(e => e.innerText.trim()).join(' | ')"

_STDERR_ERROR = re.compile(r"Traceback|^\s*\w*(Error|Exception)\b", re.M)
_WIDGET_REPR = re.compile(r"^\s*\w*(App|VBox|HBox|Box)\(", re.M)


class LessonFailure(AssertionError):
    pass


def _notebook_cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _describe_cell(cells: list[dict], i: int) -> str:
    if i >= len(cells):
        return f"cell {i}"
    src = cells[i]["source"]
    src = "".join(src) if isinstance(src, list) else src
    first = next((line for line in src.splitlines() if line.strip()), "")
    return f"cell {i} ({first.strip()[:100]!r})"


class Lesson:
    """One notebook open in JupyterLab, with the browser's console errors collected."""

    def __init__(self, server, context, notebook: Path):
        self.server = server
        self.notebook = notebook
        self.name = notebook.name
        self.cells = _notebook_cells(notebook)
        self.console: list[str] = []
        self.steps: list[str] = []
        self._deadline = float("inf")
        self.page = context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.console.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.set_default_timeout(60_000)

    # -- reporting
    def fail(self, problem: str, cell: int | None = None) -> None:
        where = f", {_describe_cell(self.cells, cell)}" if cell is not None else ""
        lines = [f"{self.name}{where}: {problem}"]
        if self.steps:
            lines.append("steps: " + "; ".join(self.steps))
        errors = list(dict.fromkeys(self.console))  # unique, in order
        lines.append("browser console errors:" + ("".join(f"\n  {e[:400]}" for e in errors[-20:]) or " none"))
        tail = self.server.log_tail(10)
        if tail:
            lines.append("JupyterLab server log (tail):\n" + tail)
        raise LessonFailure("\n".join(lines))

    # -- states
    def kernel_state(self) -> str | None:
        sessions = self.server.sessions_for(self.name)
        if not sessions:
            return None
        return (sessions[0].get("kernel") or {}).get("execution_state")

    def wait_kernel_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.kernel_state()
            ui = self.page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status="idle"]')
            if state == "idle" and ui.count() > 0:
                return
            time.sleep(0.5)
        self.fail(f"the kernel was not idle within {timeout:.0f}s (server says {state!r})")

    def cell_states(self) -> list[dict]:
        return self.page.evaluate(_CELLS_JS)

    # -- actions
    def open(self) -> None:
        t0 = time.monotonic()
        self.page.goto(self.server.lab_url(self.name, workspace=f"t{self.notebook.stem[:2]}"),
                       timeout=PAGE_LOAD_TIMEOUT * 1000, wait_until="domcontentloaded")
        try:
            self.page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell",
                                        timeout=PAGE_LOAD_TIMEOUT * 1000)
        except Exception:  # noqa: BLE001
            self.fail(f"JupyterLab did not show the notebook within {PAGE_LOAD_TIMEOUT}s")
        self.wait_kernel_idle(KERNEL_IDLE_TIMEOUT)
        self.steps.append(f"opened, kernel idle after {time.monotonic() - t0:.0f}s")

    def run_all(self) -> list[dict]:
        t0 = time.monotonic()
        self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").first.click()
        self.page.locator(".lm-MenuBar-item", has_text=re.compile(r"^\s*Run\s*$")).click()
        self.page.locator(".lm-Menu-item:not(.lm-mod-disabled)",
                          has_text=re.compile(r"^\s*Run All Cells\s*$")).click()
        deadline = time.monotonic() + RUN_ALL_TIMEOUT
        code_idx = [i for i, c in enumerate(self.cells) if c["cell_type"] == "code"]
        done_since = None
        while True:
            cells = self.cell_states()
            busy = [c["i"] for c in cells if c["code"] and "*" in c["prompt"]]
            numbered = [c for c in cells if c["code"] and re.search(r"\d", c["prompt"])]
            errored = any(self._errors_in(c) for c in cells)
            finished = not busy and (errored or len(numbered) == len(code_idx))
            if finished and self.kernel_state() == "idle":
                if done_since and time.monotonic() - done_since > 1.0:
                    break
                done_since = done_since or time.monotonic()
            else:
                done_since = None
            if time.monotonic() > deadline:
                running = busy[0] if busy else None
                self.fail(f"Run All Cells did not finish within {RUN_ALL_TIMEOUT}s"
                          + (" (still running)" if running is not None else
                             f" ({len(numbered)}/{len(code_idx)} code cells ran)"), cell=running)
            time.sleep(0.5)
        self.steps.append(f"ran all cells in {time.monotonic() - t0:.0f}s")
        return cells

    def _errors_in(self, cell: dict) -> list[str]:
        tags = set(self.cells[cell["i"]].get("metadata", {}).get("tags", [])) if cell["i"] < len(self.cells) else set()
        if tags & RAISES_TAGS:
            return []
        found = []
        for o in cell["outs"]:
            text = o["text"]
            if "stderr" in o["mime"] and _STDERR_ERROR.search(text):
                found.append(text)
            elif "Traceback (most recent call last)" in text or "Error displaying widget" in text:
                found.append(text)
        return found

    def check_outputs(self, cells: list[dict]) -> None:
        for c in cells:
            errors = self._errors_in(c)
            if errors:
                self.fail("the cell shows an error:\n" + errors[0][-2500:], cell=c["i"])
            for o in c["outs"]:
                if "text/plain" in o["mime"] and _WIDGET_REPR.search(o["text"]):
                    self.fail("a widget was shown as text, not rendered (are ipywidgets enabled in "
                              f"JupyterLab?): {o['text'][:200]!r}", cell=c["i"])

    def app(self):
        try:
            self.page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .cnnviz-app", timeout=30_000)
        except Exception:  # noqa: BLE001
            self.fail("no rendered app (an element with the CSS class cnnviz-app) in the notebook")
        n = self.page.evaluate(_MARK_APP_JS)
        app = self.page.locator('[data-cnnviz-test="app"]')
        app.scroll_into_view_if_needed()
        self.steps.append(f"{n} app(s) rendered")
        return app

    def pictures(self, app) -> list[dict]:
        return app.evaluate(_PICTURES_JS)

    def wait_settled(self, app, quiet: float = 1.0, timeout: float = 20) -> list[dict]:
        """The app's pictures once they stop changing (a first render may still be arriving)."""
        deadline = time.monotonic() + timeout
        last, since = self.pictures(app), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.25)
            now = self.pictures(app)
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet and all(p["loaded"] for p in now if p["src"]):
                break
        return last

    def wait_picture_change(self, app, before: list[dict], timeout: float) -> tuple[bool, str]:
        before_srcs = [p["src"] for p in before]
        started = time.monotonic()
        deadline = min(time.monotonic() + timeout, self._deadline)
        if deadline <= time.monotonic():
            return False, f"not tried: the {INTERACTION_BUDGET}s for changing controls were used up"
        while time.monotonic() < deadline:
            now = self.pictures(app)
            srcs = [p["src"] for p in now]
            if srcs != before_srcs and any(srcs) and all(p["loaded"] for p in now if p["src"]):
                return True, ""
            error = app.evaluate(_APP_ERROR_JS)
            if error:
                return False, f"the app reported: {error}"
            time.sleep(0.25)
        return False, f"the picture did not change within {time.monotonic() - started:.0f}s"

    # -- the generic interaction: a select, else a slider, else the Run button
    def change_one_control(self, app) -> str:
        self._deadline = time.monotonic() + INTERACTION_BUDGET
        before = self.wait_settled(app)
        if not any(p["src"] for p in before) and not self._run_buttons(app):
            self.fail("the app shows no picture (and has no Run button to make one)")
        attempts: list[str] = []
        for kind, label, target in OVERRIDES.get(self.notebook.stem, []):
            if kind == "select":
                for sel in self._selects(app):
                    if self._label(sel) == label and self._try_select(app, sel, attempts, target or None):
                        return "; ".join(attempts)
        # An app with a Runner (Run/Dream/... with a play icon) usually sets parameters with
        # its selects and sliders and draws on Run: there the button comes first.
        runner_first = bool(self._run_buttons(app))
        if runner_first:
            for button in self._run_buttons(app)[:1]:
                if self._try_button(app, button, attempts):
                    return "; ".join(attempts)
        for sel in self._selects(app)[:4]:
            if self._try_select(app, sel, attempts):
                return "; ".join(attempts)
        for handle in self._sliders(app)[:4]:
            if self._try_slider(app, handle, attempts):
                return "; ".join(attempts)
        for button in [] if runner_first else self._run_buttons(app)[:1]:
            if self._try_button(app, button, attempts):
                return "; ".join(attempts)
        self.fail("changing a control did not change the app's picture; tried: "
                  + ("; ".join(attempts) or "nothing (no select, slider or Run button found)"))
        return ""

    @staticmethod
    def _visible(locator) -> list:
        items = [locator.nth(k) for k in range(locator.count())]
        return [i for i in items if i.is_visible() and i.is_enabled()]

    def _selects(self, app) -> list:
        return self._visible(app.locator("select"))

    def _sliders(self, app) -> list:
        # ipywidgets 8 draws sliders with noUiSlider (a focusable .noUi-handle that takes
        # arrow keys); a plain range input is the fallback.
        return self._visible(app.locator(".noUi-handle, input[type=range]"))

    def _run_buttons(self, app) -> list:
        # The Runner's start button: labelled Run (or the lesson's verb) with a play icon.
        buttons = app.locator("button").filter(has=app.page.locator("i.fa-play"))
        run = app.locator("button").filter(has_text=re.compile(r"^\s*Run\b"))
        return self._visible(run) + self._visible(buttons)

    @staticmethod
    def _label(el) -> str:
        return (el.evaluate(
            "e => { const box = e.closest('.widget-inline-hbox, .widget-hslider, .widget-vslider');"
            " const l = box && box.querySelector('.widget-label'); return l ? l.textContent : ''; }") or "").strip()

    def _try_select(self, app, sel, attempts: list[str], target: str | None = None,
                    timeout: float = CHANGE_TIMEOUT) -> bool:
        before = self.wait_settled(app)
        options = sel.evaluate("s => [...s.options].map(o => ({value: o.value, label: o.textContent, disabled: o.disabled}))")
        current = sel.input_value()
        values = [o["value"] for o in options]
        name = self._label(sel)
        if target is None:
            usable = [o for o in options if not o["disabled"] and "online" not in o["label"].lower()]
            if len(usable) < 2 or current not in values:
                return False
            start = values.index(current)
            choice = next((o for o in options[start + 1:] + options[:start] if o in usable), None)
            if choice is None:
                return False
            target = choice["value"]
        elif target not in values:
            attempts.append(f"select {name!r}: no option {target!r} in {values}")
            return False
        sel.select_option(value=target)
        ok, why = self.wait_picture_change(app, before, timeout)
        attempts.append(f"select {name!r} {current!r} -> {target!r}: {'picture changed' if ok else why}")
        if not ok:  # put it back before trying another control
            sel.select_option(value=current)
            self.wait_settled(app)
        return ok

    def _try_slider(self, app, handle, attempts: list[str], timeout: float = CHANGE_TIMEOUT) -> bool:
        before = self.wait_settled(app)
        now, lo, hi = (handle.get_attribute(a) for a in ("aria-valuenow", "aria-valuemin", "aria-valuemax"))
        if now is None:  # input[type=range]
            now, lo, hi = handle.input_value(), handle.get_attribute("min"), handle.get_attribute("max")
        try:
            now_f, lo_f, hi_f = float(now), float(lo), float(hi)
        except (TypeError, ValueError):
            now_f, lo_f, hi_f = 0.0, 0.0, 1.0
        if lo_f == hi_f:
            return False
        key = "ArrowRight" if now_f < hi_f else "ArrowLeft"
        handle.focus()
        handle.press(key)
        ok, why = self.wait_picture_change(app, before, timeout)
        after = handle.get_attribute("aria-valuenow") or handle.input_value()
        attempts.append(f"slider {self._label(handle)!r} {now} -> {after} ({key}): "
                        f"{'picture changed' if ok else why}")
        return ok

    def _try_button(self, app, button, attempts: list[str]) -> bool:
        before = self.wait_settled(app)
        label = button.inner_text().strip()
        button.click()
        ok, why = self.wait_picture_change(app, before, RUN_BUTTON_TIMEOUT)
        attempts.append(f"button {label!r}: {'picture changed' if ok else why}")
        return ok

    def screenshot(self) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        try:
            app = self.page.locator('[data-cnnviz-test="app"]')
            if app.count():  # the app's controls at the top of the view
                app.evaluate("a => a.scrollIntoView({block: 'start'})", timeout=5_000)
                time.sleep(0.3)
            self.page.screenshot(path=str(SCREENSHOTS / f"{self.notebook.stem}.png"), timeout=30_000)
        except Exception:  # noqa: BLE001 - a screenshot never hides the real result
            pass


@pytest.fixture
def lab_context(chromium):
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield context
    finally:
        context.close()


@pytest.mark.parametrize("notebook", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_and_its_app_answers_in_jupyterlab(lab_server, lab_context, notebook):
    copy = lab_server.root / notebook.name
    if not copy.exists():  # landed after the server started: JupyterLab serves its root live
        copy.write_bytes(notebook.read_bytes())
    lesson = Lesson(lab_server, lab_context, copy)
    t0, outcome, failure = time.monotonic(), "ERROR", None
    try:
        lesson.open()
        cells = lesson.run_all()
        lesson.check_outputs(cells)
        app = lesson.app()
        lesson.steps.append(lesson.change_one_control(app))
        outcome = "passed"
    except LessonFailure as e:
        outcome, failure = "FAILED", str(e)
    finally:
        lesson.screenshot()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        with open(SCREENSHOTS / "report.txt", "a") as log:
            log.write(f"{time.strftime('%H:%M:%S')} {notebook.stem}: {outcome} "
                      f"in {time.monotonic() - t0:.0f}s; " + "; ".join(lesson.steps) + "\n")
        lesson.page.close()
        lab_server.shutdown_sessions(notebook.name)
    if failure:
        pytest.fail(failure, pytrace=False)
