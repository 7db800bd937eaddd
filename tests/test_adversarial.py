"""Lesson 10: fooling images (engine/adversarial.py, widgets/adversarial.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnviz_widgets.engine.optimize import adversarial
from cnnviz_widgets.engine.zoo.samples import sample_image
from tests.helpers import assert_restored, png_to_array

SIZE = 160  # the photos at a smaller size: the claim does not depend on it, the run time does


@pytest.fixture(scope="module")
def photos(effnet):
    import torchvision.transforms.functional as TF

    out = {}
    for name in ("cat", "coffee", "astronaut", "rocket"):
        img = TF.center_crop(TF.resize(sample_image(name), SIZE), SIZE)
        out[name] = TF.to_tensor(img)[None]
    return out


def ce(net, x, cls):
    with torch.no_grad():
        return float(F.cross_entropy(net(x), torch.tensor([cls])))


@pytest.mark.parametrize("name", ["cat", "coffee", "astronaut", "rocket"])
def test_fool_reaches_the_target_under_8_levels(effnet, photos, name):
    x = photos[name]
    for target in ("goldfish", "volcano"):
        with assert_restored(effnet):
            r = adversarial.fool(effnet, x, target, eps=8 / 255, steps=40)
        idx = effnet.class_index(target)
        assert r.success and r.target == idx and r.label is None and r.ended == "reached"
        assert adversarial.predicted_class(effnet, r.image) == idx  # not just what fool says
        assert r.original_class != idx
        linf, l2 = adversarial.perturbation_size(x, r.image)
        assert linf <= (8 / 255) * (1 + 1e-5) and r.linf == pytest.approx(linf)
        assert r.linf_255 == pytest.approx(linf * 255)
        assert l2 == pytest.approx(float((r.image - x).norm()), rel=1e-5)
        assert 0 <= float(r.image.min()) and float(r.image.max()) <= 1
        assert torch.equal(r.original, x) and torch.equal(r.difference, r.image - x)


def test_fool_with_confidence_goes_on_past_the_first_win(effnet, photos):
    # Without confidence, fool stops at the first step where the target is the top class;
    # with it, it goes on until the target's probability reaches the threshold.
    x, idx = photos["coffee"], effnet.class_index("volcano")

    def p_target(image):
        with torch.no_grad():
            return float(effnet(image).softmax(-1)[0, idx])

    first = adversarial.fool(effnet, x, "volcano", eps=8 / 255, steps=60)
    with assert_restored(effnet):
        sure = adversarial.fool(effnet, x, "volcano", eps=8 / 255, steps=60, confidence=0.9)
    assert first.success and sure.success and sure.ended == "reached"
    assert p_target(sure.image) >= 0.9 and sure.linf <= (8 / 255) * (1 + 1e-5)
    assert sure.steps_taken > first.steps_taken and p_target(sure.image) > p_target(first.image)
    with pytest.raises(ValueError, match="confidence 1.5 is out of range"):
        adversarial.fool(effnet, x, "volcano", confidence=1.5)
    with pytest.raises(ValueError, match="targeted attack must reach"):
        adversarial.pgd(effnet, x, confidence=0.9, stop_when_reached=True)


def test_fgsm_is_one_signed_step_that_raises_the_loss(effnet, photos):
    x = photos["coffee"]
    label = adversarial.predicted_class(effnet, x)
    with assert_restored(effnet):
        r = adversarial.fgsm(effnet, x, eps=2 / 255)  # untargeted: away from the model's prediction
    assert r.label == label and r.target is None
    d = (r.image - x).abs()
    inside = (x > 2 / 255) & (x < 1 - 2 / 255)  # where clipping to [0,1] cannot shorten the step
    assert torch.allclose(d[inside], torch.full_like(d[inside], 2 / 255), rtol=1e-4)
    assert ce(effnet, r.image, label) > ce(effnet, x, label)
    assert r.steps_taken == 1


def test_fgsm_targeted_moves_towards_the_target(effnet, photos):
    x = photos["cat"]
    toaster = effnet.class_index("toaster")
    r = adversarial.fgsm(effnet, x, "toaster", eps=2 / 255)
    assert r.target == toaster and r.label is None
    assert ce(effnet, r.image, toaster) < ce(effnet, x, toaster)
    with pytest.raises(ValueError, match="not both"):
        adversarial.fgsm(effnet, x, "toaster", label="tabby")


def test_pgd_targeted_and_untargeted_stay_in_budget(effnet, photos):
    x = photos["cat"]
    toaster = effnet.class_index("toaster")
    r = adversarial.pgd(effnet, x, toaster, eps=4 / 255, step_size=1 / 255, steps=6)
    assert r.linf <= (4 / 255) * (1 + 1e-5) and r.steps_taken == 6 and r.ended == "done"
    assert ce(effnet, r.image, toaster) < ce(effnet, x, toaster)
    label = adversarial.predicted_class(effnet, x)
    u = adversarial.pgd(effnet, x, label=label, eps=4 / 255, step_size=1 / 255, steps=4)
    assert u.label == label and u.target is None
    assert ce(effnet, u.image, label) > ce(effnet, x, label)


def test_magnify_shows_no_change_as_grey():
    z = torch.zeros(1, 3, 4, 4)
    assert torch.equal(adversarial.magnify(z), torch.full_like(z, 0.5))
    assert float(adversarial.magnify(z + 0.01, 10).max()) == pytest.approx(0.6)


def test_bad_inputs_are_one_clear_error(effnet, photos):
    x = photos["cat"]
    with assert_restored(effnet):
        with pytest.raises(ValueError, match=r"eps 0 is out of range: it must be in \(0, 1\] \(\[0, 1\] pixels"):
            adversarial.fool(effnet, x, "goldfish", eps=0)
        with pytest.raises(ValueError, match="eps 8 is out of range.*8/255 = 0.031"):
            adversarial.pgd(effnet, x, "goldfish", eps=8)
        with pytest.raises(ValueError, match="no class named"):
            adversarial.fool(effnet, x, "unicorn")
        with pytest.raises(ValueError, match="steps -3 is out of range"):
            adversarial.fool_iter(effnet, x, "goldfish", steps=-3)
        with pytest.raises(ValueError, match=r"pixels in \[0, 1\]"):
            adversarial.fool(effnet, x * 2, "goldfish")
        with pytest.raises(ValueError):
            adversarial.fool(effnet, np.zeros((2, 2, 7), np.uint8), "goldfish")


def test_app_fools_and_shows_three_pictures(effnet):
    from cnnviz_widgets.widgets import FoolingApp

    app = FoolingApp(model=effnet, image="coffee", target="goldfish", budget=8, steps=40)
    with assert_restored(effnet):
        app.run()
        app.runner.wait()
    assert app.error == ""
    assert app.last.result.ended == "reached"
    assert "fooled: the model now says goldfish" in app.info.value
    assert "original: espresso" in app.info.value
    pic = png_to_array(app.view.value)
    assert pic.shape[0] > app.display_height and pic.shape[1] > 3 * app.display_height  # three side by side


def test_app_confidence_and_targeted_fgsm(effnet):
    # The confidence slider makes fool go on to a sure win; FGSM towards the target is one step.
    from cnnviz_widgets.widgets import FoolingApp

    app = FoolingApp(model=effnet, image="coffee", target="volcano", budget=8, steps=60, confidence=0.9)
    app.run()
    app.runner.wait()
    assert app.error == "" and app.last.result.ended == "reached"
    with torch.no_grad():
        p = float(effnet(app.last.result.image).softmax(-1)[0, effnet.class_index("volcano")])
    assert p >= 0.9 and f"P(volcano) = {p:.3f}" in app.info.value
    app.method.value = "fgsm_target"
    app.run()
    app.runner.wait()
    assert app.error == "" and app.last.result.steps_taken == 1
    assert app.last.result.linf == pytest.approx(8 / 255, rel=1e-4)


def test_app_bad_target_then_works(effnet):
    from cnnviz_widgets.widgets import FoolingApp

    app = FoolingApp(model=effnet, image="cat", steps=3)
    app.class_picker.value = "unicorn"
    app.run()
    app.runner.wait()
    assert "no class named 'unicorn'" in app.error
    app.class_picker.value = "toaster"
    app.method.value = "fgsm"
    app.run()
    app.runner.wait()
    assert app.error == "" and app.last.step == 1
    assert "L-inf" in app.info.value and "8.00/255" in app.info.value
