"""The diversity benchmark (benchmarks/bench_diversity.py): its fixed units and its rule."""

from __future__ import annotations

from benchmarks import bench_diversity as bench
from cnnviz_widgets.engine.optimize import ascent
from cnnviz_widgets.engine.zoo.models import load_model


def test_units_are_real_channels_and_the_default_is_a_measured_weight():
    net = load_model("efficientnet_lite0")
    for layer, channel in bench.UNITS:
        assert 0 <= channel < net.layer_shape(layer)[0], (layer, channel)
    assert ascent.DIVERSITY in bench.WEIGHTS and ascent.DIVERSITY > 0


def test_quick_run_reports_every_weight_and_chooses_one_by_the_rule():
    rows = bench.run(quick=True)
    assert [r["weight"] for r in rows] == list(bench.QUICK["weights"])
    assert sum(r["chosen"] for r in rows) == 1
    zero = rows[0]
    assert zero["mean_activation_share"] == 1.0  # weight 0 is its own reference
    for r in rows:
        assert 0 <= r["mean_similarity"] <= 1 and r["units"] == len(bench.QUICK["units"])
    chosen = next(r for r in rows if r["chosen"])
    kept = [r["weight"] for r in rows if r["mean_activation_share"] >= bench.KEEP]
    assert chosen["weight"] == max(kept)
