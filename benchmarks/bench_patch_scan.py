"""How close lesson 05's dataset scan comes to the forward-pass limit: images/s.

    python benchmarks/bench_patch_scan.py [--model efficientnet_lite0] [--layer stage5] [--n 64]

``run()`` times, on the same pre-made input batches and in the same run (best of
`repeats`, interleaved so a noisy machine hurts all alike):

* ``forward_to``: the bare ``net.forward_to(x, layer)``, the floor for any scan;
* ``full_forward``: ``net(x)``, what a scan that ran the whole network would cost;
* ``scan``: ``max_activating_patches`` over the same tensors (preprocessing is a no-op
  for them), so its overhead over ``forward_to`` is the running top-k merge;
* ``scan_from_images``: the scan from the dataset's PIL images, preprocessing included.

Ratios near 1 for ``scan / forward_to`` mean the top-k bookkeeping costs nothing next to
the network. ``__main__`` prints the dict as JSON.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from cnnviz_widgets.engine.zoo.data import Item, ListDataset, load_dataset
from cnnviz_widgets.engine.zoo.models import load_model
from cnnviz_widgets.engine.inspect.patches import max_activating_patches


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def run(model: str = "efficientnet_lite0", layer: str = "stage5", n: int = 64, batch_size: int = 32,
        k: int = 9, repeats: int = 3, threads: int | None = None) -> dict:
    if threads:
        torch.set_num_threads(threads)
    net = load_model(model)
    data = load_dataset("shapes", n=n, seed=1)
    images = [net.preprocess(data[i].image) for i in range(n)]
    batches = [torch.cat(images[s:s + batch_size]) for s in range(0, n, batch_size)]
    # Items that already are network inputs: the scan then does exactly the forward work.
    tensors = ListDataset([Item(x, 0, None, str(i)) for i, x in enumerate(images)], data.classes, "bench-tensors")

    def bare():
        with torch.no_grad(), net.guard():
            for x in batches:
                net.forward_to(x, layer)

    def full():
        with torch.no_grad(), net.guard():
            for x in batches:
                net(x)

    def scan():
        max_activating_patches(net, tensors, layer, k=k, batch_size=batch_size, cache=False)

    def scan_images():
        max_activating_patches(net, data, layer, k=k, batch_size=batch_size, cache=False)

    bare()  # warm-up: first calls allocate
    timings = {name: [] for name in ("forward_to", "full_forward", "scan", "scan_from_images")}
    for _ in range(repeats):
        for name, fn in (("forward_to", bare), ("full_forward", full), ("scan", scan), ("scan_from_images", scan_images)):
            timings[name].append(_best(fn, 1))
    best = {name: min(ts) for name, ts in timings.items()}
    rate = {name: n / t for name, t in best.items()}
    return {
        "benchmark": "patch_scan",
        "model": model,
        "layer": layer,
        "n_images": n,
        "batch_size": batch_size,
        "k": k,
        "device": str(net.device),
        "threads": torch.get_num_threads(),
        "images_per_s": {name: round(r, 1) for name, r in rate.items()},
        "scan_over_forward_to_time": round(best["scan"] / best["forward_to"], 3),
        "full_forward_over_forward_to_time": round(best["full_forward"] / best["forward_to"], 3),
        "scan_from_images_over_scan_time": round(best["scan_from_images"] / best["scan"], 3),
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--layer", default="stage5")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    print(json.dumps(run(a.model, a.layer, a.n, a.batch_size, repeats=a.repeats, threads=a.threads), indent=2))
