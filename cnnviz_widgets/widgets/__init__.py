"""The ipywidgets layer: shared controls and one app per lesson.

Apps compute nothing themselves: they call the engine (in their `Runner` when it
can take a while) and show what `render` draws. Every app stands on one skeleton,
`base.App` (see docs/ARCHITECTURE.md, "The app skeleton"). Each lesson's app is
importable from here, e.g. ``from cnnviz_widgets.widgets import OcclusionApp`` (the
list comes from the course table, `cnnviz_widgets.course`);
notebooks import only app classes from here, pictures from `cnnviz_widgets.render`.
"""

from __future__ import annotations

import importlib

from ..course import apps
from .base import App, Runner
from .controls import ChannelSlider, ClassPicker, ImagePicker, ImageUpload, LayerPicker, ModelPicker

# lesson apps, loaded on first use: name -> module, from the course table
_APPS: dict[str, str] = apps()

__all__ = sorted(_APPS) + ["App", "Runner", "ChannelSlider", "ClassPicker", "ImagePicker", "ImageUpload",
                           "LayerPicker", "ModelPicker"]


def __getattr__(name: str):
    if name in _APPS:
        return getattr(importlib.import_module(_APPS[name]), name)
    raise AttributeError(f"module 'cnnviz_widgets.widgets' has no attribute {name!r}")
