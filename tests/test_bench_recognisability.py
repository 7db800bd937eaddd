"""The recognisability benchmark (benchmarks/bench_recognisability.py): its class list and
its quick run. Its judge is `engine.judge`, tested in tests/test_judge.py."""

from __future__ import annotations

from benchmarks import bench_recognisability as bench
from cnnviz_widgets.engine.zoo import models


def test_class_list_is_the_fixed_one_and_names_imagenet_classes():
    assert len(bench.CLASSES) == 8
    classes = models.imagenet_classes()
    assert all(name in classes for name in bench.CLASSES)


def test_quick_run_reports_old_and_new_side_by_side():
    rows = bench.run(quick=True)
    assert [r["config"] for r in rows] == ["old", "new"]
    for r in rows:
        assert r["classes"] == 2 and set(r["judged"]) == set(bench.CLASSES[:2])
        assert 0 <= r["mean_judged_probability"] <= 1 and r["seconds_per_image"] > 0
        assert set(r["judged_whole_picture"]) == set(r["judged"]) and 0 <= r["mean_judged_whole_picture"] <= 1
        assert r["judge"] == "efficientnet_lite2" and r["maker"] == "efficientnet_lite0"
        assert r["settings"]["size"] == bench.QUICK["size"]
