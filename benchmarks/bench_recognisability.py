"""Can a person (or another network) recognise a class visualisation?

Synthesise a class visualisation on one network (`efficientnet_lite0`) and let an
independent one judge it (`efficientnet_lite2`: another size, trained separately): the
judge's probability of the target class, averaged over random crops of the picture.
A picture that only exploits the quirks of the network that made it convinces that
network (its own probability is near 1) and no other; a picture of the object
convinces both. The kit's former settings and the new recipe run side by side in one
process, on a class list fixed before any tuning (`CLASSES`), with the time per
image on this machine.

    python -m benchmarks.bench_recognisability [--quick] [--classes goldfish tabby]
    python -m benchmarks --only recognisability
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from cnnviz_widgets.engine.optimize.ascent import RECOGNISABLE

# Fixed on 2026-12-01 before any tuning: eight everyday ImageNet classes.
CLASSES = ("goldfish", "flamingo", "golden retriever", "ladybug", "school bus", "pizza", "strawberry", "espresso")

# The kit's settings before the recipe (issue 18's measurement: Fourier, 224 px, 200 steps, jitter 2).
OLD = dict(param="fourier", size=224, steps=200, jitter=2)
# The recipe: `ascent.RECOGNISABLE`, the settings this benchmark chose (the search and its
# numbers are in benchmarks/README.md).
NEW = RECOGNISABLE

QUICK = dict(size=64, steps=4)  # smoke run: the same settings, shrunk
TARGET_PROBABILITY = 0.5
TARGET_SECONDS = 30.0

@torch.no_grad()
def own_probability(net, image: torch.Tensor, target: int) -> float:
    with net.guard():
        return float(torch.softmax(net(image[:1].to(net.device)), dim=1)[0, target])


def measure(maker, judge, settings: dict, classes, crops: int, seed: int = 0) -> dict:
    """Synthesise one picture per class with `settings`; judge each one."""
    from cnnviz_widgets.engine.optimize import judge as judging
    from cnnviz_widgets.engine.optimize.ascent import visualize_class

    per_class, whole, seconds, cpu, own = {}, {}, [], [], []
    for name in classes:
        index = maker.class_index(name)
        t, c = time.perf_counter(), time.process_time()
        result = visualize_class(maker, index, seed=seed, **settings)
        seconds.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        per_class[name] = round(judging.judge(judge, result.image, index, crops=crops, seed=seed).probability, 3)
        # The whole picture once, as well as the crops: a recipe tuned on crops must not
        # be a picture that only works when zoomed.
        whole[name] = round(judging.judge(judge, result.image, index, crops=1, smallest=1.0).probability, 3)
        own.append(own_probability(maker, result.image, index))
        print(f"  {name}: judged {per_class[name]:.3f} (whole {whole[name]:.3f}), own {own[-1]:.3f}, {seconds[-1]:.1f} s", file=sys.stderr, flush=True)
    return {
        "settings": settings,
        "mean_judged_probability": round(statistics.mean(per_class.values()), 3),
        "classes_above_half": sum(p >= 0.5 for p in per_class.values()),
        "mean_judged_whole_picture": round(statistics.mean(whole.values()), 3),
        "mean_own_probability": round(statistics.mean(own), 3),
        "seconds_per_image": round(statistics.mean(seconds), 2),
        "cpu_seconds_per_image": round(statistics.mean(cpu), 2),  # all threads: about 1-2x wall s when idle
        "judged": per_class,
        "judged_whole_picture": whole,
    }


def run(quick: bool = False, classes=None, configs: dict | None = None, crops: int | None = None,
        seed: int = 0) -> list[dict]:
    """One row per configuration (default: the old settings and the recipe), same
    classes, same judge, same process."""
    from cnnviz_widgets.engine.zoo.models import load_model

    classes = list(classes or (CLASSES[:2] if quick else CLASSES))
    configs = dict(configs or {"old": OLD, "new": NEW})
    crops = crops or (2 if quick else 16)
    maker = load_model("efficientnet_lite0")
    judge = load_model("efficientnet_lite2")  # the independent network: loaded here only
    rows = []
    for label, settings in configs.items():
        settings = {**settings, **QUICK} if quick else dict(settings)
        print(f"[recognisability] {label}: {settings}", file=sys.stderr, flush=True)
        row = {"benchmark": "recognisability", "config": label, "maker": maker.name, "judge": judge.name,
               "device": str(maker.device), "threads": torch.get_num_threads(), "crops": crops,
               "classes": len(classes), **measure(maker, judge, settings, classes, crops, seed)}
        row["target"] = f">= {TARGET_PROBABILITY} judged at <= {TARGET_SECONDS:g} s/image"
        row["meets_target"] = (row["mean_judged_probability"] >= TARGET_PROBABILITY
                               and row["seconds_per_image"] <= TARGET_SECONDS)
        rows.append(row)
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--classes", nargs="*", default=None)
    p.add_argument("--crops", type=int, default=None)
    p.add_argument("--config", action="append", default=None,
                   help='label=JSON settings of visualize_class, e.g. lucid=\'{"param": "fourier", "pad": 12}\'')
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    configs = None
    if a.config:
        configs = {c.split("=", 1)[0]: json.loads(c.split("=", 1)[1]) for c in a.config}
    print(json.dumps(run(quick=a.quick, classes=a.classes, configs=configs, crops=a.crops), indent=2))
