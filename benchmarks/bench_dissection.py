"""Network dissection (lesson 15) against the forward pass it needs: one layer of the
shapes net over 1,000 images within one forward pass's time plus 50%.

    python benchmarks/bench_dissection.py [--n 1000] [--repeats 3]

``run()`` times, interleaved (A B A B ...: a loaded machine hurts both alike), in the
same run and on the same cached shapes arrays:

* ``forward``: ``net(x)`` over the N images in batches of 64, the whole network;
* ``dissect <layer>``: `engine.inspect.dissection.dissect` of each conv layer (its
  forward pass to the layer, the thresholds, the upsampling and the counts).

It reports, per layer, the ratio of the medians (the goal: <= 1.5) and the detectors
of the trained and the randomised net. ``__main__`` prints the dict as JSON.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from cnnviz_widgets.engine.evaluation.scores import randomised_network
from cnnviz_widgets.engine.inspect.dissection import dissect
from cnnviz_widgets.engine.zoo.data import load_dataset
from cnnviz_widgets.engine.zoo.models import load_model

LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")


def run(n: int = 1000, repeats: int = 3, seed: int = 12345, quick: bool = False) -> dict:
    if quick:  # the suite's smoke run
        n, repeats = 200, 1
    net = load_model("shapes")
    data = load_dataset("shapes", n=n, seed=seed)
    images = data.arrays()[0]  # generated once, outside every timing
    pixels = torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float().div(255)

    def forward():
        with torch.no_grad(), net.guard():
            for start in range(0, n, 64):
                net(pixels[start:start + 64])

    contenders = {"forward": forward}
    contenders.update({f"dissect {layer}": (lambda layer=layer: dissect(net, data, layer, batch_size=64))
                       for layer in LAYERS})
    wall: dict[str, list[float]] = {k: [] for k in contenders}
    cpu: dict[str, list[float]] = {k: [] for k in contenders}
    forward()  # warm up
    for _ in range(repeats):
        for name, fn in contenders.items():
            t, c = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    median = {k: statistics.median(v) for k, v in wall.items()}
    median_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    randomised = randomised_network(net, len(net.layers), seed=0)
    rows = []
    for layer in LAYERS:
        trained, control = dissect(net, data, layer), dissect(randomised, data, layer)
        rows.append({
            "layer": layer,
            "units": trained.units,
            "dissect_over_forward": round(median[f"dissect {layer}"] / median["forward"], 2),
            "dissect_over_forward_cpu": round(median_cpu[f"dissect {layer}"] / median_cpu["forward"], 2),
            "detectors_trained": trained.n_detectors,
            "detectors_randomised": control.n_detectors,
            "best_iou_trained": round(float(trained.best_iou.max()), 3),
            "best_iou_randomised": round(float(control.best_iou.max()), 3),
            "per_concept_trained": trained.detectors_per_concept(),
        })
    return {"n": n, "repeats": repeats, "forward_s": round(median["forward"], 3),
            "runs_s": {k: [round(s, 3) for s in v] for k, v in wall.items()}, "layers": rows,
            "goal": "dissect_over_forward <= 1.5", "threads": torch.get_num_threads()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(n=args.n, repeats=args.repeats), indent=1))
