"""cnnviz-widgets: a Jupyter course kit for "Visualizing and Understanding ConvNets".

Start with ``notebooks/00_start_here.ipynb``. The engine (``cnnviz_widgets.engine``)
computes; ``cnnviz_widgets.render`` turns arrays into pictures; the apps in
``cnnviz_widgets.widgets`` let a learner turn the knobs.

The common entry points are importable from here; they load lazily so that
``import cnnviz_widgets`` stays fast.
"""

from __future__ import annotations

import importlib
import os

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS = {
    "load_model": "engine.zoo.models",
    "available_models": "engine.zoo.models",
    "Network": "engine.core.network",
    "ModelUnavailable": "engine.zoo.models",
    "ReceptiveField": "engine.core.receptive_field",
    "load_image": "engine.core.images",
    "BadImage": "engine.core.images",
    "sample_image": "engine.zoo.samples",
    "sample_images": "engine.zoo.samples",
    "sample_names": "engine.zoo.samples",
    "load_dataset": "engine.zoo.data",
    "DatasetUnavailable": "engine.zoo.data",
}

__all__ = sorted(_EXPORTS) + ["quick_mode"]


def quick_mode() -> bool:
    """True when ``CNNVIZ_QUICK=1``: lessons shrink steps and sizes (tests, CI)."""
    return os.environ.get("CNNVIZ_QUICK", "") not in ("", "0")


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'cnnviz_widgets' has no attribute {name!r}")


def __dir__():
    return __all__
