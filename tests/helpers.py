"""Assertions the test files share."""

from __future__ import annotations

import io
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image

from cnnviz_widgets.engine.models import hook_count


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


def png_to_array(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not PNG bytes"
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
