"""Cost of one step of the shared optimisation loop vs one bare forward+backward.

The loop adds a guard (eval + frozen parameters, restored), hooks, a transform, the
regularisers and the optimiser step around the forward+backward that any gradient
ascent needs. `run()` measures both on the same model, image size and machine in one
process and reports the ratio (the overhead), so the number does not depend on how
fast or busy the machine is. The loop runs the image channels-last on a CPU
(`Network.fast_layout`); the bare pass takes the NCHW image a user would write, so a
ratio near or below 1 includes that layout's gain (EfficientNet: about 1.3x).

    python -m benchmarks.bench_optimize          # or: python benchmarks/bench_optimize.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch


def run(model: str = "efficientnet_lite0", size: int = 160, steps: int = 10, repeats: int = 5,
        quick: bool = False) -> dict:
    """Median seconds per step of both, timed interleaved (A B A B ...) so the
    machine's load hits both alike; `quick` shrinks it to a smoke run."""
    from benchmarks.common import interleaved

    if quick:
        size, steps, repeats = 96, 3, 2
    from cnnviz_widgets.engine.zoo.models import load_model
    from cnnviz_widgets.engine.optimize import Blur, ClipContribution, ClipNorm, Jitter, L2, PixelParam, optimize
    from cnnviz_widgets.engine.optimize import objectives as O

    net = load_model(model)
    gen = torch.Generator().manual_seed(0)
    x0 = (0.5 + 0.02 * torch.randn(1, 3, size, size, generator=gen)).to(net.device)
    target = 1

    def bare():
        x = x0.clone().requires_grad_(True)
        for _ in range(steps):
            score = net(x)[0, target]
            (g,) = torch.autograd.grad(score, x)
            with torch.no_grad():
                x += 0.01 * g

    def loop():
        optimize(net, O.class_score(target), PixelParam(x0), steps=steps, step_size=0.02,
                 transforms=[Jitter(2)], regularizers=[L2(0.5), Blur(4, 0.5)])

    def clipped():  # Yosinski et al.'s two clipping regularisers on top
        optimize(net, O.class_score(target), PixelParam(x0), steps=steps, step_size=0.02,
                 transforms=[Jitter(2)], regularizers=[L2(0.5), Blur(4, 0.5), ClipNorm(20), ClipContribution(20)])

    timed = interleaved({"bare": bare, "loop": loop, "clipped": clipped}, repeats, device=net.device)  # warms up first
    t_bare = timed["bare"]["median_s"] / steps
    t_loop = timed["loop"]["median_s"] / steps
    t_clipped = timed["clipped"]["median_s"] / steps
    return {
        "benchmark": "optimize", "model": model, "size": size, "steps": steps, "repeats": repeats,
        "threads": torch.get_num_threads(), "device": str(net.device),
        "bare_forward_backward_ms": round(t_bare * 1000, 2),
        "loop_step_ms": round(t_loop * 1000, 2),
        "ratio": round(t_loop / t_bare, 3),
        "clipped_step_ms": round(t_clipped * 1000, 2),
        "clipped_ratio": round(t_clipped / t_bare, 3),
    }


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `benchmarks.common` when run as a file
    print(json.dumps(run(), indent=2))
