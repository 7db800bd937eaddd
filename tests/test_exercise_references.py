"""Each exercise's reference (its model solution, plain torch) agrees with the kit's own
technique where the engine has one: the checkers compare learners with something right."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from instructor import solutions as S

from .conftest import make_random_alexnet


def _image(seed: int, h: int = 64, w: int = 64) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _shape(net, i: int = 3):
    from cnnviz_widgets import load_dataset

    item = load_dataset("shapes", n=i + 1, seed=77)[i]
    return net.preprocess(item.image), item.label


def tensors_close(a, b, rtol):
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = float(b.abs().max())
    assert float((a - b).abs().max()) <= rtol * scale, float((a - b).abs().max()) / scale


def test_filter_tiles_is_the_renderers_per_tile_scaling(shapes_net):
    from cnnviz_widgets.engine.inspect.filters import first_layer_filters
    from cnnviz_widgets.render import normalize

    w = first_layer_filters(shapes_net).weights
    w[5] = 0.25  # a flat filter: both give zeros
    tensors_close(S.filter_tiles(w), normalize(w, "per_tile"), 1e-5)
    assert float(S.filter_tiles(w)[5].abs().max()) == 0


def test_nearest_neighbors_agrees_with_the_engines_cosine_search(shapes_net, shapes_data):
    from cnnviz_widgets.engine.inspect.features import extract_features
    from cnnviz_widgets.engine.inspect.neighbors import nearest_neighbors

    feats = extract_features(shapes_net, shapes_data, "fc7").vectors
    for query in (feats[3] * 2.5, feats[11] + 0.1, torch.rand(feats.shape[1], generator=torch.Generator().manual_seed(1))):
        mine = S.nearest_neighbors(feats, query, 7).tolist()
        assert mine == nearest_neighbors(feats, query, k=7, metric="cosine")[0].tolist()


def test_pca_2d_agrees_with_the_engines_pca_up_to_the_sign_of_each_axis(shapes_net, shapes_data):
    from cnnviz_widgets.engine.inspect.embedding import embed
    from cnnviz_widgets.engine.inspect.features import extract_features

    feats = extract_features(shapes_net, shapes_data, "fc7").vectors
    mine = S.pca_2d(feats.double()).numpy()
    theirs = embed(feats, "pca").coords.astype(np.float64)
    signs = np.sign((mine * theirs).sum(0))
    tensors_close(mine * signs, theirs, 1e-3)


def test_top_channels_agrees_with_the_engine(effnet, shapes_net):
    from cnnviz_widgets import sample_image
    from cnnviz_widgets.engine.inspect.activations import activations, top_channels

    for net, layer in ((effnet, "stage6"), (shapes_net, "conv5"), (effnet, "stage2")):
        acts = activations(net, sample_image("cat"), layer).maps
        assert S.top_channels(acts, 6).tolist() == top_channels(acts, 6).tolist()


def _layers_up_to(net, layer):
    """(kernel, stride, padding) of the convolutions and poolings of an AlexNet-shaped
    network's feature stack, up to `layer`."""
    index = list(net.model.features).index(net.module(layer))
    out = []
    for m in list(net.model.features)[: index + 1]:
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
            pair = lambda v: v[0] if isinstance(v, tuple) else v
            out.append((pair(m.kernel_size), pair(m.stride), pair(m.padding)))
    return out


@pytest.mark.parametrize("which", ["shapes", "alexnet"])
def test_receptive_field_agrees_with_the_networks_own(which, shapes_net):
    net = shapes_net if which == "shapes" else make_random_alexnet()
    for layer in ("conv1", "conv2", "conv3", "conv4", "conv5"):
        rf = net.receptive_field(layer)
        assert S.receptive_field(_layers_up_to(net, layer)) == (rf.size, rf.stride), layer
    if which == "alexnet":
        assert S.receptive_field(_layers_up_to(net, "conv5")) == (163, 16)


@pytest.mark.parametrize("method", ["naive", "incremental"])
def test_occlusion_map_agrees_with_the_engine_where_the_positions_are_the_same(shapes_net, method):
    from cnnviz_widgets.engine.attribution.occlusion import occlusion

    x, label = _shape(shapes_net)
    for patch, stride in ((16, 8), (20, 11)):   # (64 - patch) is a multiple of the stride
        # A class index means its probability, as in the exercise.
        heat = occlusion(shapes_net, x, label, patch=patch, stride=stride, fill="grey", method=method).heat
        tensors_close(S.occlusion_map(shapes_net, x, label, patch, stride), heat, 1e-4)


def test_saliency_agrees_with_the_engine(shapes_net, effnet):
    from cnnviz_widgets.engine.attribution.saliency import saliency

    x, label = _shape(shapes_net)
    tensors_close(S.saliency(shapes_net, x, label), saliency(shapes_net, x, label).map[0], 1e-3)
    photo = _image(5, 96, 80)
    tensors_close(S.saliency(effnet, photo, 281), saliency(effnet, photo, 281).map[0], 1e-3)


class _ReferenceRule(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return S.guided_relu_backward(grad, x)


def test_guided_relu_backward_in_every_relu_gives_the_engines_guided_backprop(shapes_net):
    """The reference rule, put into every ReLU of the shapes net, reproduces the engine's
    guided backpropagation of a class."""
    from cnnviz_widgets.engine.attribution.guided import guided_backprop

    x, label = _shape(shapes_net, 5)
    handles = [m.register_forward_hook(lambda m, i, o: _ReferenceRule.apply(i[0]))
               for m in shapes_net.modules() if isinstance(m, nn.ReLU)]
    try:
        xr = x.clone().requires_grad_(True)
        with torch.enable_grad():
            shapes_net(xr)[0, label].backward()
    finally:
        for h in handles:
            h.remove()
    tensors_close(xr.grad, guided_backprop(shapes_net, x, label, rule="guided").per_channel, 1e-4)


def test_ascent_step_is_one_sgd_step_of_the_engines_loop(shapes_net):
    from cnnviz_widgets.engine.optimize import L2, PixelParam, objectives, optimize

    x, _ = _shape(shapes_net)
    lr, weight = 0.05, 3.0
    last = optimize(shapes_net, objectives.class_score(4), PixelParam(x), steps=1, step_size=lr, optimizer="sgd",
                    regularizers=[L2(weight)])
    # The loop's L2 is weight * mean((x - 0.5)^2), the exercise's l2 * sum(...): the same with l2 = weight / numel.
    mine = S.ascent_step(shapes_net, x, 4, lr, weight / x.numel()).clamp(0, 1)
    tensors_close(last.image - x.cpu(), mine.cpu() - x.cpu(), 1e-3)


def test_pgd_step_twice_is_two_steps_of_the_engines_pgd(shapes_net, effnet):
    from cnnviz_widgets.engine.optimize import adversarial

    for net, x, target, eps, alpha in ((shapes_net, _shape(shapes_net)[0], 7, 0.03, 0.02),
                                       (effnet, _image(9), 1, 8 / 255, 6 / 255)):
        theirs = adversarial.pgd(net, x, target, eps=eps, step_size=alpha, steps=2).image.to(x.device)
        mine = S.pgd_step(net, S.pgd_step(net, x, x, target, eps, alpha), x, target, eps, alpha)
        # Signs of gradients within rounding of 0 may differ between two summation orders.
        agree = float(((mine - theirs).abs() < 1e-6).double().mean())
        assert agree > 0.999, agree
        # Two steps of alpha > eps / 2 reach the box's edge: the projection was needed.
        assert float((mine - x).abs().max()) == pytest.approx(eps, rel=1e-5)


def test_guided_dream_step_is_one_normalised_step_of_the_engines_loop_on_the_guided_objective(effnet):
    from cnnviz_widgets.engine.optimize import PixelParam, objectives, optimize

    x, guide = _image(3, 64, 80), _image(4, 96, 72)
    with torch.no_grad():
        means = effnet.forward_to(guide, "stage3").mean(dim=(2, 3), keepdim=True)
    guided = objectives.Objective.term("guided", lambda out: -(out["stage3"] * means).sum(), ("stage3",))
    last = optimize(effnet, guided, PixelParam(x), steps=1, step_size=0.02, optimizer="normalized")
    mine = S.guided_dream_step(effnet, x, guide, "stage3", 0.02).clamp(0, 1)
    tensors_close(last.image - x.cpu(), mine.cpu() - x.cpu(), 1e-3)
    # The guide matters: another guide gives another step.
    other = S.guided_dream_step(effnet, x, _image(5, 96, 72).flip(-1) ** 3, "stage3", 0.02)
    assert float((other - mine).abs().max()) > 0.1 * float((mine - x).abs().max())


def test_total_variation_is_the_engines_tv_penalty():
    from cnnviz_widgets.engine.optimize import TotalVariation

    for x in (_image(1), _image(2, 5, 9), _image(3, 2, 2)):
        # The engine adds 1e-8 inside (dx^2 + dy^2 + 1e-8)^(beta / 2) so beta < 2 stays differentiable.
        expected = float(S.total_variation(x))
        assert abs(float(TotalVariation(1.0).penalty(x)) - 1e-8 - expected) <= 1e-5 * expected  # float32 vs float64


def test_deletion_curve_is_the_engines_deletion_to_black(shapes_net):
    """The exercise's curve equals `evaluation.deletion_curve(fill="black")` where the two
    take the same pixels: a map without ties, and steps that divide the pixels."""
    from cnnviz_widgets.engine.evaluation.scores import deletion_curve

    x, label = _shape(shapes_net)
    heat = torch.rand(64, 64, generator=torch.Generator().manual_seed(13))
    mine = S.deletion_curve(shapes_net, x, label, heat, 8)
    theirs = deletion_curve(shapes_net, x, label, heat, steps=8, fill="black")
    tensors_close(mine, torch.from_numpy(theirs.probabilities), 1e-4)
    assert float(mine[0]) > float(mine[-1])  # all black: the shape is gone


def test_gram_matrix_and_style_loss_are_the_engines():
    from cnnviz_widgets.engine.optimize import style  # lesson 14 only: the module imports the whole optimize package

    g = torch.Generator().manual_seed(14)
    features = {"a": torch.randn(2, 4, 5, 6, generator=g), "b": torch.randn(2, 3, 3, 3, generator=g)}
    tensors_close(S.gram_matrix(features["a"]), style.gram_matrix(features["a"]), 1e-6)
    grams = {k: style.gram_matrix(torch.randn(v.shape, generator=g)) for k, v in features.items()}
    weights = {"a": 0.3, "b": 2.0}
    tensors_close(torch.as_tensor(S.style_loss(features, grams, weights)),
                         style.style_loss(features, grams, weights), 1e-6)
