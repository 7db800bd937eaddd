"""How fast lesson 04's app answers layer and channel changes (target: about 100 ms).

    python benchmarks/bench_activations_app.py [--model efficientnet_lite0] [--image cat] [--rounds 3]
    python benchmarks/bench_activations_app.py --model shapes --image "shape: star"

Headless: the time from setting a control's ``value`` to a new PNG in ``app.view.value``
(observers run synchronously, so that is the time the assignment takes). Switching
answers from the activations cached after one forward pass; the forward pass itself
(plain, and capturing every layer) is measured in the same run as the reference, so
the ratios hold on any machine. ``run()`` returns a dict; ``__main__`` prints it as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def run(model: str = "efficientnet_lite0", image: str = "cat", rounds: int = 3, threads: int | None = None) -> dict:
    from cnnviz_widgets.engine.inspect.activations import all_activations
    from cnnviz_widgets.engine.zoo.models import load_model
    from cnnviz_widgets.widgets.activations import ActivationsApp

    if threads:
        torch.set_num_threads(threads)
    app = ActivationsApp(model=model, image=image, threaded=False)  # the first render includes the forward pass
    if app.error:
        raise RuntimeError(app.error)
    net = load_model(model)
    x = net.preprocess(app.image_picker.image)  # a bundled photo or one of the picker's shapes
    with torch.no_grad(), net.guard():
        net(x)  # warm-up
        forward = statistics.median(_timed(lambda: net(x)) for _ in range(5))
    capture = statistics.median(_timed(lambda: all_activations(net, x)) for _ in range(3))
    layers = [l for l in net.layers if l != app.layer.value] + [app.layer.value]
    per_layer: dict[str, list[float]] = {l: [] for l in layers}
    channel_ms: list[float] = []
    for _ in range(rounds):
        for layer in layers:
            before = app.view.value
            ms = _timed(lambda: setattr(app.layer, "value", layer))
            if app.error or app.view.value == before:
                raise RuntimeError(f"switching to {layer} did not draw a new picture: {app.error}")
            per_layer[layer].append(ms)
            for c in (1, 2):
                if c <= app.channel.max:
                    channel_ms.append(_timed(lambda: setattr(app.channel, "value", c)))
            app.channel.value = 0
    layer_ms = [m for ms in per_layer.values() for m in ms]
    slowest = max(per_layer, key=lambda l: statistics.median(per_layer[l]))
    return {
        "benchmark": "activations_app",
        "model": model,
        "image": image,
        "threads": torch.get_num_threads(),
        "forward_ms": round(forward, 1),
        "forward_capture_all_layers_ms": round(capture, 1),
        "layer_switch_median_ms": round(statistics.median(layer_ms), 1),
        "channel_switch_median_ms": round(statistics.median(channel_ms), 1),
        "slowest_layer": slowest,
        "slowest_layer_median_ms": round(statistics.median(per_layer[slowest]), 1),
        "layer_switch_over_forward": round(statistics.median(layer_ms) / forward, 2),
        "per_layer_median_ms": {l: round(statistics.median(v), 1) for l, v in per_layer.items()},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--image", default="cat")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    print(json.dumps(run(args.model, args.image, args.rounds, args.threads), indent=2))
