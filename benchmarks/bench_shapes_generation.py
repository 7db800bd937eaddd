"""How fast the synthetic shapes set is generated: images/s for 10,000 images at 64 px.

    python benchmarks/bench_shapes_generation.py [--n 10000]

``run()`` returns a dict (images/s for bulk ``arrays()`` and for item access with PIL
conversion, plus the per-item cost of a fresh ``np.random.default_rng([seed, i])`` as the
floor that per-item seeding imposes); ``__main__`` prints it as JSON.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from cnnviz_widgets.engine.zoo.shapes import ShapesDataset


def run(n: int = 10_000, size: int = 64, seed: int = 0) -> dict:
    t = time.perf_counter()
    ShapesDataset(n, seed=seed, size=size).arrays()
    bulk = time.perf_counter() - t

    m = min(n, 1000)
    ds = ShapesDataset(m, seed=seed + 1, size=size)
    t = time.perf_counter()
    for i in range(m):
        ds[i]
    items = time.perf_counter() - t

    t = time.perf_counter()
    for i in range(m):
        np.random.default_rng([seed, i])
    rng_floor = time.perf_counter() - t

    return {
        "benchmark": "shapes_generation",
        "n": n,
        "size": size,
        "seconds": round(bulk, 3),
        "images_per_s": round(n / bulk, 1),
        "item_access_images_per_s": round(m / items, 1),
        "rng_setup_us_per_item": round(rng_floor / m * 1e6, 2),
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--size", type=int, default=64)
    a = p.parse_args()
    print(json.dumps(run(a.n, a.size), indent=2))
