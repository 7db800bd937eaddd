"""Assertions the test files share."""

from __future__ import annotations

import datetime
import io
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image



def hook_count(module: torch.nn.Module) -> int:
    """Total forward/backward hooks on a module tree (tests assert this is unchanged)."""
    total = 0
    for m in module.modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            total += len(getattr(m, attr, {}) or {})
    return total


def model_state(net: torch.nn.Module) -> dict:
    """Everything an engine call must leave as it found it."""
    return {
        "hooks": hook_count(net),
        "training": [m.training for m in net.modules()],
        "requires_grad": [p.requires_grad for p in net.parameters()],
        "grads": [p.grad is None for p in net.parameters()],
        "types": [type(m).__name__ for m in net.modules()],
        "forwards": [("forward" in vars(m)) for m in net.modules()],  # no monkey-patched forward left
        "params": float(sum(p.double().sum() for p in net.parameters())),
    }


@contextmanager
def assert_restored(net: torch.nn.Module):
    """The body may call the engine (and may raise); afterwards the model is unchanged."""
    before = model_state(net)
    try:
        yield
    finally:
        after = model_state(net)
        for key in before:
            assert after[key] == before[key], f"engine call left the model changed: {key}"


def close_to_scale(ours, theirs, rel: float) -> None:
    """Assert two arrays agree to `rel` of the reference's scale (its largest |value|):
    float summation order differs between CPUs and batch sizes, so element-wise relative
    tolerances fail on near-zero entries and absolute ones depend on the values' scale."""
    ours = torch.as_tensor(np.asarray(ours) if not isinstance(ours, torch.Tensor) else ours).double()
    theirs = torch.as_tensor(np.asarray(theirs) if not isinstance(theirs, torch.Tensor) else theirs).double()
    assert ours.shape == theirs.shape, (tuple(ours.shape), tuple(theirs.shape))
    scale = float(theirs.abs().max())
    assert scale > 0, "a reference of zeros compares nothing"
    err = float((ours - theirs).abs().max())
    assert err <= rel * scale, f"largest difference {err:.3g} is more than {rel:g} of the scale {scale:.3g}"


def png_to_array(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not PNG bytes"
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


# --- driving ipywidgets headless, in 7.7 and 8 alike -------------------------------------

def tooltip_of(widget) -> str:
    """The tooltip `compat.set_tooltip` set: `tooltip` in ipywidgets 8, `description_tooltip` in 7."""
    from cnnviz_widgets.widgets.compat import IPYWIDGETS_MAJOR

    return (widget.tooltip if IPYWIDGETS_MAJOR >= 8 else widget.description_tooltip) or ""


def fake_upload_value(name: str, content: bytes):
    """A FileUpload `value` as the browser would send it."""
    from cnnviz_widgets.widgets.compat import IPYWIDGETS_MAJOR

    if IPYWIDGETS_MAJOR >= 8:
        return ({"name": name, "type": "", "size": len(content), "content": memoryview(content),
                 "last_modified": datetime.datetime.now(datetime.timezone.utc)},)
    return {name: {"metadata": {"name": name, "type": "", "size": len(content)}, "content": content}}


def simulate_upload(upload, name: str, content: bytes) -> None:
    """Put a file into a FileUpload as the browser would, in either version.

    ipywidgets 7's `FileUpload.value` is read-only (the front end fills `data`/`metadata`
    and the widget computes `value`), so `upload.value = ...` raises TraitError there;
    `set_trait` sets it and notifies `value` observers in 7 and 8 alike.
    """
    from cnnviz_widgets.widgets.compat import IPYWIDGETS_MAJOR

    if IPYWIDGETS_MAJOR >= 8:
        upload.set_trait("value", fake_upload_value(name, content))
    else:  # the 7.x front end's path: metadata and data, then the counter computes `value`
        upload.set_trait("metadata", [{"name": name, "type": "", "size": len(content), "lastModified": 0}])
        upload.set_trait("data", [bytes(content)])
        upload._counter = upload._counter + 1


# --- a network made by hand -----------------------------------------------------------------

TINY_LAYERS = {"tiny_a": "1", "tiny_b": "4", "tiny_fc": "8", "logits": "9"}
TINY_CLASSES = ["zebu", "quokka", "axolotl"]


class CountingNet(torch.nn.Sequential):
    """A Sequential that counts its forward passes, notes the threads of those that
    build a graph for a gradient, and holds those while `gate` is an unset Event (so a
    test can keep a gradient job in flight)."""

    def __init__(self, *layers):
        super().__init__(*layers)
        self.forwards = 0
        self.gradient_threads: list[str] = []
        self.gate = None
        self.entered = None

    def forward(self, x):
        import threading

        self.forwards += 1
        if torch.is_grad_enabled():
            self.gradient_threads.append(threading.current_thread().name)
            if self.gate is not None:
                if self.entered is not None:
                    self.entered.set()
                self.gate.wait(30)
        return super().forward(x)


def tiny_network(seed: int = 0):
    """A small CNN wrapped as a `Network` by hand: 32-px input, layers and classes whose
    names no kit model has, so a test sees which network an app used."""
    from torch import nn

    from cnnviz_widgets.engine.core.network import Network

    torch.manual_seed(seed)
    body = CountingNet(
        nn.Conv2d(3, 7, 5, padding=2), nn.ReLU(),        # tiny_a: 7 x 32 x 32
        nn.MaxPool2d(2),
        nn.Conv2d(7, 6, 3, padding=1), nn.ReLU(),        # tiny_b: 6 x 16 x 16
        nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        nn.Linear(96, 5), nn.ReLU(),                     # tiny_fc: 5
        nn.Linear(5, len(TINY_CLASSES)),                 # logits
    )
    return Network("tiny", body, dict(TINY_LAYERS), TINY_CLASSES, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
                   input_size=32, resize_size=32)
