"""How strongly to weigh the diversity term of a channel visualisation.

Olah, Mordvintsev & Schubert 2017 ("Feature Visualization", Distill) optimise a batch of
images for one unit and penalise them for being alike (`optimize.objectives.diversity`: the
mean cosine similarity of their Gram matrices at the unit's layer). Too weak a weight and
the images are copies of one another; too strong and they stop exciting the unit. For
units fixed before measuring (`UNITS`, efficientnet_lite0), each weight in `WEIGHTS` gives:
the batch's Gram similarity at the unit's layer, and the unit's activation (the channel's
mean, averaged over the batch) as a share of its activation at weight 0, both on the final
images. The rule, also fixed before measuring: the chosen weight is the largest one whose
mean activation share is at least `KEEP` (the images still show the unit); it is the
default of lesson 09's channel view and of the ascent app (`ascent.DIVERSITY`).

    python -m benchmarks.bench_diversity [--quick]
    python -m benchmarks --only diversity
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

# Fixed on 2026-12-02 before any run: two channels from each of four depths.
UNITS = (("stage3", 5), ("stage3", 20), ("stage4", 10), ("stage4", 50), ("stage5", 30), ("stage6", 100))
WEIGHTS = (0.0, 2.0, 5.0, 10.0, 20.0, 50.0)
KEEP = 0.9
SETTINGS = dict(param="fourier", jitter=4, size=96, steps=60, batch=3, seed=0)
QUICK = dict(units=UNITS[:2], weights=(0.0, 5.0), size=64, steps=4)


def measure(net, layer: str, channel: int, weight: float, settings: dict) -> tuple[float, float]:
    """(Gram similarity of the batch at `layer`, the channel's mean activation) on the
    final images of one run."""
    from cnnviz_widgets.engine.optimize import ascent
    from cnnviz_widgets.engine.optimize.objectives import gram_similarity

    result = ascent.visualize_channel(net, layer, channel, diversity=weight, **settings)
    with torch.no_grad(), net.guard():
        a = net.forward_to(result.image.to(net.device), layer)
    return float(gram_similarity(a)), float(a[:, channel].mean())


def run(quick: bool = False) -> list[dict]:
    from cnnviz_widgets.engine.zoo.models import load_model

    net = load_model("efficientnet_lite0")
    units, weights = (QUICK["units"], QUICK["weights"]) if quick else (UNITS, WEIGHTS)
    settings = {**SETTINGS, **({"size": QUICK["size"], "steps": QUICK["steps"]} if quick else {})}
    per_weight = {w: {"similarity": [], "activation_share": []} for w in weights}
    t = time.perf_counter()
    for layer, channel in units:
        base = None
        for w in weights:
            similarity, activation = measure(net, layer, channel, w, settings)
            base = activation if w == 0 else base
            share = activation / base if base and base > 0 else float("nan")
            per_weight[w]["similarity"].append(similarity)
            per_weight[w]["activation_share"].append(share)
            print(f"  {layer}:{channel} diversity {w:g}: similarity {similarity:.3f}, activation {share:.2f} of "
                  f"weight 0", file=sys.stderr, flush=True)
    rows = []
    for w, m in per_weight.items():
        rows.append({"benchmark": "diversity", "weight": w, "units": len(units),
                     "mean_similarity": round(statistics.mean(m["similarity"]), 3),
                     "mean_activation_share": round(statistics.mean(m["activation_share"]), 3),
                     "lowest_activation_share": round(min(m["activation_share"]), 3)})
    kept = [r for r in rows if r["mean_activation_share"] >= KEEP]
    chosen = max(kept, key=lambda r: r["weight"])["weight"] if kept else weights[0]
    for r in rows:
        r.update(chosen=r["weight"] == chosen, rule=f"largest weight keeping >= {KEEP:.0%} of the unit's activation",
                 settings=settings, seconds=round(time.perf_counter() - t, 1), device=str(net.device))
    return rows


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(json.dumps(run(quick=a.quick), indent=2))
