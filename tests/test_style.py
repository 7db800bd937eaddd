"""Lesson 14's engine (`engine.optimize.style`): the Gram matrix and the style loss
against plain-torch references, style transfer step for step against a plain-torch
loop of the same settings, texture synthesis approaching its target, the model
restored, the bundled textures as documented."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnviz_widgets.engine.optimize import style
from cnnviz_widgets.engine.zoo import textures
from tests.helpers import assert_restored, close_to_scale, tiny_network


@pytest.fixture(scope="module")
def net():
    return tiny_network(seed=4)


def _pictures(n=2, seed=0, size=32):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def reference_gram(features):
    """Plain torch, one image and one channel pair at a time: sum_k F_ik F_jk / (C H W)."""
    n, c, h, w = features.shape
    out = torch.zeros(n, c, c, dtype=features.dtype)
    for b in range(n):
        for i in range(c):
            for j in range(c):
                out[b, i, j] = (features[b, i] * features[b, j]).sum() / (c * h * w)
    return out


def einsum_gram(features):
    """The same reference, vectorised (for the step-for-step loop)."""
    n, c, h, w = features.shape
    return torch.einsum("nihw,njhw->nij", features, features) / (c * h * w)


def test_gram_matrix_agrees_with_a_plain_torch_reference():
    g = torch.Generator().manual_seed(1)
    features = torch.randn(2, 5, 6, 7, generator=g, dtype=torch.float64)
    ours = style.gram_matrix(features)
    assert ours.shape == (2, 5, 5)
    close_to_scale(ours, reference_gram(features), 1e-12)
    assert torch.allclose(ours, ours.transpose(1, 2))
    # The same texture at twice the size (tiled 2 x 2) has the same Gram matrix: the C*H*W normalisation.
    close_to_scale(style.gram_matrix(features.repeat(1, 1, 2, 2)), ours, 1e-12)
    with pytest.raises(ValueError, match="N x C x H x W"):
        style.gram_matrix(features[0])


def test_style_loss_is_the_weighted_sum_of_squared_gram_differences():
    g = torch.Generator().manual_seed(2)
    feats = {"a": torch.randn(1, 4, 5, 5, generator=g), "b": torch.randn(1, 3, 4, 4, generator=g)}
    targets = {"a": torch.randn(1, 4, 4, generator=g), "b": torch.randn(3, 3, generator=g)}
    weights = {"a": 2.0, "b": 0.5}
    expected = sum(w * ((reference_gram(feats[l]) - targets[l]) ** 2).sum() for l, w in weights.items())
    assert float(style.style_loss(feats, targets, weights)) == pytest.approx(float(expected), rel=1e-5)
    with pytest.raises(ValueError, match="at least one layer"):
        style.style_loss(feats, targets, {})


def _plain_forward(body, x, upto):
    """The tiny network by hand: normalise, then run the Sequential to the layer's index."""
    h = (x - 0.5) / 0.25
    for i, m in enumerate(body):
        h = m(h)
        if i == upto:
            return h
    raise AssertionError(upto)


def test_transfer_style_agrees_step_for_step_with_a_plain_torch_loop(net):
    content, style_picture = _pictures(2, seed=3)
    steps, step_size, style_weight, tv_weight = 6, 0.02, 3.0, 0.2
    index = {"tiny_a": 1, "tiny_b": 4}
    run = list(style.transfer_style_iter(net, content, style_picture, content_layer="tiny_b",
                                         style_layers={"tiny_a": 1.0, "tiny_b": 0.5}, style_weight=style_weight,
                                         tv_weight=tv_weight, size=32, steps=steps, step_size=step_size, every=1))
    # The reference: a copy of the weights, Adam on the pixels, clamped to [0, 1] after each step.
    body = copy.deepcopy(next(m for m in net.modules() if isinstance(m, torch.nn.Sequential))).eval()
    for p in body.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        content_target = _plain_forward(body, content[None], index["tiny_b"])
        grams = {l: einsum_gram(_plain_forward(body, style_picture[None], i)) for l, i in index.items()}
    weights = {"tiny_a": 1.0 / grams["tiny_a"].pow(2).sum(), "tiny_b": 0.5 / grams["tiny_b"].pow(2).sum()}
    x = content[None].clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=step_size)
    images = []
    for _ in range(steps):
        c = _plain_forward(body, x, index["tiny_b"])
        content_loss = (c - content_target).pow(2).sum() / content_target.pow(2).sum()
        style_loss = sum(w * (einsum_gram(_plain_forward(body, x, index[l])) - grams[l]).pow(2).sum()
                         for l, w in weights.items())
        dy = x[..., 1:, :-1] - x[..., :-1, :-1]
        dx = x[..., :-1, 1:] - x[..., :-1, :-1]
        loss = content_loss + style_weight * style_loss + tv_weight * (dx * dx + dy * dy + 1e-8).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)
        images.append(x.detach().clone())
    assert [p.step for p in run] == list(range(1, steps + 1))
    for p, expected in zip(run, images):
        close_to_scale(p.result.image, expected, 1e-4)
    assert float((images[-1] - content).abs().max()) > 10 * 1e-4, "the run must move the image to compare anything"
    final = run[-1].result
    assert final.ended == "done" and final.content_layer == "tiny_b" and final.style_layers == {"tiny_a": 1.0,
                                                                                                "tiny_b": 0.5}


def test_texture_synthesis_approaches_the_target_grams(net):
    texture = _pictures(1, seed=5)[0]
    r = style.synthesize_texture(net, texture, layers=["tiny_a", "tiny_b"], size=32, steps=40, step_size=0.06)
    for layer in ("tiny_a", "tiny_b"):
        assert r.gram_distance[layer] < 0.5 * r.start_gram_distance[layer], (r.gram_distance, r.start_gram_distance)
    assert r.style.shape == (1, 3, 32, 32) and r.image.shape == (1, 3, 32, 32)
    assert 0 <= float(r.image.min()) and float(r.image.max()) <= 1


def test_style_weight_trades_content_for_style(net):
    rows = torch.linspace(0, 1, 32)
    content = torch.stack([rows[:, None].expand(32, 32), rows[None, :].expand(32, 32), 0.5 * torch.ones(32, 32)])
    style_picture = (torch.sin(rows * 40)[None, :, None] * torch.tensor([0.5, -0.4, 0.3])[:, None, None] + 0.5
                     ).expand(3, 32, 32)
    kw = dict(content_layer="tiny_b", style_layers=["tiny_a", "tiny_b"], size=32, steps=30, step_size=0.05)
    little = style.transfer_style(net, content, style_picture, style_weight=0.1, **kw)
    much = style.transfer_style(net, content, style_picture, style_weight=100.0, **kw)
    assert much.gram_distance["tiny_a"] < little.gram_distance["tiny_a"]
    assert much.content_distance > little.content_distance
    assert np.isfinite(much.style_content_distance) and much.style_content_distance > 0


def test_bad_settings_raise_before_any_work_and_the_model_is_restored(net):
    content, style_picture = _pictures(2, seed=7)
    with assert_restored(net):
        with pytest.raises(ValueError, match="at least one layer"):
            style.synthesize_texture_iter(net, style_picture, layers={"tiny_a": 0.0})
        with pytest.raises(ValueError, match="tiny_q"):
            style.transfer_style_iter(net, content, style_picture, content_layer="tiny_q", style_layers=["tiny_a"])
        with pytest.raises(ValueError, match="start"):
            style.transfer_style_iter(net, content, style_picture, content_layer="tiny_b", style_layers=["tiny_a"],
                                      start="photo")
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            style.synthesize_texture_iter(net, style_picture * 3, layers=["tiny_a"])
        run = style.transfer_style_iter(net, content, style_picture, content_layer="tiny_b",
                                        style_layers=["tiny_a"], size=32, steps=5, every=1)
        first = next(run)  # paused mid-run: nothing held
        assert first.result.ended == "" and not first.done
    with assert_restored(net):
        run.close()


def test_noise_start_is_seeded(net):
    content, style_picture = _pictures(2, seed=8)
    kw = dict(content_layer="tiny_b", style_layers=["tiny_a"], size=32, steps=2, start="noise")
    a = style.transfer_style(net, content, style_picture, seed=1, **kw)
    b = style.transfer_style(net, content, style_picture, seed=1, **kw)
    c = style.transfer_style(net, content, style_picture, seed=2, **kw)
    assert torch.equal(a.image, b.image) and not torch.equal(a.image, c.image)


def test_bundled_textures_are_as_documented():
    readme = (textures.TEXTURES_DIR / "README.md").read_text(encoding="utf-8")
    for name in textures.texture_names():
        info = textures.texture_info(name)
        image = textures.texture_image(name)
        assert image.mode == "RGB" and image.size == (192, 192)
        assert f"`{name}`" in readme and info["file"] in readme and info["licence"] in ("CC0", "public domain")
    for name in ("mosaic", "waves"):  # the kit's own: the files are what the code draws
        assert np.array_equal(np.asarray(textures.texture_image(name)), np.asarray(textures.draw_texture(name)))
    with pytest.raises(ValueError, match="the textures are: mosaic, waves, brick"):
        textures.texture_image("starry night")


def test_style_app_runs_stops_and_reports_bad_settings(net):
    from cnnviz_widgets.widgets import StyleApp
    from tests.helpers import png_to_array

    app = StyleApp(model=net, image="cat", style="waves", size=32, steps=6, threaded=False)
    assert app.style_picker.value == "waves" and app.content_layer.value == "tiny_b"
    assert app.chosen_weights() == {"tiny_a": 1.0, "tiny_b": 1.0}
    with assert_restored(net):
        app.run()
        app.runner.wait()
    assert app.error == "" and app.last.done and app.last.result.ended == "done"
    assert "Gram distance" in app.info.value and "content distance at tiny_b" in app.info.value
    pic = png_to_array(app.view.value)
    assert pic.shape[1] > 2.5 * pic.shape[0] * 0.8  # content, style and result side by side
    app.texture_only.value = True
    app.run()
    app.runner.wait()
    assert app.error == "" and isinstance(app.last.result, style.TextureResult)
    assert not isinstance(app.last.result, style.StyleResult)
    for slider in app.layer_weights.values():
        slider.value = 0.0
    app.run()
    assert "at least one style layer" in app.error
    bad = StyleApp(model=net, style="starry night", threaded=False)  # built with the default, message shown
    assert bad.style_picker.value == "mosaic"


def test_style_app_stop_keeps_the_image_so_far(net):
    from cnnviz_widgets.widgets import StyleApp

    app = StyleApp(model=net, image="coffee", size=32, steps=50, threaded=False)
    calls = {"n": 0}

    def stop_after_two():
        calls["n"] += 1
        return calls["n"] > 2

    with assert_restored(net):
        run = app.prepare()(stop_after_two)
        last = list(run)[-1]
    assert last.result.ended == "stopped" and last.step < 50


def test_without_style_the_photo_stays_exactly(net):
    """The content target is computed in the loop's memory layout: otherwise float noise in
    the target gives a tiny gradient that Adam scales up to full-size steps."""
    content, style_picture = _pictures(2, seed=9)
    r = style.transfer_style(net, content, style_picture, content_layer="tiny_b", style_layers=["tiny_a"],
                             style_weight=0.0, size=32, steps=10)
    assert torch.equal(r.image, content[None]) and r.losses["total"] == 0.0
