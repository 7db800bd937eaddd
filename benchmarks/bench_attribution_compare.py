"""Lesson 13's methods against their peers and limits, as ratios measured in one run.

- Grad-CAM (`gradcam.grad_cam`) against one bare forward+backward of the same batch
  (target: within 1.1x, i.e. fwd+bwd/ours >= 0.91) and against pytorch-grad-cam's
  `GradCAM` on the same layer (target: pgc/ours >= 1.0).
- Integrated Gradients (`integrated_gradients`) against Captum's `IntegratedGradients`
  at equal steps and rule (Gauss-Legendre), black baseline (target: captum/ours >= 1.0).
  Ours always returns the completeness gap, so Captum is asked for its convergence
  delta too (the same outputs); the ratio without it is reported beside. Captum runs
  every point in one batch by default; it is timed that way and with our batch size
  (`internal_batch_size`), and the ratio uses the faster of the two.
- The app's full comparison (`compare.compare`) of the seven methods on one 224 px photo
  with efficientnet_lite0, each map scored (deletion and insertion AUC), with the app's
  full-mode settings: reported in seconds, per method too (no target: the number a
  learner waits for).

    python -m benchmarks.bench_attribution_compare [--quick]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from benchmarks.common import devices, forward_backward, interleaved, load, ratio
from cnnviz_widgets.engine.attribution.gradcam import grad_cam, last_spatial_layer
from cnnviz_widgets.engine.core import memory
from cnnviz_widgets.engine.attribution.integrated_gradients import integrated_gradients

TARGET = 1


def bench_grad_cam(name: str, device, size: int, batch: int, repeats: int) -> dict:
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    net = load(name, device)
    torch.manual_seed(0)
    x = torch.rand(batch, 3, size, size, device=device)
    layer = last_spatial_layer(net)
    cam = GradCAM(net, [net.module(layer)])
    targets = [ClassifierOutputTarget(TARGET)] * batch
    try:
        t = interleaved({"ours": lambda: grad_cam(net, x, TARGET),
                         "pytorch-grad-cam": lambda: cam(x.clone().requires_grad_(True), targets),
                         "fwd+bwd": forward_backward(net, x, TARGET)}, repeats, device)
    finally:
        cam.activations_and_grads.release()
    o, p, b = (t[k]["median_s"] for k in ("ours", "pytorch-grad-cam", "fwd+bwd"))
    return {"benchmark": "attribution_compare", "device": str(device), "model": name, "method": "Grad-CAM",
            "layer": layer, "input": size, "batch": batch, "ours_s": round(o, 4), "peer_s": round(p, 4),
            "peer": "pytorch-grad-cam GradCAM", "fwd_bwd_s": round(b, 4), "vs_peer": ratio(p, o),
            "vs_fwd_bwd": ratio(b, o), "target": "vs_fwd_bwd >= 0.91, vs_peer >= 1.0", "repeats": repeats,
            "runs_s": {k: v["runs_s"] for k, v in t.items()}}


def bench_integrated_gradients(name: str, device, size: int, steps: int, repeats: int) -> dict:
    from captum.attr import IntegratedGradients

    net = load(name, device)
    torch.manual_seed(0)
    x = torch.rand(1, 3, size, size, device=device)
    ours_batch = memory.batch_size(net, size=size, backward=True)
    ig = IntegratedGradients(net)
    base = torch.zeros_like(x)

    def captum(internal, delta=True):
        return lambda: ig.attribute(x, baselines=base, target=TARGET, n_steps=steps, method="gausslegendre",
                                    internal_batch_size=internal, return_convergence_delta=delta)

    # Ours always returns the completeness gap, so Captum computes its convergence delta too
    # (same outputs); without it, Captum saves one forward of the image and the baseline.
    t = interleaved({"ours": lambda: integrated_gradients(net, x, TARGET, steps=steps),
                     "captum (one batch)": captum(None), f"captum (batch {ours_batch})": captum(ours_batch),
                     "captum (one batch, no delta)": captum(None, delta=False)},
                    repeats, device)
    o = t["ours"]["median_s"]
    c_one, c_ours = t["captum (one batch)"]["median_s"], t[f"captum (batch {ours_batch})"]["median_s"]
    c_plain = t["captum (one batch, no delta)"]["median_s"]
    return {"benchmark": "attribution_compare", "device": str(device), "model": name,
            "method": f"Integrated Gradients ({steps} steps)", "input": size, "batch": 1, "ours_batch": ours_batch,
            "ours_s": round(o, 4), "peer_s": round(min(c_one, c_ours), 4),
            "peer": f"Captum with delta: one batch {c_one:.3f} s, batch {ours_batch} {c_ours:.3f} s; "
                    f"without delta {c_plain:.3f} s = {ratio(c_plain, o)}x ours",
            "vs_peer": ratio(min(c_one, c_ours), o), "vs_peer_without_delta": ratio(c_plain, o),
            "target": "vs_peer >= 1.0", "repeats": repeats, "runs_s": {k: v["runs_s"] for k, v in t.items()}}


def bench_full_comparison(device, quick: bool) -> dict:
    from cnnviz_widgets.engine.evaluation.compare import METHODS, compare, comparison_settings
    from cnnviz_widgets.engine.zoo.samples import sample_image
    from cnnviz_widgets.engine.zoo.models import load_model

    net = load_model("efficientnet_lite0", device=device)
    x = net.preprocess(sample_image("coffee"))
    with torch.no_grad():
        target = int(net(x).argmax())
    settings, steps = comparison_settings(quick)
    per_method = {}
    for name in METHODS:  # each alone, for the breakdown (map and its two curves)
        t = time.perf_counter()
        compare(net, x, target, methods=[name], settings=settings, steps=steps, reference=False)
        per_method[name] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    compare(net, x, target, methods=list(METHODS), settings=settings, steps=steps, reference=False)
    total = time.perf_counter() - t
    return {"benchmark": "attribution_compare", "device": str(device), "model": "efficientnet_lite0",
            "method": "app: seven methods, each scored", "input": int(x.shape[-1]), "curve_steps": steps,
            "settings": settings, "seconds": round(total, 2), "per_method_s": per_method,
            "threads": torch.get_num_threads(), "target": "reported (seconds a learner waits)"}


def run(quick: bool = False, device=None) -> list[dict]:
    rows = []
    for dev in ([torch.device(device)] if device else devices()):
        cuda = dev.type == "cuda"
        repeats = 3 if quick else (15 if cuda else 7)
        jobs = []
        for name, size, batch in [("efficientnet_lite0", 224, 1 if quick else 8), ("alexnet", 224, 1 if quick else 8),
                                  ("shapes", 64, 8 if quick else 64)]:
            jobs.append((f"Grad-CAM {name}", lambda n=name, s=size, b=batch: bench_grad_cam(n, dev, s, b, repeats)))
        for name, size in [("efficientnet_lite0", 224), ("alexnet", 224), ("shapes", 64)]:
            steps = 16 if quick else 32
            jobs.append((f"IG {name}", lambda n=name, s=size, k=steps: bench_integrated_gradients(n, dev, s, k, repeats)))
        jobs.append(("full comparison", lambda: bench_full_comparison(dev, quick)))
        for what, job in jobs:
            try:
                rows.append(job())
            except Exception as e:  # a row that cannot run says why; the others still run
                rows.append({"benchmark": "attribution_compare", "device": str(dev), "model": what,
                             "status": f"not available: {type(e).__name__}: {e}"})
    return rows


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    print(json.dumps(run(p.parse_args().quick), indent=2))
