"""Shared pieces of the benchmark suite: interleaved timing with medians, devices,
the random torchvision models, and a description of the machine."""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Callable

import torch

Row = dict


def devices() -> list[torch.device]:
    """CPU always; CUDA too when there is one."""
    out = [torch.device("cpu")]
    if torch.cuda.is_available():
        out.append(torch.device("cuda"))
    return out


def sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, device="cpu", warmup: bool = True) -> dict[str, dict]:
    """Time each callable `repeats` times in turn (A B C A B C ...: the machine's load
    hits every contender alike) and return, per name, the median and all the seconds."""
    if warmup:
        for fn in fns.values():
            fn()
            sync(device)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(max(1, repeats)):
        for name, fn in fns.items():
            sync(device)
            t = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t)
    return {k: {"median_s": statistics.median(v), "runs_s": [round(s, 4) for s in v]} for k, v in times.items()}


def forward_backward(net, x: torch.Tensor, target: int):
    """The bare pass a gradient method costs at least: one forward and one backward of
    `target`'s logit summed over the batch (a callable for `interleaved`)."""
    def go():
        z = x.detach().clone().requires_grad_(True)
        net(z)[:, target].sum().backward()
        return z.grad
    return go


def ratio(slow: float, fast: float) -> float:
    return round(slow / fast, 2) if fast > 0 else float("nan")


def random_torchvision(name: str, device, seed: int = 0, size: int = 224):
    """A randomly initialised torchvision AlexNet / VGG16 wrapped as the kit wraps the
    real ones (timing does not need trained weights)."""
    import torchvision

    from cnnviz_widgets.engine.zoo import models

    torch.manual_seed(seed)
    m = torchvision.models.get_model(name, weights=None)
    net = models.build_network(name, m, input_size=size, resize_size=size)
    return net.to(device)


def load(name: str, device):
    """efficientnet_lite0 and shapes as shipped; alexnet/vgg16 randomly initialised."""
    if name in ("alexnet", "vgg16"):
        return random_torchvision(name, device)
    from cnnviz_widgets.engine.zoo.models import load_model

    return load_model(name, device=device, fresh=True)


def machine() -> dict:
    """CPU model, GPU if any, torch threads and library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for mod in ("torchvision", "timm", "captum", "numpy", "ipywidgets"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:
            versions[mod] = "not installed"
    load = None
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": load,
        "platform": platform.platform(),
        "versions": versions,
    }
