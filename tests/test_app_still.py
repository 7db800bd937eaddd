"""`App.still_bundle()`: an app as a still for pages without a kernel (the course site),
and the site kernels' display hook that uses it. Names carry "app", so CI reruns these under
ipywidgets 7.7.1 (Colab's) as well."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import ipywidgets as W
import numpy as np
import pytest
from PIL import Image

from cnnviz_widgets.widgets.base import App
from cnnviz_widgets.widgets.still import CAPTION, NO_PICTURE

from .helpers import tiny_network

REPO = Path(__file__).resolve().parents[1]


class ScanApp(App):
    """Draws a known two-colour picture at the end of a scan in its Runner's thread,
    started when it is built (`start`) or by its Scan button."""

    title = "a scanning app"
    run_label = "Scan"

    def __init__(self, start: bool = True):
        super().__init__(tiny_network(), pickers=())
        self.level = W.IntSlider(value=3, min=0, max=9, description="level")
        self.hidden = W.Dropdown(options=["a", "b"], description="hidden", layout=W.Layout(display="none"))
        self.picture = np.zeros((6, 8, 3), np.uint8)
        self.picture[:3] = (255, 128, 0)
        self.start_at_once = start
        self.arrange([self.level, self.hidden, self.runner])

    def refresh(self) -> None:
        if self.start_at_once:
            self.run()

    def run(self) -> None:
        def steps(should_stop):
            for i in range(5):
                time.sleep(0.05)
                yield (i + 1) / 5

        self.runner.start(steps, on_done=lambda _last, _stopped: self.show_picture(self.picture))


def still_picture(bundle: dict) -> np.ndarray | None:
    m = re.search(r'<img class="cnnviz-still-picture"[^>]* src="data:image/png;base64,([^"]+)"', bundle["text/html"])
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(m.group(1)))).convert("RGB")) if m else None


def test_app_still_shows_the_apps_picture_text_and_settings():
    from cnnviz_widgets.widgets import HelloApp

    app = HelloApp(image="cat")
    bundle = app.still_bundle()
    assert set(bundle) == {"text/html", "text/plain"}
    shown = still_picture(bundle)
    assert shown is not None
    assert np.array_equal(shown, np.asarray(Image.open(io.BytesIO(bytes(app.view.value))).convert("RGB")))
    page = bundle["text/html"]
    assert app.info.value in page  # the top-5 bars
    assert "image cat" in page and html.escape(app.heading) in page
    assert html.escape(CAPTION) in page and "live in Jupyter" in CAPTION
    assert "HelloApp" in bundle["text/plain"]


def test_app_still_waits_for_a_scan_under_way():
    app = ScanApp(start=True)
    assert app.runner.running  # the constructor started it; nothing is drawn yet
    shown = still_picture(app.still_bundle())
    assert not app.runner.running
    assert shown is not None and np.array_equal(shown, app.picture)


def test_app_still_presses_run_when_the_picture_waits_for_it():
    app = ScanApp(start=False)
    idle = app.still_bundle(run_if_blank=False)
    assert still_picture(idle) is None and html.escape(NO_PICTURE) in idle["text/html"]
    assert app.runner.run_button.description == "Scan"
    ran = app.still_bundle()
    assert np.array_equal(still_picture(ran), app.picture)
    assert "level 3 · after pressing Scan" in ran["text/html"]
    assert "hidden" not in ran["text/html"]  # the settings are those a learner sees


def test_app_still_shows_the_apps_error():
    app = ScanApp(start=False)
    app.show_error(ValueError("layer 'conv9' does not exist"))
    page = app.still_bundle(run_if_blank=False)["text/html"]
    assert "cnnviz-error" in page and html.escape("layer 'conv9' does not exist") in page


_DISPLAY_PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
import ipywidgets as W
from tests.test_app_still import ScanApp

shell = InteractiveShell.instance()
app, slider = ScanApp(start=False), W.IntSlider(description="plain")

def shown(obj):
    # what a cell ending in `obj` sends to the front end: the displayhook's bundle, or
    # what the object published itself (ipywidgets 7's _ipython_display_)
    with capture_output() as cap:
        data, _ = shell.display_formatter.format(obj)
    bundles = [dict(data)] if data else []
    bundles += [dict(o.data) for o in cap.outputs]
    return [{k: (v if k == "text/html" else "") for k, v in b.items()} for b in bundles]

before = shown(app)
exec(compile(open(sys.argv[2]).read(), sys.argv[2], "exec"), {})
print(json.dumps({"before": before, "app": shown(app), "slider": shown(slider), "version": W.__version__}))
"""


def test_app_displays_as_a_widget_in_jupyter_and_as_a_still_in_site_kernels():
    startup = REPO / "docs" / "site" / "kernel_startup.py"
    proc = subprocess.run([sys.executable, "-c", _DISPLAY_PROBE, str(REPO), str(startup)], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    widget_view = "application/vnd.jupyter.widget-view+json"
    # a learner's Jupyter: the widget, and nothing that could be shown in its place
    [before] = seen["before"]
    assert widget_view in before and not any(k.startswith(("image/", "text/html")) for k in before), before
    # the site's kernels: the still only
    [still] = seen["app"]
    assert set(still) == {"text/html", "text/plain"} and 'class="cnnviz-app-still"' in still["text/html"]
    # any other widget keeps its own display (and the site tests flag it)
    [plain] = seen["slider"]
    assert widget_view in plain and "text/html" not in plain
