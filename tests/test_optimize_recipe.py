"""Lucid's recipe as pieces of the loop: decorrelated colours, Fourier scaling, the
transformation-robustness stack, the step-size schedule and the diversity term."""

from __future__ import annotations

import math

import pytest
import torch

from cnnviz_widgets.engine.optimize.ascent import visualize_class, visualize_channel
from cnnviz_widgets.engine.optimize import (COLOR_CORRELATION_SQRT, FourierParam, Jitter, Pad, PixelParam,
                                            RandomCrop, RandomRotate, RandomScale, decorrelated_to_rgb, make_param, optimize,
                                            rgb_to_decorrelated, standard_transforms)
from cnnviz_widgets.engine.optimize import objectives as O


def noise(n=1, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (0.5 + 0.1 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1)


# --- the colour decorrelation ------------------------------------------------------------

def test_colour_matrix_columns_are_orthogonal_principal_directions():
    m = COLOR_CORRELATION_SQRT
    gram = m.T @ m  # U sqrt(S): columns orthogonal, lengths = the standard deviations
    off = gram - torch.diag(gram.diag())
    assert off.abs().max() < 0.01 * gram.diag().max()
    lengths = m.norm(dim=0)
    assert lengths[0] > lengths[1] > lengths[2]  # ordered by variance, luminance first
    first = m[:, 0]
    assert (first - first.mean()).abs().max() < 0.05 * first.mean()  # R = G = B: brightness


def test_decorrelated_noise_has_imagenets_correlated_colours():
    g = torch.Generator().manual_seed(0)
    white = torch.randn(1, 3, 64, 64, generator=g)
    rgb = decorrelated_to_rgb(white).reshape(3, -1)
    corr = torch.corrcoef(rgb)
    assert corr[0, 1] > 0.8 and corr[1, 2] > 0.8 and corr[0, 2] > 0.6  # natural colours move together
    assert torch.corrcoef(white.reshape(3, -1))[0, 1].abs() < 0.1


def test_decorrelation_round_trips_and_its_longest_column_is_one():
    x = torch.randn(2, 3, 5, 7)
    assert torch.allclose(rgb_to_decorrelated(decorrelated_to_rgb(x)), x, atol=1e-4 * float(x.abs().max()))
    units = decorrelated_to_rgb(torch.eye(3).reshape(3, 3, 1, 1)).reshape(3, 3)
    norms = units.norm(dim=1)
    assert math.isclose(float(norms.max()), 1.0, rel_tol=1e-5) and float(norms.min()) < 0.2


@pytest.mark.parametrize("mode", ["clip", "sigmoid"])
def test_decorrelated_pixels_show_the_same_image_but_step_differently(mode):
    x = noise(2)
    plain, decorrelated = PixelParam(x, mode=mode), PixelParam(x, mode=mode, decorrelate=True)
    assert decorrelated.image().shape == (2, 3, 32, 32)
    assert torch.allclose(decorrelated.image(), plain.image(), atol=1e-4)
    # The same loss, one gradient step each: the colour of the change differs.
    for p in (plain, decorrelated):
        (g,) = torch.autograd.grad(p.image()[:, 0].sum(), p.parameters())
        with torch.no_grad():
            p.raw -= 0.01 * g
    d_plain = (plain.image() - x).detach().mean(dim=(0, 2, 3))
    d_dec = (decorrelated.image() - x).detach().mean(dim=(0, 2, 3))
    assert d_plain[1].abs() < 1e-3 * d_plain[0].abs()  # plain: only red moved
    assert d_dec[1].abs() > 0.3 * d_dec[0].abs()  # decorrelated: green moves with red


def test_decorrelated_pixels_stay_valid_after_steps():
    p = PixelParam(noise(), decorrelate=True)
    with torch.no_grad():
        p.raw += 3.0
    p.after_step()
    img = p.image().detach()
    assert float(img.min()) >= 0 and float(img.max()) <= 1 + 1e-6
    p.set_image(noise(seed=1))
    assert torch.allclose(p.image(), noise(seed=1), atol=1e-4)


def test_make_param_batches_and_decorrelates_by_default_only_in_fourier():
    fourier = make_param("fourier", 48, batch=3, seed=1)
    assert fourier.decorrelate and fourier.image().shape == (3, 3, 48, 48)
    pixels = make_param("pixel", 48, batch=2)
    assert not pixels.decorrelate and pixels.image().shape == (2, 3, 48, 48)
    lucid = make_param("pixel", 48, decorrelate=True)
    assert lucid.decorrelate and lucid.mode == "sigmoid"
    a = make_param("fourier", 48, seed=1, decorrelate=False).image()
    assert not torch.allclose(a, make_param("fourier", 48, seed=1).image())


# --- Fourier scaling by frequency ----------------------------------------------------------

def test_fourier_scale_falls_as_one_over_frequency():
    p = FourierParam(64, seed=0)
    # fftfreq: row 1 is frequency 1/64, row 2 is 2/64; the DC term is capped at 1/64.
    assert math.isclose(float(p.scale[1, 0] / p.scale[2, 0]), 2.0, rel_tol=1e-5)
    assert math.isclose(float(p.scale[0, 0]), float(p.scale[0, 1]), rel_tol=1e-5)
    steeper = FourierParam(64, seed=0, decay_power=2.0)
    assert math.isclose(float(steeper.scale[1, 0] / steeper.scale[2, 0]), 4.0, rel_tol=1e-5)


def test_fourier_images_have_more_low_frequency_energy_than_pixel_noise():
    img = FourierParam(64, seed=0, sd=0.5, decorrelate=False).image().detach() - 0.5
    spectrum = torch.fft.rfft2(img).abs()[0].mean(0)
    low, high = spectrum[1:4, 1:4].mean(), spectrum[24:32, 24:32].mean()
    assert low > 4 * high


# --- transforms ------------------------------------------------------------------------------

def test_pad_adds_a_grey_border():
    x = torch.zeros(2, 3, 10, 12)
    out = Pad(3)(x, torch.Generator())
    assert out.shape == (2, 3, 16, 18)
    assert torch.all(out[..., :3, :] == 0.5) and torch.all(out[..., 3:13, 3:15] == 0)


def test_crop_jitter_is_smaller_seeded_and_a_true_crop():
    x = torch.arange(2 * 3 * 20 * 20, dtype=torch.float).reshape(2, 3, 20, 20)
    j = Jitter(4, mode="crop")
    a = j(x, torch.Generator().manual_seed(5))
    b = j(x, torch.Generator().manual_seed(5))
    assert a.shape == (2, 3, 16, 16) and torch.equal(a, b)
    outs = {tuple(j(x, torch.Generator().manual_seed(s))[0, 0, 0, :1].tolist()) for s in range(12)}
    assert len(outs) > 1  # different seeds, different places
    dy, dx = divmod(int(a[0, 0, 0, 0]), 20)
    assert torch.equal(a, x[..., dy:dy + 16, dx:dx + 16])
    with pytest.raises(ValueError, match="jitter 20 crops away all of a 20x20 image"):
        Jitter(20, mode="crop")(x, torch.Generator())


def test_standard_stack_is_lucids_seeded_and_leaves_the_global_rng_alone():
    stack = standard_transforms()
    assert [type(t).__name__ for t in stack] == ["Pad", "Jitter", "RandomScale", "RandomRotate", "Jitter"]
    assert (stack[0].pixels, stack[1].pixels, stack[4].pixels) == (12, 8, 4)
    assert (stack[2].lo, stack[2].hi, stack[3].degrees) == (0.9, 1.1, 10.0)
    x = noise(2, 64)

    def apply(seed):
        g, y = torch.Generator().manual_seed(seed), x
        for t in stack:
            y = t(y, g)
        return y

    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    a, b, c = apply(3), apply(3), apply(4)
    assert torch.equal(torch.rand(3), expected)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # 64 + 2*12 - 8, scaled by 0.9..1.1, then 4 cropped: the size stays near the input's.
    assert a.shape[:2] == (2, 3) and 64 <= a.shape[-1] <= 88


def test_rotation_turns_every_image_of_a_batch_alike():
    x = noise(3, 32)
    out = RandomRotate(30)(x, torch.Generator().manual_seed(0))
    single = RandomRotate(30)(x[1:2], torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.allclose(out[1:2], single)


def test_random_crop_zooms_into_a_square_of_the_image_and_keeps_the_size():
    x = torch.zeros(1, 3, 40, 40)
    x[..., :20, :] = 1.0  # top half white: a crop of at least 60% of the side sees both halves
    crop = RandomCrop(0.6)
    outs = [crop(x, torch.Generator().manual_seed(s)) for s in range(12)]
    assert all(o.shape == x.shape for o in outs)
    assert all(0 < float(o.mean()) < 1 for o in outs)
    assert len({round(float(o.mean()), 4) for o in outs}) > 3  # the frame moves
    again = crop(x, torch.Generator().manual_seed(5))
    assert torch.equal(again, outs[5])
    whole = RandomCrop(1.0)(noise(1, 32), torch.Generator().manual_seed(0))
    assert torch.equal(whole, noise(1, 32))  # smallest 1: the image itself
    with pytest.raises(ValueError, match="crop"):
        RandomCrop(0.0)


def test_ascent_crop_adds_the_random_crop_and_keeps_the_image_size(shapes_net):
    r = visualize_class(shapes_net, 1, size=48, steps=3, crop=0.7, seed=0)
    assert r.image.shape == (1, 3, 48, 48) and torch.isfinite(r.image).all()
    with pytest.raises(ValueError, match="crop"):
        visualize_class(shapes_net, 1, size=48, steps=3, crop=1.5)


# --- diversity ---------------------------------------------------------------------------------

def test_gram_similarity_is_one_for_identical_images_and_lower_for_distinct():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(1, 8, 6, 6, generator=g)
    same = O.gram_similarity(torch.cat([a, a, a]))
    assert math.isclose(float(same), 1.0, rel_tol=1e-5)
    b = torch.rand(1, 8, 6, 6, generator=g)
    b[:, :4] = 0  # another style: half the channels silent
    distinct = O.gram_similarity(torch.cat([a, b]))
    assert float(distinct) < 0.9
    assert float(O.gram_similarity(a)) == 0.0
    # Scale-free: louder activations, same similarity.
    assert math.isclose(float(O.gram_similarity(torch.cat([a, 5 * b]))), float(distinct), rel_tol=1e-5)


def test_diversity_term_pushes_a_batch_apart(shapes_net):
    layer = "conv3"
    settings = dict(size=64, steps=12, batch=3, param="fourier", seed=0, jitter=1)
    alike = visualize_channel(shapes_net, layer, 5, **settings)
    apart = visualize_channel(shapes_net, layer, 5, diversity=2.0, diversity_layer="conv2", **settings)
    assert alike.image.shape == apart.image.shape == (3, 3, 64, 64)
    assert "conv2 diversity" in apart.losses

    def similarity(images):
        with torch.no_grad(), shapes_net.capture(["conv2"]) as got:
            shapes_net(images.to(shapes_net.device))
        return float(O.gram_similarity(got["conv2"]))

    assert similarity(apart.image) < similarity(alike.image)


# --- the schedule and the ascent settings --------------------------------------------------------

def test_cosine_schedule_shrinks_the_later_steps(shapes_net):
    x = noise(1, 64)
    moved = {}
    for schedule in ("constant", "cosine"):
        last = optimize(shapes_net, O.class_score(2), PixelParam(x), steps=2, step_size=0.01, optimizer="sign",
                        schedule=schedule)
        moved[schedule] = float((last.image - x).abs().median())
    # Sign steps move each pixel by the rate: constant 0.01 + 0.01; cosine 0.01 + 0.005.
    assert math.isclose(moved["constant"], 0.02, rel_tol=0.01)
    assert math.isclose(moved["cosine"], 0.015, rel_tol=0.01)


def test_ascent_checks_the_recipes_settings(shapes_net):
    with pytest.raises(ValueError, match="diversity compares the images of a batch"):
        visualize_class(shapes_net, 1, size=48, steps=1, diversity=1.0)
    with pytest.raises(ValueError, match="schedule"):
        visualize_class(shapes_net, 1, size=48, steps=1, schedule="sometimes")
    with pytest.raises(ValueError, match="batch"):
        visualize_class(shapes_net, 1, size=48, steps=1, batch=0)
    r = visualize_class(shapes_net, 1, size=48, steps=2, pad=4, jitter=2, final_jitter=2, scale=0.1, rotate=5,
                        decorrelate=True, param="pixel", schedule="cosine")
    assert r.image.shape == (1, 3, 48, 48) and r.ended == "done"


def test_the_recognisable_recipe_is_a_valid_setting_of_the_ascent(effnet):
    """`ascent.RECOGNISABLE` (chosen by benchmarks/bench_recognisability.py) names only
    settings `visualize_class` takes, and runs: shrunk here, as in quick mode."""
    from cnnviz_widgets.engine.optimize import ascent

    assert RandomCrop(ascent.RECOGNISABLE["crop"]).smallest == ascent.RECOGNISABLE["crop"]
    shrunk = {**ascent.RECOGNISABLE, "size": 96}
    start = visualize_class(effnet, "goldfish", **{**shrunk, "steps": 0})
    r = visualize_class(effnet, "goldfish", **{**shrunk, "steps": 5})
    assert r.image.shape == (1, 3, 96, 96) and r.steps_taken == 5 and r.ended == "done"
    goldfish = effnet.class_index("goldfish")
    with torch.no_grad():
        before, after = (float(effnet(x.image)[0, goldfish]) for x in (start, r))
    assert after > before  # five steps through the random zooms already raise the logit
