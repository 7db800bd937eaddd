"""Which networks incremental occlusion can run, as `ops`.

Three families, recognised by module type and layout (anything else is `Unsupported`,
and occlusion falls back to the naive batched forward):

- chains: ``model.features`` an ``nn.Sequential`` of convolutions, poolings and
  element-wise layers, then ``avgpool -> flatten -> classifier`` (torchvision AlexNet
  and VGG, the kit's ShapesNet);
- timm's EfficientNet built of `DepthwiseSeparableConv` and `InvertedResidual` blocks
  without squeeze-excitation (EfficientNet-Lite0: between the stem and the global pool
  every operation is local: convolutions, depthwise ones included, batch norm, ReLU6,
  residual additions);
- torchvision's ResNet (`BasicBlock`, `Bottleneck`).

Squeeze-excitation (EfficientNet-B0) is global: one patch changes every position of
the block's output, so there is nothing to save there.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .ops import Add, Pointwise, Save, Window, fuse, pair

__all__ = ["Unsupported", "network_ops"]

ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.GELU, nn.LeakyReLU, nn.BatchNorm2d, nn.Dropout,
               nn.Dropout2d, nn.Identity)
Tail = Callable[[torch.Tensor], torch.Tensor]


class Unsupported(ValueError):
    """The network (or one of its layers) cannot be run incrementally."""


def _elementwise(m: nn.Module) -> bool:
    if type(m) in ELEMENTWISE:
        return True
    # timm's batch norm with its activation (in eval mode: per channel, then per value)
    if type(m).__name__ == "BatchNormAct2d" and isinstance(m, nn.BatchNorm2d):
        return all(_elementwise(c) for c in (getattr(m, "drop", nn.Identity()), getattr(m, "act", nn.Identity())))
    return False


def layer_op(m: nn.Module):
    """The op for one layer of a chain: Pointwise, Window, or Unsupported."""
    if _elementwise(m):
        return Pointwise(m)
    if type(m) is nn.Conv2d:
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise Unsupported(f"a convolution with padding {m.padding!r} ({m.padding_mode})")
        if pair(m.kernel_size) == (1, 1) and pair(m.stride) == (1, 1) and pair(m.padding) == (0, 0):
            return Pointwise(m)
        return Window(m)
    if type(m) is nn.MaxPool2d and not m.return_indices:
        return Window(m)
    if type(m) is nn.AvgPool2d and not m.ceil_mode and (m.count_include_pad or pair(m.padding) == (0, 0)):
        # Padding counted as zeros is what materialised zero padding computes; ceil_mode
        # would change the divisor of the last window.
        return Window(m)
    raise Unsupported(f"layer {type(m).__name__}")


def _chain_head(model: nn.Module) -> Tail:
    def tail(f: torch.Tensor) -> torch.Tensor:
        pool = model.avgpool
        size = pool.output_size if isinstance(pool, nn.AdaptiveAvgPool2d) else None
        sizes = size if isinstance(size, (tuple, list)) else (size, size)
        if None in sizes or tuple(int(v) for v in sizes) != tuple(f.shape[-2:]):
            f = pool(f)  # (an adaptive pool to the map's own size is the identity: skipped)
        return model.classifier(torch.flatten(f, 1))

    return tail


def _chain(model: nn.Module):
    feats = getattr(model, "features", None)
    if not isinstance(feats, nn.Sequential) or len(feats) == 0 or not hasattr(model, "avgpool") \
            or not hasattr(model, "classifier"):
        raise Unsupported("not features -> avgpool -> classifier")
    return [layer_op(m) for m in feats], _chain_head(model)


def _children(m: nn.Module) -> set[str]:
    return {name for name, _ in m.named_children()}


def _block(block: nn.Module, layers: list[str], shortcut: list, skip: bool) -> list:
    """A residual block's ops: its layers in order, with Save/Add around them when it
    has a skip connection."""
    body = [layer_op(getattr(block, name)) for name in layers]
    if not skip:
        return body
    save = Save()
    return [save, *body, Add(save, [op for op in body if isinstance(op, Window)], shortcut)]


_TIMM_BLOCKS = {
    # class name: (children it must have exactly, the order forward() runs them in)
    "DepthwiseSeparableConv": ({"conv_dw", "bn1", "aa", "se", "conv_pw", "bn2", "drop_path"},
                               ["conv_dw", "bn1", "conv_pw", "bn2"]),
    "InvertedResidual": ({"conv_pw", "bn1", "conv_dw", "bn2", "aa", "se", "conv_pwl", "bn3", "drop_path"},
                         ["conv_pw", "bn1", "conv_dw", "bn2", "conv_pwl", "bn3"]),
}


def _timm_efficientnet(model: nn.Module):
    for name in ("conv_stem", "bn1", "blocks", "conv_head", "bn2"):
        if not hasattr(model, name):
            raise Unsupported(f"an EfficientNet without {name}")
    ops = [layer_op(model.conv_stem), layer_op(model.bn1)]
    for block in (b for stage in model.blocks for b in stage):
        kind = type(block).__name__
        if kind not in _TIMM_BLOCKS:
            raise Unsupported(f"block {kind}")
        children, order = _TIMM_BLOCKS[kind]
        if _children(block) != children:
            raise Unsupported(f"{kind} with layers {sorted(_children(block))}")
        if type(block.se) is not nn.Identity:
            raise Unsupported("squeeze-excitation (global: a patch changes the whole map)")
        if type(block.aa) is not nn.Identity or getattr(block, "conv_s2d", None) is not None:
            raise Unsupported(f"{kind} with anti-aliasing or space-to-depth")
        if type(block.drop_path).__name__ not in ("Identity", "DropPath"):  # both are the identity in eval mode
            raise Unsupported(f"{kind} with {type(block.drop_path).__name__}")
        ops += _block(block, order, [], bool(block.has_skip))
    ops += [layer_op(model.conv_head), layer_op(model.bn2)]
    return ops, model.forward_head


def _torchvision_resnet(model: nn.Module):
    ops = [layer_op(model.conv1), layer_op(model.bn1), layer_op(model.relu), layer_op(model.maxpool)]
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        for block in stage:
            kind = type(block).__name__
            order = {"BasicBlock": ["conv1", "bn1", "relu", "conv2", "bn2"],
                     "Bottleneck": ["conv1", "bn1", "relu", "conv2", "bn2", "relu", "conv3", "bn3"]}.get(kind)
            if order is None or not set(order) <= _children(block) <= set(order) | {"downsample"}:
                raise Unsupported(f"block {kind}")
            shortcut = []
            if block.downsample is not None:
                if not isinstance(block.downsample, nn.Sequential):
                    raise Unsupported("a downsample that is not a Sequential")
                shortcut = [layer_op(m) for m in block.downsample]
            ops += _block(block, order, shortcut, True)
            ops.append(layer_op(block.relu))  # after the addition
    return ops, lambda f: model.fc(torch.flatten(model.avgpool(f), 1))


def network_ops(model: nn.Module):
    """(ops, tail): the spatial part of `model` as ops, and the function from its last
    map to the logits. Raises `Unsupported` naming what is in the way."""
    kind = type(model).__name__
    origin = type(model).__module__
    if kind in ("AlexNet", "VGG", "ShapesNet"):
        ops, tail = _chain(model)
    elif kind == "EfficientNet" and origin.startswith("timm."):
        ops, tail = _timm_efficientnet(model)
    elif kind == "ResNet" and origin.startswith("torchvision."):
        ops, tail = _torchvision_resnet(model)
    else:
        raise Unsupported(f"{kind} is none of the supported families (chains, timm EfficientNet, torchvision ResNet)")
    return fuse(ops), tail
