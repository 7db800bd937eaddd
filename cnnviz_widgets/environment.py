"""What lesson 00 reports: versions, the device, and which models work offline now."""

from __future__ import annotations

import platform
from importlib import metadata


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment_report() -> dict:
    """A dict a learner (or an instructor debugging a laptop) can read at a glance."""
    import torch

    from .engine.core.threads import use_allowed_cpus
    from .engine.zoo.models import available_models

    if torch.cuda.is_available():
        device = f"cuda ({torch.cuda.get_device_name(0)})"
    else:
        device = f"cpu, {use_allowed_cpus()}"
    return {
        "python": platform.python_version(),
        "packages": {p: _version(p) for p in ("cnnviz-widgets", "torch", "torchvision", "timm", "ipywidgets",
                                              "jupyterlab", "numpy", "pillow", "scikit-learn", "matplotlib")},
        "device": device,
        "models": {m.name: ("available offline" if m.offline else "needs one download") for m in available_models()},
    }


def format_report(report: dict) -> str:
    lines = [f"Python {report['python']} · device: {report['device']}"]
    lines += [f"  {name:<22} {version}" for name, version in report["packages"].items()]
    lines.append("Models:")
    lines += [f"  {name:<22} {state}" for name, state in report["models"].items()]
    return "\n".join(lines)
