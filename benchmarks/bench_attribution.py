"""Saliency and guided backprop: the kit against Captum (``Saliency``,
``GuidedBackprop``) and against the limit, one bare forward + backward of the same
network and batch (``x.requires_grad_(); net(x)[:, t].sum().backward()``).

Targets: within 10% of one forward+backward (ratio limit/ours >= 0.9) and no slower
than Captum (ratio captum/ours >= 1.0). The kit runs the batch channels-last on a CPU
(`Network.fast_layout`), where oneDNN's convolutions are faster; Captum and the bare
pass get the NCHW batch a user would hand them, so ratios above 1 are that layout. Guided backprop is compared with Captum on
plain-ReLU networks (AlexNet, shapes): Captum leaves EfficientNet's ReLU6 alone.

    python -m benchmarks.bench_attribution [--quick]
"""

from __future__ import annotations

import argparse
import json

import torch

from benchmarks.common import devices, forward_backward, interleaved, load, ratio
from cnnviz_widgets.engine.attribution.guided import guided_backprop
from cnnviz_widgets.engine.attribution.saliency import saliency

TARGET = 1


def bench(name: str, device, size: int, batch: int, repeats: int) -> list[dict]:
    from captum.attr import GuidedBackprop, Saliency

    net = load(name, device)
    torch.manual_seed(0)
    x = torch.rand(batch, 3, size, size, device=device)
    rows = []
    # One batch, as Captum takes it (the kit splits larger ones at batch_size).
    methods = {"saliency": (lambda: saliency(net, x, TARGET, batch_size=batch),
                            lambda: Saliency(net).attribute(x.clone().requires_grad_(True), target=TARGET, abs=True)),
               "guided backprop": (lambda: guided_backprop(net, x, TARGET, batch_size=batch),
                                   lambda: GuidedBackprop(net).attribute(x.clone().requires_grad_(True), target=TARGET))}
    if name == "efficientnet_lite0":
        methods.pop("guided backprop")
    for method, (ours, captum) in methods.items():
        t = interleaved({"ours": ours, "captum": captum, "fwd+bwd": forward_backward(net, x, TARGET)}, repeats, device)
        o, c, b = (t[k]["median_s"] for k in ("ours", "captum", "fwd+bwd"))
        rows.append({
            "benchmark": "attribution", "device": str(device), "model": name, "method": method,
            "input": size, "batch": batch, "ours_s": round(o, 4), "captum_s": round(c, 4), "fwd_bwd_s": round(b, 4),
            "vs_captum": ratio(c, o), "vs_fwd_bwd": ratio(b, o),
            "target": "vs_fwd_bwd >= 0.9, vs_captum >= 1.0", "repeats": repeats,
            "runs_s": {k: v["runs_s"] for k, v in t.items()},
        })
    for p in net.parameters():  # the bare pass left gradients on nothing: params are frozen
        assert p.grad is None
    return rows


def run(quick: bool = False, device=None) -> list[dict]:
    rows = []
    for dev in ([torch.device(device)] if device else devices()):
        cuda = dev.type == "cuda"
        plan = [("efficientnet_lite0", 224, 1 if quick else 8), ("alexnet", 224, 1 if quick else 8),
                ("shapes", 64, 8 if quick else 64)]
        for name, size, batch in plan:
            try:
                rows += bench(name, dev, size, batch, 3 if quick else (15 if cuda else 7))
            except Exception as e:
                rows.append({"benchmark": "attribution", "device": str(dev), "model": name,
                             "status": f"not available: {type(e).__name__}: {e}"})
    return rows


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    print(json.dumps(run(p.parse_args().quick), indent=2))
