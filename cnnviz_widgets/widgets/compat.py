"""The one place that knows ipywidgets 7 (Colab ships 7.7.1) from ipywidgets 8.

Everything else in `cnnviz_widgets.widgets` is written against the API the two
share and calls these helpers where they differ: FileUpload's `value` and the
tooltip trait's name.
"""

from __future__ import annotations

import datetime

import ipywidgets

IPYWIDGETS_MAJOR = int(ipywidgets.__version__.split(".")[0])


def uploaded_files(upload: ipywidgets.FileUpload) -> list[tuple[str, bytes]]:
    """(file name, content bytes) for each file in a FileUpload, in either version.

    ipywidgets 8: `value` is a tuple of dicts with ``name`` and ``content`` (a memoryview).
    ipywidgets 7: `value` is a dict ``{name: {"metadata": {...}, "content": bytes}}``.
    """
    value = upload.value
    files = []
    if isinstance(value, dict):  # ipywidgets 7
        for name, entry in value.items():
            files.append((str(name), bytes(entry.get("content", b""))))
    else:  # ipywidgets 8
        for entry in value or ():
            files.append((str(entry.get("name", "upload")), bytes(entry.get("content", b""))))
    return files


def clear_upload(upload: ipywidgets.FileUpload) -> None:
    """Empty a FileUpload so the same file can be uploaded again."""
    try:
        if IPYWIDGETS_MAJOR >= 8:
            upload.value = ()
        else:
            # 7.x rebuilds `value` from `metadata`/`data` whenever `_counter` changes: empty
            # those first, or resetting the counter re-sends the same file to the observers.
            upload.metadata = []
            upload.data = []
            upload._counter = 0
    except Exception:  # purely cosmetic: never let clearing break an upload
        pass


def set_tooltip(widget: ipywidgets.Widget, text: str) -> None:
    """ipywidgets 8 calls it `tooltip`; 7 calls it `description_tooltip`."""
    if IPYWIDGETS_MAJOR >= 8:
        widget.tooltip = text
    else:
        widget.description_tooltip = text


def tooltip_of(widget: ipywidgets.Widget) -> str:
    return (widget.tooltip if IPYWIDGETS_MAJOR >= 8 else widget.description_tooltip) or ""


def fake_upload_value(name: str, content: bytes):
    """A FileUpload `value` as the browser would send it, for headless tests."""
    if IPYWIDGETS_MAJOR >= 8:
        return ({"name": name, "type": "", "size": len(content), "content": memoryview(content),
                 "last_modified": datetime.datetime.now(datetime.timezone.utc)},)
    return {name: {"metadata": {"name": name, "type": "", "size": len(content)}, "content": content}}


def simulate_upload(upload: ipywidgets.FileUpload, name: str, content: bytes) -> None:
    """Put a file into a FileUpload as the browser would, in either version (headless tests).

    ipywidgets 7's `FileUpload.value` is read-only (the front end fills `data`/`metadata`
    and the widget computes `value`), so `upload.value = ...` raises TraitError there;
    `set_trait` sets it and notifies `value` observers in 7 and 8 alike.
    """
    if IPYWIDGETS_MAJOR >= 8:
        upload.set_trait("value", fake_upload_value(name, content))
    else:  # the 7.x front end's path: metadata and data, then the counter computes `value`
        upload.set_trait("metadata", [{"name": name, "type": "", "size": len(content), "lastModified": 0}])
        upload.set_trait("data", [bytes(content)])
        upload._counter = upload._counter + 1
