"""An app as a still, for pages that have no kernel behind them.

The course website (`docs/build.sh`) executes every lesson, but its pages have no running
kernel, so a widget there would be an empty box. Where a lesson displays an app, the site
shows `app.still_bundle()` instead: the app's picture, text and settings as they are once it
has been built (a computation under way is awaited first), with a caption saying that the
app is live in Jupyter.

Nothing here changes how an app displays in JupyterLab, Binder or Colab: `still_bundle()` is
only called by whoever asks for a still (the site build registers it for its kernels).
"""

from __future__ import annotations

import base64
import html
import io
from typing import Iterator

import ipywidgets as W

from .runner import Runner

CAPTION = ("A still of the app with the lesson's settings. The app is live in Jupyter: run "
           "the lesson (Binder, Colab or your own JupyterLab) to turn its knobs.")
NO_PICTURE = "(no picture yet: the app draws one when you press its Run button)"


def still_bundle(app, timeout: float = 600, run_if_blank: bool = True) -> dict[str, str]:
    """A MIME bundle (``text/html`` and ``text/plain``) showing `app` as a still.

    An app whose picture waits for its Run button (the optimisation apps) would be a
    still without a picture: with `run_if_blank` its one Run button is pressed first, so
    the still shows the figure the app makes with the lesson's settings."""
    runners = [r for r in [getattr(app, "runner", None)] if isinstance(r, Runner)]
    runners += [r for r in descendants(app, Runner) if all(r is not known for known in runners)]
    for runner in runners:
        runner.wait(timeout)  # a computation started by the constructor draws when it ends
    pressed = None
    visible = [r for r in runners if r.run_button.layout.display != "none"]
    if run_if_blank and len(visible) == 1 and not _shows_something(bytes(app.view.value or b"")) \
            and not visible[0].run_button.disabled:
        pressed = visible[0].run_button
        pressed.click()
        for runner in runners:
            runner.wait(timeout)

    heading = getattr(app, "heading", "") or getattr(app, "title", "") or type(app).__name__
    picture = bytes(app.view.value or b"")
    mime = f"image/{app.view.format or 'png'}"
    if _shows_something(picture):
        img = (f'<img class="cnnviz-still-picture" alt="{html.escape(heading)}" '
               f'src="data:{mime};base64,{base64.b64encode(picture).decode("ascii")}">')
    else:
        img = f'<p class="cnnviz-still-empty">{html.escape(NO_PICTURE)}</p>'
    settings = settings_of(app) + ([f"after pressing {pressed.description}"] if pressed is not None else [])
    settings_html = (f'<p class="cnnviz-still-settings">{html.escape(" · ".join(settings))}</p>'
                     if settings else "")
    parts = [
        '<figure class="cnnviz-app-still">',
        f'<div class="cnnviz-still-heading"><b>{html.escape(heading)}</b></div>',
        settings_html,
        app.message.value or "",  # a note or an error, as the app shows it
        img,
        f'<div class="cnnviz-still-info">{app.info.value}</div>' if app.info.value else "",
        f'<figcaption class="cnnviz-still-caption">{html.escape(CAPTION)}</figcaption>',
        "</figure>",
    ]
    text = f"{type(app).__name__}: {heading} (a still; the app is live in Jupyter)"
    return {"text/html": "\n".join(p for p in parts if p), "text/plain": text}


def settings_of(app) -> list[str]:
    """'description value' for each labelled control the app shows, in display order."""
    out = []
    for w in descendants(app, W.Widget, shown_only=True):
        description = getattr(w, "description", "") or ""
        if not description or isinstance(w, (W.Button, W.FloatProgress, W.IntProgress, W.FileUpload)):
            continue
        value = getattr(w, "label", None) if hasattr(w, "options") else getattr(w, "value", None)
        if isinstance(value, bool):
            value = "on" if value else "off"
        if isinstance(value, float):
            value = f"{value:g}"
        if isinstance(value, (tuple, list)) and all(isinstance(v, (str, int)) for v in value):
            value = ", ".join(str(v) for v in value)
        if isinstance(value, (str, int)) and str(value) != "":
            out.append(f"{description} {value}")
    return out


def descendants(widget, kind, shown_only: bool = False) -> Iterator:
    """`widget` and every widget inside it (through `children`) that is a `kind`;
    `shown_only`: not those hidden (``layout.display = "none"``), nor what is inside them."""
    layout = getattr(widget, "layout", None)
    if shown_only and (getattr(layout, "display", None) == "none" or getattr(layout, "visibility", None) == "hidden"):
        return
    if isinstance(widget, kind):
        yield widget
    for child in getattr(widget, "children", ()) or ():
        yield from descendants(child, kind, shown_only)


def _shows_something(picture: bytes) -> bool:
    """False for no bytes or a picture of one colour (the blank placeholder before Run)."""
    if not picture:
        return False
    try:
        from PIL import Image

        with Image.open(io.BytesIO(picture)) as im:
            lo_hi = im.convert("RGB").getextrema()
    except Exception:  # noqa: BLE001 - an unreadable picture is still shown as it is
        return True
    return any(lo != hi for lo, hi in lo_hi)
