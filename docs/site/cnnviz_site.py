"""The site build's own Sphinx extension.

- Pages carry no ipywidgets state: apps are stills, and an embedded widget state would
  only make the page heavier (and myst-nb would load the widget manager from a CDN).
- At the end, `.cnnviz-build.json` in the output folder says, for each lesson, whether it
  was executed in this build or taken from the cache, and how long it ran.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from sphinx.application import Sphinx


def _nb_metadata(env) -> dict:
    return getattr(env, "nb_metadata", {}) or {}


def drop_widget_state(app: Sphinx, env) -> None:
    for data in _nb_metadata(env).values():
        js_files = data.get("js_files") or {}
        for key in [k for k in js_files if k.startswith("ipywidgets")]:
            del js_files[key]


def note_start(app: Sphinx) -> None:
    app.env.cnnviz_build_started = time.time()


def write_report(app: Sphinx, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    site = app.config.cnnviz_site
    started = getattr(app.env, "cnnviz_build_started", 0.0)
    executions = {}
    for docname, data in sorted(_nb_metadata(app.env).items()):
        exec_data = data.get("exec_data")
        if not exec_data:
            continue
        executions[docname] = {
            # a lesson taken from the cache carries the time its record was made
            "executed": bool(exec_data.get("mtime", 0) >= started),
            "seconds": round(exec_data["runtime"], 1) if exec_data.get("runtime") is not None else None,
            "succeeded": bool(exec_data.get("succeeded")),
        }
    report = {"mode": site["mode"], "lessons": site["lessons"], "executions": executions}
    Path(app.outdir, site["report"]).write_text(json.dumps(report, indent=1))


def setup(app: Sphinx) -> dict:
    app.add_config_value("cnnviz_site", {}, "env")
    app.connect("builder-inited", note_start)
    app.connect("env-updated", drop_widget_state)
    app.connect("build-finished", write_report)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
