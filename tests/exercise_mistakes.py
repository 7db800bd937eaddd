"""Deliberately wrong answers to the exercises, written the way a learner would
get them wrong (independently of the checkers' own models of each mistake), each with
the diagnosis `check` must name. Used by tests/test_exercises.py."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

WRONG: dict[str, list] = {}


def wrong(exercise: str, diagnosis: str):
    def register(fn):
        WRONG.setdefault(exercise, []).append((diagnosis, fn))
        return fn
    return register


# --- 01 filter_tiles
@wrong("filter_tiles", "global")
def tiles_global(weights):
    return (weights - weights.min()) / (weights.max() - weights.min())


@wrong("filter_tiles", "per_channel")
def tiles_per_channel(weights):
    lo = weights.amin(dim=(2, 3), keepdim=True)
    hi = weights.amax(dim=(2, 3), keepdim=True)
    return (weights - lo) / (hi - lo + 1e-12)


@wrong("filter_tiles", "flat_filter")
def tiles_zero_division(weights):
    out = torch.empty_like(weights)
    for i, w in enumerate(weights):
        out[i] = (w - w.min()) / (w.max() - w.min())
    return out


@wrong("filter_tiles", "max_only")
def tiles_max_only(weights):
    return weights / weights.flatten(1).max(dim=1).values[:, None, None, None]


@wrong("filter_tiles", "symmetric")
def tiles_symmetric(weights):
    m = weights.abs().flatten(1).max(dim=1).values.view(-1, 1, 1, 1)
    return 0.5 + weights / (2 * m)


@wrong("filter_tiles", "changed_input")
def tiles_in_place(weights):
    lo = weights.amin(dim=(1, 2, 3), keepdim=True)
    hi = weights.amax(dim=(1, 2, 3), keepdim=True)
    weights -= lo
    weights /= (hi - lo).clamp_min(1e-12)
    return weights


@wrong("filter_tiles", "range")
def tiles_standardised(weights):
    w = weights - weights.mean(dim=(1, 2, 3), keepdim=True)
    return w / w.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)


# --- 02 nearest_neighbors
@wrong("nearest_neighbors", "farthest")
def nn_farthest(features, query, k):
    sims = F.cosine_similarity(features, query[None], dim=1)
    return torch.topk(sims, k, largest=False).indices


@wrong("nearest_neighbors", "l2")
def nn_euclidean(features, query, k):
    distances = ((features - query) ** 2).sum(dim=1)
    return distances.argsort()[:k]


@wrong("nearest_neighbors", "dot")
def nn_dot(features, query, k):
    return (features @ query).topk(k).indices


@wrong("nearest_neighbors", "nearest_last")
def nn_nearest_last(features, query, k):
    sims = F.cosine_similarity(features, query[None], dim=1)
    return sims.argsort()[len(sims) - k:]


@wrong("nearest_neighbors", "values_not_indices")
def nn_values(features, query, k):
    sims = F.cosine_similarity(features, query[None], dim=1)
    return sims.sort(descending=True).values[:k]


@wrong("nearest_neighbors", "off_by_one")
def nn_off_by_one(features, query, k):
    sims = F.cosine_similarity(features, query[None], dim=1)
    return sims.argsort(descending=True)[: k + 1]


# --- 03 pca_2d
@wrong("pca_2d", "no_centring")
def pca_uncentred(features):
    _, _, vt = torch.linalg.svd(features, full_matrices=False)
    return features @ vt[:2].T


@wrong("pca_2d", "smallest_axes")
def pca_eigh_first_columns(features):
    x = features - features.mean(0)
    cov = x.T @ x / (len(x) - 1)
    _, vectors = torch.linalg.eigh(cov)
    return x @ vectors[:, :2]


@wrong("pca_2d", "columns_of_vt")
def pca_columns(features):
    x = features - features.mean(0)
    _, _, vt = torch.linalg.svd(x, full_matrices=False)
    return x @ vt[:, :2]


@wrong("pca_2d", "u_only")
def pca_u(features):
    x = features - features.mean(0)
    u, _, _ = torch.linalg.svd(x, full_matrices=False)
    return u[:, :2]


@wrong("pca_2d", "transposed")
def pca_transposed(features):
    x = features - features.mean(0)
    _, _, vt = torch.linalg.svd(x, full_matrices=False)
    return vt[:2] @ x.T


@wrong("pca_2d", "swapped_axes")
def pca_eigh_wrong_order(features):
    x = features - features.mean(0)
    _, vectors = torch.linalg.eigh(x.T @ x)
    return x @ vectors[:, -2:]


# --- 04 top_channels
@wrong("top_channels", "max_not_mean")
def top_by_max(acts, k):
    return acts.flatten(1).max(dim=1).values.topk(k).indices


@wrong("top_channels", "weakest")
def top_weakest(acts, k):
    return acts.mean(dim=(1, 2)).argsort()[:k]


@wrong("top_channels", "abs_mean")
def top_abs(acts, k):
    return acts.abs().mean(dim=(1, 2)).topk(k).indices


@wrong("top_channels", "positions")
def top_positions(acts, k):
    return acts.mean(dim=0).flatten().topk(k).indices


@wrong("top_channels", "order")
def top_ascending_of_best(acts, k):
    return acts.mean(dim=(1, 2)).topk(k).indices.flip(0)


# --- 05 receptive_field
@wrong("receptive_field", "stride_first")
def rf_stride_first(layers):
    size, stride = 1, 1
    for kernel, s, padding in layers:
        stride *= s
        size += (kernel - 1) * stride
    return size, stride


@wrong("receptive_field", "no_strides")
def rf_no_strides(layers):
    size, stride = 1, 1
    for kernel, s, padding in layers:
        size += kernel - 1
        stride *= s
    return size, stride


@wrong("receptive_field", "padding")
def rf_padding(layers):
    size, stride = 1, 1
    for kernel, s, padding in layers:
        size += (kernel - 1 + 2 * padding) * stride
        stride *= s
    return size, stride


@wrong("receptive_field", "start_zero")
def rf_from_zero(layers):
    size, stride = 0, 1
    for kernel, s, padding in layers:
        size += (kernel - 1) * stride
        stride *= s
    return size, stride


@wrong("receptive_field", "last_stride")
def rf_last_stride(layers):
    size, jump, stride = 1, 1, 1
    for kernel, s, padding in layers:
        size += (kernel - 1) * jump
        jump *= s
        stride = s
    return size, stride


@wrong("receptive_field", "one_number")
def rf_size_only(layers):
    size, stride = 1, 1
    for kernel, s, padding in layers:
        size += (kernel - 1) * stride
        stride *= s
    return size


# --- 06 occlusion_map
def _positions(image, patch, stride, end=1):
    h, w = image.shape[-2:]
    return range(0, h - patch + end, stride), range(0, w - patch + end, stride)


@wrong("occlusion_map", "logit")
def occ_logit(net, image, target, patch, stride):
    rows, cols = _positions(image, patch, stride)
    out = np.zeros((len(rows), len(cols)))
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            x = image.clone()
            x[..., r:r + patch, c:c + patch] = 0.5
            with torch.no_grad():
                out[i, j] = net(x)[0, target].item()
    return out


@wrong("occlusion_map", "black")
def occ_black(net, image, target, patch, stride):
    rows, cols = _positions(image, patch, stride)
    batch = []
    for r in rows:
        for c in cols:
            x = image.clone()
            x[..., r:r + patch, c:c + patch] = 0
            batch.append(x)
    with torch.no_grad():
        p = net(torch.cat(batch)).softmax(-1)[:, target]
    return p.reshape(len(rows), len(cols))


@wrong("occlusion_map", "changed_input")
def occ_no_copy(net, image, target, patch, stride):
    rows, cols = _positions(image, patch, stride)
    out = torch.zeros(len(rows), len(cols))
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            x = image
            x[..., r:r + patch, c:c + patch] = 0.5
            with torch.no_grad():
                out[i, j] = net(x).softmax(1)[0, target]
    return out


@wrong("occlusion_map", "cumulative")
def occ_cumulative(net, image, target, patch, stride):
    rows, cols = _positions(image, patch, stride)
    out = torch.zeros(len(rows), len(cols))
    x = image.clone()
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            x[..., r:r + patch, c:c + patch] = 0.5
            with torch.no_grad():
                out[i, j] = net(x).softmax(1)[0, target]
    return out


@wrong("occlusion_map", "missing_last")
def occ_missing_last(net, image, target, patch, stride):
    rows, cols = _positions(image, patch, stride, end=0)
    out = torch.zeros(len(rows), len(cols))
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            x = image.clone()
            x[..., r:r + patch, c:c + patch] = 0.5
            with torch.no_grad():
                out[i, j] = net(x).softmax(1)[0, target]
    return out


@wrong("occlusion_map", "transposed")
def occ_transposed(net, image, target, patch, stride):
    rows, cols = _positions(image, patch, stride)
    out = torch.zeros(len(cols), len(rows))
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            x = image.clone()
            x[..., r:r + patch, c:c + patch] = 0.5
            with torch.no_grad():
                out[j, i] = net(x).softmax(1)[0, target]
    return out


@wrong("occlusion_map", "predicted_class")
def occ_predicted(net, image, target, patch, stride):
    with torch.no_grad():
        predicted = net(image).argmax().item()
    rows, cols = _positions(image, patch, stride)
    out = torch.zeros(len(rows), len(cols))
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            x = image.clone()
            x[..., r:r + patch, c:c + patch] = 0.5
            with torch.no_grad():
                out[i, j] = net(x).softmax(1)[0, predicted]
    return out


# --- 07 saliency
def _input_grad(net, image, score):
    x = image.clone().requires_grad_()
    score(net(x)).backward()
    return x.grad[0]


@wrong("saliency", "no_abs")
def sal_no_abs(net, image, target):
    return _input_grad(net, image, lambda out: out[0, target]).max(dim=0).values


@wrong("saliency", "mean_over_channels")
def sal_mean(net, image, target):
    return _input_grad(net, image, lambda out: out[0, target]).abs().mean(dim=0)


@wrong("saliency", "probability")
def sal_probability(net, image, target):
    return _input_grad(net, image, lambda out: F.softmax(out, dim=1)[0, target]).abs().amax(0)


@wrong("saliency", "log_probability")
def sal_cross_entropy(net, image, target):
    grad = _input_grad(net, image, lambda out: F.cross_entropy(out, torch.tensor([target], device=out.device)))
    return grad.abs().amax(0)


@wrong("saliency", "extra_dims")
def sal_keeps_batch(net, image, target):
    x = image.clone().requires_grad_()
    net(x)[0, target].backward()
    return x.grad.abs().amax(dim=1)


@wrong("saliency", "predicted_class")
def sal_predicted(net, image, target):
    x = image.clone().requires_grad_()
    out = net(x)
    out[0, out.argmax()].backward()
    return x.grad[0].abs().amax(0)


@wrong("saliency", "raised")
def sal_no_requires_grad(net, image, target):
    score = net(image)[0, target]
    score.backward()
    return image.grad[0].abs().amax(0)


# --- 08 guided_relu_backward
@wrong("guided_relu_backward", "plain")
def guided_plain(grad_output, relu_input):
    return grad_output * (relu_input > 0).float()


@wrong("guided_relu_backward", "deconvnet")
def guided_deconvnet(grad_output, relu_input):
    return torch.relu(grad_output)


@wrong("guided_relu_backward", "at_zero")
def guided_at_zero(grad_output, relu_input):
    return torch.where((relu_input >= 0) & (grad_output > 0), grad_output, torch.zeros_like(grad_output))


@wrong("guided_relu_backward", "changed_input")
def guided_in_place(grad_output, relu_input):
    grad_output[relu_input <= 0] = 0
    grad_output[grad_output < 0] = 0
    return grad_output


@wrong("guided_relu_backward", "times_input")
def guided_times_input(grad_output, relu_input):
    return F.relu(grad_output) * F.relu(relu_input)


# --- 09 ascent_step
def _ascent_grad(net, image, objective):
    x = image.clone().requires_grad_(True)
    objective(net(x), x).backward()
    return x, x.grad


@wrong("ascent_step", "descent")
def ascent_descent(net, image, target, lr, l2):
    x, g = _ascent_grad(net, image, lambda out, x: out[0, target] - l2 * ((x - 0.5) ** 2).sum())
    return (x - lr * g).detach()


@wrong("ascent_step", "no_l2")
def ascent_no_l2(net, image, target, lr, l2):
    x, g = _ascent_grad(net, image, lambda out, x: out[0, target])
    return (x + lr * g).detach()


@wrong("ascent_step", "l2_towards_zero")
def ascent_l2_zero(net, image, target, lr, l2):
    x, g = _ascent_grad(net, image, lambda out, x: out[0, target] - l2 * (x ** 2).sum())
    return (x + lr * g).detach()


@wrong("ascent_step", "l2_mean")
def ascent_l2_mean(net, image, target, lr, l2):
    x, g = _ascent_grad(net, image, lambda out, x: out[0, target] - l2 * ((x - 0.5) ** 2).mean())
    return (x + lr * g).detach()


@wrong("ascent_step", "l2_sign")
def ascent_l2_sign(net, image, target, lr, l2):
    x, g = _ascent_grad(net, image, lambda out, x: out[0, target] + l2 * ((x - 0.5) ** 2).sum())
    return (x + lr * g).detach()


@wrong("ascent_step", "probability")
def ascent_probability(net, image, target, lr, l2):
    x, g = _ascent_grad(net, image, lambda out, x: out.softmax(1)[0, target] - l2 * ((x - 0.5) ** 2).sum())
    return (x + lr * g).detach()


@wrong("ascent_step", "returned_gradient")
def ascent_gradient(net, image, target, lr, l2):
    x, g = _ascent_grad(net, image, lambda out, x: out[0, target] - l2 * ((x - 0.5) ** 2).sum())
    return g


@wrong("ascent_step", "raised")
def ascent_in_place_on_leaf(net, image, target, lr, l2):
    x, g = _ascent_grad(net, image, lambda out, x: out[0, target] - l2 * ((x - 0.5) ** 2).sum())
    x += lr * g
    return x


# --- 10 pgd_step
def _ce_grad(net, image, target):
    x = image.clone().requires_grad_(True)
    loss = F.cross_entropy(net(x), torch.tensor([target], device=x.device))
    loss.backward()
    return x, x.grad


def _box(x, original, eps):
    return torch.max(torch.min(x, original + eps), original - eps)


@wrong("pgd_step", "away_from_target")
def pgd_away(net, image, original, target, eps, alpha):
    x, g = _ce_grad(net, image, target)
    return _box(x + alpha * g.sign(), original, eps).clamp(0, 1).detach()


@wrong("pgd_step", "no_projection")
def pgd_no_projection(net, image, original, target, eps, alpha):
    x, g = _ce_grad(net, image, target)
    return (x - alpha * g.sign()).clamp(0, 1).detach()


@wrong("pgd_step", "no_projection")
def pgd_box_around_the_current_image(net, image, original, target, eps, alpha):
    x, g = _ce_grad(net, image, target)
    return _box(x - alpha * g.sign(), image, eps).clamp(0, 1).detach()


@wrong("pgd_step", "no_clamp")
def pgd_no_clamp(net, image, original, target, eps, alpha):
    x, g = _ce_grad(net, image, target)
    return _box(x - alpha * g.sign(), original, eps).detach()


@wrong("pgd_step", "eps_step")
def pgd_fgsm_step(net, image, original, target, eps, alpha):
    x, g = _ce_grad(net, image, target)
    return _box(x - eps * g.sign(), original, eps).clamp(0, 1).detach()


@wrong("pgd_step", "step_too_large")
def pgd_levels(net, image, original, target, eps, alpha):
    x, g = _ce_grad(net, image, target)
    return (x - alpha * 255 * g.sign()).clamp(0, 1).detach()


@wrong("pgd_step", "no_sign")
def pgd_raw_gradient(net, image, original, target, eps, alpha):
    x, g = _ce_grad(net, image, target)
    return _box(x - alpha * g, original, eps).clamp(0, 1).detach()


@wrong("pgd_step", "logit")
def pgd_logit(net, image, original, target, eps, alpha):
    x = image.clone().requires_grad_(True)
    net(x)[0, target].backward()
    return _box(x + alpha * x.grad.sign(), original, eps).clamp(0, 1).detach()


@wrong("pgd_step", "untargeted")
def pgd_untargeted(net, image, original, target, eps, alpha):
    x = image.clone().requires_grad_(True)
    out = net(x)
    F.cross_entropy(out, out.argmax(1)).backward()
    return _box(x + alpha * x.grad.sign(), original, eps).clamp(0, 1).detach()


# --- 11 guided_dream_step
def _guided_grad(net, image, guide, layer, wanted=None):
    if wanted is None:
        with torch.no_grad():
            wanted = net.forward_to(guide, layer).mean(dim=(2, 3), keepdim=True)
    x = image.clone().requires_grad_(True)
    (net.forward_to(x, layer) * wanted).sum().backward()
    return x, x.grad


@wrong("guided_dream_step", "plain_dream")
def guided_plain(net, image, guide, layer, lr):
    x = image.clone().requires_grad_(True)
    (net.forward_to(x, layer).pow(2).sum() / 2).backward()
    return (x + lr * x.grad / x.grad.abs().mean()).detach()


@wrong("guided_dream_step", "own_features")
def guided_by_itself(net, image, guide, layer, lr):
    with torch.no_grad():
        wanted = net.forward_to(image, layer).mean(dim=(2, 3), keepdim=True)
    x, g = _guided_grad(net, image, guide, layer, wanted)
    return (x + lr * g / g.abs().mean()).detach()


@wrong("guided_dream_step", "position_by_position")
def guided_positions(net, image, guide, layer, lr):
    x = image.clone().requires_grad_(True)
    (net.forward_to(x, layer) * net.forward_to(guide, layer).detach()).sum().backward()
    return (x + lr * x.grad / x.grad.abs().mean()).detach()


@wrong("guided_dream_step", "not_normalised")
def guided_raw(net, image, guide, layer, lr):
    x, g = _guided_grad(net, image, guide, layer)
    return (x + lr * g).detach()


@wrong("guided_dream_step", "max_normalised")
def guided_max(net, image, guide, layer, lr):
    x, g = _guided_grad(net, image, guide, layer)
    return (x + lr * g / g.abs().max()).detach()


@wrong("guided_dream_step", "l2_normalised")
def guided_l2(net, image, guide, layer, lr):
    x, g = _guided_grad(net, image, guide, layer)
    return (x + lr * g / g.norm()).detach()


@wrong("guided_dream_step", "descent")
def guided_descent(net, image, guide, layer, lr):
    x, g = _guided_grad(net, image, guide, layer)
    return (x - lr * g / g.abs().mean()).detach()


@wrong("guided_dream_step", "changed_model")
def guided_leaves_hook(net, image, guide, layer, lr):
    store = {}
    net.module(layer).register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    with torch.no_grad():
        net(guide)
        wanted = store["a"].mean(dim=(2, 3), keepdim=True)
    x = image.clone().requires_grad_(True)
    net(x)
    (store["a"] * wanted).sum().backward()
    return (x + lr * x.grad / x.grad.abs().mean()).detach()


# --- 12 total_variation
@wrong("total_variation", "abs")
def tv_l1(image):
    dy = image[:, :, 1:, :-1] - image[:, :, :-1, :-1]
    dx = image[:, :, :-1, 1:] - image[:, :, :-1, :-1]
    return (dy.abs() + dx.abs()).mean()


@wrong("total_variation", "sum")
def tv_sum(image):
    dy = image[:, :, 1:, :-1] - image[:, :, :-1, :-1]
    dx = image[:, :, :-1, 1:] - image[:, :, :-1, :-1]
    return (dy ** 2 + dx ** 2).sum()


@wrong("total_variation", "down_only")
def tv_down(image):
    return ((image[:, :, 1:, :] - image[:, :, :-1, :]) ** 2).mean()


@wrong("total_variation", "wraparound")
def tv_roll(image):
    dy = torch.roll(image, shifts=-1, dims=2) - image
    dx = torch.roll(image, shifts=-1, dims=3) - image
    return (dy ** 2 + dx ** 2).mean()


@wrong("total_variation", "separate_means")
def tv_separate(image):
    dy = image[:, :, 1:, :] - image[:, :, :-1, :]
    dx = image[:, :, :, 1:] - image[:, :, :, :-1]
    return (dy ** 2).mean() + (dx ** 2).mean()


@wrong("total_variation", "isotropic")
def tv_isotropic(image):
    dy = image[:, :, 1:, :-1] - image[:, :, :-1, :-1]
    dx = image[:, :, :-1, 1:] - image[:, :, :-1, :-1]
    return (dy ** 2 + dx ** 2).sqrt().mean()


@wrong("total_variation", "no_gradient")
def tv_item(image):
    dy = image[:, :, 1:, :-1] - image[:, :, :-1, :-1]
    dx = image[:, :, :-1, 1:] - image[:, :, :-1, :-1]
    return (dy ** 2 + dx ** 2).mean().item()


@wrong("total_variation", "not_scalar")
def tv_keepdim(image):
    dy = image[:, :, 1:, :-1] - image[:, :, :-1, :-1]
    dx = image[:, :, :-1, 1:] - image[:, :, :-1, :-1]
    return (dy ** 2 + dx ** 2).mean(dim=(1, 2, 3))


# --- the remaining named mistakes, one wrong answer each
@wrong("filter_tiles", "no_range")
def tiles_shift_only(weights):
    return weights - weights.flatten(1).min(dim=1).values.view(-1, 1, 1, 1)


@wrong("filter_tiles", "clamped")
def tiles_clamp(weights):
    return torch.clamp(weights, 0, 1)


@wrong("pca_2d", "standardised")
def pca_standardised(features):
    x = (features - features.mean(0)) / features.std(0)
    _, _, vt = torch.linalg.svd(x, full_matrices=False)
    return x @ vt[:2].T


@wrong("top_channels", "wrong_axis")
def top_wrong_axis(acts, k):
    return acts.mean(dim=(0, 2)).argsort(descending=True)[:k]


@wrong("occlusion_map", "log_prob")
def occ_log_prob(net, image, target, patch, stride):
    rows, cols = _positions(image, patch, stride)
    out = torch.zeros(len(rows), len(cols))
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            x = image.clone()
            x[..., r:r + patch, c:c + patch] = 0.5
            with torch.no_grad():
                out[i, j] = F.log_softmax(net(x), dim=1)[0, target]
    return out


@wrong("occlusion_map", "mean_fill")
def occ_mean_fill(net, image, target, patch, stride):
    rows, cols = _positions(image, patch, stride)
    out = torch.zeros(len(rows), len(cols))
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            x = image.clone()
            x[..., r:r + patch, c:c + patch] = image.mean()
            with torch.no_grad():
                out[i, j] = net(x).softmax(1)[0, target]
    return out


@wrong("occlusion_map", "drop")
def occ_drop(net, image, target, patch, stride):
    with torch.no_grad():
        clean = net(image).softmax(1)[0, target]
    rows, cols = _positions(image, patch, stride)
    out = torch.zeros(len(rows), len(cols))
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            x = image.clone()
            x[..., r:r + patch, c:c + patch] = 0.5
            with torch.no_grad():
                out[i, j] = clean - net(x).softmax(1)[0, target]
    return out


@wrong("saliency", "sum_over_channels")
def sal_sum(net, image, target):
    return _input_grad(net, image, lambda out: out[0, target]).abs().sum(dim=0)


@wrong("saliency", "norm_over_channels")
def sal_norm(net, image, target):
    return _input_grad(net, image, lambda out: out[0, target]).norm(dim=0)


@wrong("guided_relu_backward", "abs")
def guided_abs(grad_output, relu_input):
    return grad_output.abs() * (relu_input > 0)


@wrong("total_variation", "right_only")
def tv_right(image):
    return ((image[..., :, 1:] - image[..., :, :-1]) ** 2).mean()


# --- 13 deletion_curve
def _curve(net, image, target, heat, steps, *, descending=True, read=lambda logits: logits.softmax(dim=1),
           delete=None, cumulative=True):
    rows, cols = heat.shape
    n = rows * cols
    order = heat.flatten().argsort(descending=descending)
    out = []
    for k in range(steps + 1):
        gone = order[: k * n // steps] if cumulative else order[max(0, (k - 1) * n // steps): k * n // steps]
        x = image.clone()
        if delete is None:
            x[0, :, gone // cols, gone % cols] = 0.0
        else:
            delete(x, gone, rows, cols)
        with torch.no_grad():
            out.append(read(net(x))[0, target])
    return torch.stack(out)


@wrong("deletion_curve", "least_first")
def deletion_ascending(net, image, target, heat, steps):
    return _curve(net, image, target, heat, steps, descending=False)


@wrong("deletion_curve", "logit")
def deletion_logit(net, image, target, heat, steps):
    return _curve(net, image, target, heat, steps, read=lambda logits: logits)


@wrong("deletion_curve", "log_prob")
def deletion_log_softmax(net, image, target, heat, steps):
    return _curve(net, image, target, heat, steps, read=lambda logits: F.log_softmax(logits, dim=1))


@wrong("deletion_curve", "one_channel")
def deletion_red_only(net, image, target, heat, steps):
    def delete(x, gone, rows, cols):
        x[0, 0, gone // cols, gone % cols] = 0.0
    return _curve(net, image, target, heat, steps, delete=delete)


@wrong("deletion_curve", "grey")
def deletion_grey(net, image, target, heat, steps):
    def delete(x, gone, rows, cols):
        x[0, :, gone // cols, gone % cols] = 0.5
    return _curve(net, image, target, heat, steps, delete=delete)


@wrong("deletion_curve", "not_cumulative")
def deletion_one_slice_at_a_time(net, image, target, heat, steps):
    return _curve(net, image, target, heat, steps, cumulative=False)


@wrong("deletion_curve", "swapped")
def deletion_swapped(net, image, target, heat, steps):
    def delete(x, gone, rows, cols):
        x[0, :, gone % cols, gone // cols] = 0.0
    return _curve(net, image, target, heat, steps, delete=delete)


@wrong("deletion_curve", "predicted_class")
def deletion_predicted(net, image, target, heat, steps):
    with torch.no_grad():
        predicted = int(net(image).argmax())
    return _curve(net, image, predicted, heat, steps)


@wrong("deletion_curve", "shape")
def deletion_without_the_start(net, image, target, heat, steps):
    return _curve(net, image, target, heat, steps)[1:]


@wrong("deletion_curve", "changed_input")
def deletion_in_place(net, image, target, heat, steps):
    rows, cols = heat.shape
    order = heat.flatten().argsort(descending=True)
    out = []
    for k in range(steps + 1):
        gone = order[: k * rows * cols // steps]
        image[0, :, gone // cols, gone % cols] = 0.0   # the caller's image
        with torch.no_grad():
            out.append(net(image).softmax(dim=1)[0, target])
    return torch.stack(out)


# --- 14 gram_matrix (written as a learner would, not with the checker's helper)
@wrong("gram_matrix", "no_normalisation")
def gram_unnormalised(features):
    n, c, h, w = features.shape
    f = features.view(n, c, -1)
    return torch.bmm(f, f.transpose(1, 2))


@wrong("gram_matrix", "positions_only")
def gram_over_positions(features):
    n, c, h, w = features.shape
    f = features.view(n, c, -1)
    return torch.bmm(f, f.transpose(1, 2)) / (h * w)


@wrong("gram_matrix", "channels_only")
def gram_over_channels(features):
    f = features.flatten(2)
    return f @ f.transpose(1, 2) / features.shape[1]


@wrong("gram_matrix", "transposed")
def gram_positions(features):
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    return f.transpose(1, 2) @ f / (c * h * w)


@wrong("gram_matrix", "not_flattened_per_channel")
def gram_memory_order(features):
    n, c, h, w = features.shape
    f = features.reshape(n, h * w, c)
    return f.transpose(1, 2) @ f / (c * h * w)


@wrong("gram_matrix", "batch_mixed")
def gram_one_for_the_batch(features):
    n, c, h, w = features.shape
    f = features.permute(1, 0, 2, 3).reshape(c, -1)
    return (f @ f.T / (c * h * w))[None]


# --- 14 style_loss
def _learner_gram(f, normalise=True):
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / ((c * h * w) if normalise else 1)


@wrong("style_loss", "mean")
def style_mean(features, style_grams, weights):
    return sum(w * ((_learner_gram(features[l]) - style_grams[l]) ** 2).mean() for l, w in weights.items())


@wrong("style_loss", "no_weights")
def style_unweighted(features, style_grams, weights):
    return sum(((_learner_gram(features[l]) - style_grams[l]) ** 2).sum() for l in weights)


@wrong("style_loss", "content_layer")
def style_every_layer(features, style_grams, weights):
    return sum(weights.get(l, 1.0) * ((_learner_gram(f) - style_grams[l]) ** 2).sum() for l, f in features.items())


@wrong("style_loss", "not_squared")
def style_abs(features, style_grams, weights):
    return sum(w * (_learner_gram(features[l]) - style_grams[l]).abs().sum() for l, w in weights.items())


@wrong("style_loss", "norm")
def style_norm(features, style_grams, weights):
    return sum(w * torch.norm(_learner_gram(features[l]) - style_grams[l]) for l, w in weights.items())


@wrong("style_loss", "no_normalisation")
def style_raw_gram(features, style_grams, weights):
    return sum(w * ((_learner_gram(features[l], False) - style_grams[l]) ** 2).sum() for l, w in weights.items())


@wrong("style_loss", "not_scalar")
def style_one_element(features, style_grams, weights):
    total = sum(w * ((_learner_gram(features[l]) - style_grams[l]) ** 2).sum() for l, w in weights.items())
    return total.reshape(1)


# --- 15 unit_iou: in its own module, registered on import
from tests import exercise_mistakes_lesson15  # noqa: E402,F401
