"""The second opinion of lessons 09 and 10 (`engine.judge`): an independent network's
mean probability for a class over random crops of a picture."""

from __future__ import annotations

import pytest
import torch

from cnnviz_widgets.engine.optimize import judge as judging
from cnnviz_widgets.engine.zoo.samples import sample_image
from cnnviz_widgets.engine.zoo.models import load_model


@pytest.fixture(scope="module")
def lite2():
    return load_model("efficientnet_lite2")


def test_crops_are_seeded_squares_of_the_asked_size():
    image = torch.rand(1, 3, 90, 120, generator=torch.Generator().manual_seed(0))
    a = judging.random_crops(image, 5, 32, torch.Generator().manual_seed(3))
    b = judging.random_crops(image, 5, 32, torch.Generator().manual_seed(3))
    c = judging.random_crops(image, 5, 32, torch.Generator().manual_seed(4))
    assert a.shape == (5, 3, 32, 32) and torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a[0], a[1])
    flat = torch.full((1, 3, 80, 100), 0.25)  # a flat image gives flat crops of its value
    assert torch.allclose(judging.random_crops(flat, 3, 16, torch.Generator()), torch.full((3, 3, 16, 16), 0.25))


def test_a_whole_image_crop_is_the_resized_image():
    image = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(1))
    crop = judging.random_crops(image, 1, 40, torch.Generator().manual_seed(0), smallest=1.0)
    assert torch.allclose(crop, image, atol=1e-6 * float(image.abs().max()))


def test_the_judge_recognises_a_photo_and_rejects_a_wrong_class(lite2):
    cat = sample_image("cat")
    first = lite2.predict(cat, top=1)[0][0]
    right = judging.judge(lite2, cat, first, crops=8)
    wrong = judging.judge(lite2, cat, "goldfish", crops=8)
    assert right.convinced and right.top_class == first and right.crops == 8
    assert right.probability > 10 * wrong.probability and not wrong.convinced
    assert right.per_crop.shape == (8,)
    assert right.probability == pytest.approx(float(right.per_crop.mean()), rel=1e-5)
    assert first in str(right)


def test_noise_convinces_the_judge_of_nothing(lite2):
    noise = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    verdict = judging.judge(lite2, noise, "goldfish", crops=4)
    assert verdict.probability < 0.05 and verdict.top_probability < 0.5


def test_the_same_seed_judges_two_pictures_on_the_same_crops(lite2):
    cat = lite2.preprocess(sample_image("cat"))
    a = judging.judge(lite2, cat, 285, crops=4, seed=7)
    b = judging.judge(lite2, torch.cat([cat, torch.zeros_like(cat)]), 285, crops=4, seed=7)  # a batch: its first
    assert torch.equal(a.per_crop, b.per_crop)


def test_bad_input_gets_one_clear_message_and_the_judge_is_restored(lite2):
    lite2.train()
    try:
        with pytest.raises(ValueError, match="NaN"):
            judging.judge(lite2, torch.full((1, 3, 64, 64), float("nan")), 1)
        assert lite2.training  # guard() put back what it found
    finally:
        lite2.eval()
    with pytest.raises(ValueError, match="goldfsh"):
        judging.judge(lite2, torch.rand(1, 3, 64, 64), "goldfsh")
    with pytest.raises(ValueError, match="crops"):
        judging.judge(lite2, torch.rand(1, 3, 64, 64), 1, crops=0)
    assert not any(m._forward_hooks for m in lite2.modules())


def test_one_crop_of_smallest_one_judges_the_whole_picture(lite2):
    cat = lite2.preprocess(sample_image("cat"))  # 260 px: the judge's own size, nothing resized
    verdict = judging.judge(lite2, cat, "Egyptian cat", crops=1, smallest=1.0)
    with torch.no_grad():
        expected = float(torch.softmax(lite2(cat), dim=1)[0, lite2.class_index("Egyptian cat")])
    assert verdict.crops == 1 and verdict.probability == pytest.approx(expected, rel=1e-4)


def test_crops_in_small_batches_give_the_same_verdict(lite2):
    cat = lite2.preprocess(sample_image("cat"))
    whole = judging.judge(lite2, cat, "Egyptian cat", crops=5, batch_size=5)
    parts = judging.judge(lite2, cat, "Egyptian cat", crops=5, batch_size=2)
    scale = float(whole.per_crop.abs().max())
    assert torch.allclose(whole.per_crop, parts.per_crop, rtol=1e-4, atol=1e-5 * scale)
    with pytest.raises(ValueError, match="batch_size"):
        judging.judge(lite2, cat, 1, crops=2, batch_size=0)
