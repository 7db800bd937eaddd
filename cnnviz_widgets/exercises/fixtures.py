"""The inputs the checkers try a learner's function on: the embedded models, the synthetic
shapes, the bundled photos (resized), seeded generators, and gradients computed on a copy
of an image with the model left untouched."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from PIL import Image

from ..engine.zoo.data import load_dataset
from ..engine.zoo.models import load_model
from ..engine.zoo.samples import sample_image

__all__ = ["model", "shapes_net", "effnet", "shapes_items", "to_tensor", "shape_image", "sample_photo",
           "ranked_classes", "class_label", "image_grad", "layer_image_grad", "seeded"]


@lru_cache(maxsize=None)
def model(name: str):
    return load_model(name)


def shapes_net():
    return model("shapes")


def effnet():
    return model("efficientnet_lite0")


@lru_cache(maxsize=None)
def shapes_items(seed: int = 2024, n: int = 20):
    data = load_dataset("shapes", n=n, seed=seed)
    return [data[i] for i in range(n)], list(data.classes)


def to_tensor(pil, device) -> torch.Tensor:
    a = np.asarray(pil.convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(a.copy()).permute(2, 0, 1)[None].to(device)


def shape_image(i: int, device):
    items, classes = shapes_items()
    item = items[i]
    return to_tensor(item.image, device), int(item.label), classes[item.label]


def sample_photo(name: str, height: int, width: int, device) -> torch.Tensor:
    return to_tensor(sample_image(name).convert("RGB").resize((width, height), Image.BICUBIC), device)


def ranked_classes(net, x) -> list[int]:
    with torch.no_grad():
        return net(x)[0].argsort(descending=True).tolist()


def class_label(net, i: int) -> str:
    return f"{i} ({net.classes[i]!r})"


def image_grad(net, x, score) -> torch.Tensor:
    """d score(net(x), x) / dx for a copy of x (no hooks, the model untouched)."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(score(net(x), x), x)
    return g


def layer_image_grad(net, x, layer, objective) -> torch.Tensor:
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(objective(net.forward_to(x, layer)), x)
    return g


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)

