"""The one place that knows ipywidgets 7 (Colab ships 7.7.1) from ipywidgets 8.

Everything else in `cnnviz_widgets.widgets` is written against the API the two
share and calls these helpers where they differ: FileUpload's `value` and the
tooltip trait's name.
"""

from __future__ import annotations

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
