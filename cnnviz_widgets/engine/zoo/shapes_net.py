"""``ShapesNet``: the small AlexNet-shaped CNN the kit trains on the synthetic shapes set.

Its modules mirror torchvision's AlexNet index for index, so one layer-name table serves
both networks::

    conv1=features.1  conv2=features.4  conv3=features.7  conv4=features.9
    conv5=features.11 fc6=classifier.2  fc7=classifier.5  fc8=classifier.6

Input: 64x64 RGB, normalised as ``(x - MEAN) / STD`` with ``x`` in [0, 1].  conv1 has
large (9x9) kernels so its filters are worth looking at (lesson 01).  The bundled weights
(``assets/shapes_net.pt``, float16) are reproduced by
``python -m cnnviz_widgets.engine.zoo.train_shapes``; see ``assets/shapes_net.md``.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .shapes import SHAPE_CLASSES

__all__ = [
    "ShapesNet",
    "MEAN",
    "STD",
    "INPUT_SIZE",
    "LAYER_NAMES",
    "WEIGHTS_PATH",
    "SNAPSHOTS_PATH",
    "build_shapes_net",
    "load_shapes_state_dict",
    "load_conv1_snapshots",
    "filter_smoothness",
]

INPUT_SIZE = 64
# per-channel mean / std of the shapes images (x in [0, 1]), measured on the training set
MEAN = (0.5, 0.5, 0.5)
STD = (0.25, 0.25, 0.25)

LAYER_NAMES = {
    "conv1": "features.1",
    "conv2": "features.4",
    "conv3": "features.7",
    "conv4": "features.9",
    "conv5": "features.11",
    "fc6": "classifier.2",
    "fc7": "classifier.5",
    "fc8": "classifier.6",
}

_ASSETS = Path(__file__).resolve().parents[2] / "assets"
WEIGHTS_PATH = _ASSETS / "shapes_net.pt"
SNAPSHOTS_PATH = _ASSETS / "shapes_conv1_snapshots.pt"


class ShapesNet(nn.Module):
    """AlexNet's layout at 1/4 the width and for 64x64 inputs.

    Spatial sizes: 64 -conv1(9x9, stride 3)-> 22 -pool-> 11 -conv2(5x5)-> 11 -pool-> 6
    -conv3..5(3x3)-> 6 -pool-> 3 -avgpool-> 3x3 -> fc6 -> fc7 -> fc8.
    """

    def __init__(self, num_classes: int = len(SHAPE_CLASSES), dropout: float = 0.1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, kernel_size=9, stride=3, padding=4),  # 0
            nn.ReLU(inplace=False),  # 1 conv1
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),  # 2
            nn.Conv2d(32, 64, kernel_size=5, padding=2),  # 3
            nn.ReLU(inplace=False),  # 4 conv2
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),  # 5
            nn.Conv2d(64, 96, kernel_size=3, padding=1),  # 6
            nn.ReLU(inplace=False),  # 7 conv3
            nn.Conv2d(96, 96, kernel_size=3, padding=1),  # 8
            nn.ReLU(inplace=False),  # 9 conv4
            nn.Conv2d(96, 64, kernel_size=3, padding=1),  # 10
            nn.ReLU(inplace=False),  # 11 conv5
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),  # 12
        )
        self.avgpool = nn.AdaptiveAvgPool2d((3, 3))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),  # 0
            nn.Linear(64 * 3 * 3, 256),  # 1
            nn.ReLU(inplace=False),  # 2 fc6
            nn.Dropout(p=dropout),  # 3
            nn.Linear(256, 256),  # 4
            nn.ReLU(inplace=False),  # 5 fc7
            nn.Linear(256, num_classes),  # 6 fc8
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal init for ReLU layers (biases zero), uses the global torch RNG.

        conv1 starts as small white noise (a tenth of the Kaiming scale) so that what it
        learns, not what it started from, dominates its final filters."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        with torch.no_grad():
            self.features[0].weight.mul_(0.1)
        nn.init.normal_(self.classifier[6].weight, std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def load_shapes_state_dict(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The bundled weights as a float32 state dict (stored as float16 on disk)."""
    path = Path(path) if path is not None else WEIGHTS_PATH
    if not path.is_file():
        raise FileNotFoundError(
            f"shapes network weights not found at {path}; "
            "recreate them with `python -m cnnviz_widgets.engine.zoo.train_shapes`"
        )
    sd = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}


def build_shapes_net(pretrained: bool = True) -> ShapesNet:
    """A ``ShapesNet`` in eval mode, with the bundled weights when ``pretrained``."""
    net = ShapesNet()
    if pretrained:
        net.load_state_dict(load_shapes_state_dict())
    return net.eval()


def load_conv1_snapshots(path: str | Path | None = None) -> list[dict]:
    """conv1 weights recorded during training: a list of ``{"step": int, "weight":
    float32 tensor (32, 3, 9, 9)}`` in step order; the first is the initialisation and
    the last equals the shipped conv1 (up to float16 rounding)."""
    path = Path(path) if path is not None else SNAPSHOTS_PATH
    snaps = torch.load(path, map_location="cpu", weights_only=True)
    return [{"step": int(s["step"]), "weight": s["weight"].float()} for s in snaps]


def filter_smoothness(weight: torch.Tensor) -> float:
    """How rough a bank of conv filters is: lower = smoother.

    For each filter (out_channel), remove its mean, then take the ratio of the energy of the
    differences between neighbouring taps (horizontal and vertical, all input channels) to
    the filter's total energy, halved so white noise scores about 1.0 and a constant-slope
    ramp close to 0.  Returns the mean over filters.  Works on any (O, C, kH, kW) weight.
    """
    w = weight.detach().float()
    if w.dim() != 4:
        raise ValueError(f"expected a (out, in, kH, kW) weight, got shape {tuple(w.shape)}")
    w = w - w.mean(dim=(1, 2, 3), keepdim=True)
    energy = (w**2).mean(dim=(1, 2, 3)).clamp_min(1e-12)
    dx = (w[..., :, 1:] - w[..., :, :-1]) ** 2
    dy = (w[..., 1:, :] - w[..., :-1, :]) ** 2
    rough = 0.5 * (dx.mean(dim=(1, 2, 3)) + dy.mean(dim=(1, 2, 3))) / 2
    return float((rough / energy).mean())
