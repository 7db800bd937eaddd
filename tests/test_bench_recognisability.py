"""The recognisability benchmark's judge and its quick run (benchmarks/bench_recognisability.py)."""

from __future__ import annotations

import pytest
import torch

from benchmarks import bench_recognisability as bench
from cnnviz_widgets.engine import models
from cnnviz_widgets.engine.images import sample_image


@pytest.fixture(scope="module")
def lite2():
    return models.load_model("efficientnet_lite2")


def test_random_crops_are_seeded_square_pieces_of_the_image():
    image = torch.rand(1, 3, 80, 100)
    a = bench.random_crops(image, 5, 32, torch.Generator().manual_seed(1))
    b = bench.random_crops(image, 5, 32, torch.Generator().manual_seed(1))
    assert a.shape == (5, 3, 32, 32) and torch.equal(a, b)
    assert not torch.equal(a[0], a[1])
    flat = torch.zeros(1, 3, 80, 100) + 0.25  # a flat image gives flat crops of its value
    assert torch.allclose(bench.random_crops(flat, 3, 16, torch.Generator()), torch.full((3, 3, 16, 16), 0.25))


def test_the_judge_sees_the_cat_in_the_photo_and_not_in_grey(lite2):
    cat = lite2.as_batch(sample_image("cat"), single=True, size=260)
    index = lite2.class_index("Egyptian cat")
    on_photo = bench.judged_probability(lite2, cat, index, crops=4)
    on_grey = bench.judged_probability(lite2, torch.full_like(cat, 0.5), index, crops=4)
    assert on_photo > 0.3 and on_grey < 0.05
    assert on_photo == bench.judged_probability(lite2, cat, index, crops=4)  # seeded


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
        assert r["judge"] == "efficientnet_lite2" and r["maker"] == "efficientnet_lite0"
        assert r["settings"]["size"] == bench.QUICK["size"]
