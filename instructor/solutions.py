"""Model solutions of the "Your turn" exercises (lessons 01-14). SPOILERS: write your own first.

These are the answers: each lesson's exercise cell holds the same function with its
body cleared. They live in the repository's ``instructor/`` folder, outside the
``cnnviz_widgets`` package, so the wheel and any non-editable install carry none of them
(tests/test_nbgrader.py checks the wheel). The checkers do not use them: each computes
its reference itself or with the engine's own verbs, and the tests show that every
answer here passes its checker. ``python -m cnnviz_widgets.exercises solution`` writes
them into the notebooks for instructors. See docs/INSTRUCTORS.md.

Each body sits between nbgrader's ``### BEGIN SOLUTION`` / ``### END SOLUTION``
markers: the text between them is what goes into a solved notebook.

Images are 1 x 3 x H x W tensors with pixels in [0, 1] (what `Network` takes); `net`
is a `Network`: ``net(x)`` gives the logits (1 x classes), ``net.forward_to(x, layer)``
the output of one layer. Plain torch only, as a learner would write it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["filter_tiles", "nearest_neighbors", "pca_2d", "top_channels", "receptive_field", "occlusion_map",
           "saliency", "guided_relu_backward", "ascent_step", "pgd_step", "guided_dream_step",
           "total_variation", "deletion_curve", "gram_matrix", "style_loss", "unit_iou"]


def filter_tiles(weights):
    """C x 3 x k x k filters -> the same shape, each filter scaled on its own to [0, 1]:
    (w - min) / (max - min), min and max over that filter's 3 x k x k weights; a flat
    filter (max == min) becomes all zeros."""
    ### BEGIN SOLUTION
    lo = weights.amin(dim=(1, 2, 3), keepdim=True)
    hi = weights.amax(dim=(1, 2, 3), keepdim=True)
    return (weights - lo) / (hi - lo).clamp_min(1e-12)
    ### END SOLUTION


def nearest_neighbors(features, query, k):
    """N x D features, a D query vector -> the indices of the k rows with the highest
    cosine similarity to the query, nearest first."""
    ### BEGIN SOLUTION
    dots = features @ query                                   # N dot products
    similarity = dots / (features.norm(dim=1) * query.norm())
    return similarity.argsort(descending=True)[:k]
    ### END SOLUTION


def pca_2d(features):
    """N x D -> N x 2: the centred features projected on the two directions of largest
    variance (the first two principal axes), largest first. The sign of each axis is free."""
    ### BEGIN SOLUTION
    centred = features - features.mean(dim=0)
    _, _, vt = torch.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T
    ### END SOLUTION


def top_channels(acts, k):
    """C x H x W activations -> the indices of the k channels with the largest mean
    activation (mean over the H x W positions), largest first."""
    ### BEGIN SOLUTION
    means = acts.mean(dim=(1, 2))                             # one number per channel
    order = means.argsort(descending=True)
    return order[:k]
    ### END SOLUTION


def receptive_field(layers):
    """[(kernel, stride, padding), ...] from the input up -> (size, stride): the side of
    the square of input pixels one unit of the last layer sees, and how many input
    pixels apart two neighbouring units of that layer are."""
    ### BEGIN SOLUTION
    size, stride = 1, 1
    for kernel, step, padding in layers:
        size += (kernel - 1) * stride
        stride *= step
    return size, stride
    ### END SOLUTION


def occlusion_map(net, image, target, patch, stride):
    """rows x cols: the probability of class `target` with a grey (0.5) patch x patch
    square over the image, its top-left corner at (row * stride, col * stride), for every
    position where the square fits inside the image."""
    ### BEGIN SOLUTION
    height, width = image.shape[-2:]
    tops = range(0, height - patch + 1, stride)
    lefts = range(0, width - patch + 1, stride)
    heat = torch.zeros(len(tops), len(lefts))
    with torch.no_grad():
        for i, top in enumerate(tops):
            for j, left in enumerate(lefts):
                x = image.clone()
                x[:, :, top:top + patch, left:left + patch] = 0.5
                heat[i, j] = net(x).softmax(dim=1)[0, target]
    return heat
    ### END SOLUTION


def saliency(net, image, target):
    """H x W: for each pixel, the largest over the three colour channels of
    |d logit[target] / d pixel|, the logit being the score before the softmax."""
    ### BEGIN SOLUTION
    x = image.clone().requires_grad_(True)
    net(x)[0, target].backward()
    return x.grad[0].abs().amax(dim=0)
    ### END SOLUTION


def guided_relu_backward(grad_output, relu_input):
    """The gradient guided backprop passes down through one ReLU: grad_output where both
    the ReLU's input and grad_output are positive, 0 elsewhere (same shape)."""
    ### BEGIN SOLUTION
    active = relu_input > 0          # where the ReLU passed its input forward
    positive = grad_output > 0       # where the gradient arriving from above is positive
    return grad_output * (active & positive)
    ### END SOLUTION


def ascent_step(net, image, target, lr, l2):
    """One step of plain gradient ascent: image + lr * gradient of
    logit[target] - l2 * sum((image - 0.5)^2), as a new tensor."""
    ### BEGIN SOLUTION
    x = image.clone().requires_grad_(True)
    objective = net(x)[0, target] - l2 * ((x - 0.5) ** 2).sum()
    objective.backward()
    return (x + lr * x.grad).detach()
    ### END SOLUTION


def pgd_step(net, image, original, target, eps, alpha):
    """One step of targeted PGD: a step of size alpha down the sign of the gradient of
    the cross-entropy of the logits against class `target`, then projected back into
    the box |x - original| <= eps around the original photo, then clamped to [0, 1]."""
    ### BEGIN SOLUTION
    x = image.clone().requires_grad_(True)
    loss = F.cross_entropy(net(x), torch.tensor([target], device=x.device))
    loss.backward()
    stepped = x - alpha * x.grad.sign()
    return torch.min(torch.max(stepped, original - eps), original + eps).clamp(0, 1).detach()
    ### END SOLUTION


def guided_dream_step(net, image, guide, layer, lr):
    """One guided DeepDream step: image + lr * g / mean(|g|), where g is the gradient of
    sum(a * m) over the activations a = net.forward_to(image, layer), and m is the
    guide's activations at that layer averaged over positions (one number per channel)."""
    ### BEGIN SOLUTION
    with torch.no_grad():
        wanted = net.forward_to(guide, layer).mean(dim=(2, 3), keepdim=True)
    x = image.clone().requires_grad_(True)
    (net.forward_to(x, layer) * wanted).sum().backward()
    g = x.grad
    return (x + lr * g / g.abs().mean()).detach()
    ### END SOLUTION


def total_variation(image):
    """A scalar tensor (differentiable): the mean, over channels and over the pixels that
    have a neighbour below and to the right, of the squared difference to the pixel below
    plus the squared difference to the pixel on the right."""
    ### BEGIN SOLUTION
    down = image[:, :, 1:, :-1] - image[:, :, :-1, :-1]
    right = image[:, :, :-1, 1:] - image[:, :, :-1, :-1]
    return (down ** 2 + right ** 2).mean()
    ### END SOLUTION


def deletion_curve(net, image, target, heat, steps):
    """steps + 1 numbers: the softmax probability of class `target` after the
    k * n // steps pixels with the largest `heat` (H x W) are made black (0 in all three
    colour channels), for k = 0, 1, ..., steps (n = H * W pixels)."""
    ### BEGIN SOLUTION
    rows, cols = heat.shape
    order = heat.flatten().argsort(descending=True)      # the most important pixel first
    probabilities = []
    for k in range(steps + 1):
        gone = order[: k * rows * cols // steps]
        x = image.clone()
        x[0, :, gone // cols, gone % cols] = 0.0          # black, in all three colour channels
        with torch.no_grad():
            probabilities.append(net(x).softmax(dim=1)[0, target])
    return torch.stack(probabilities)
    ### END SOLUTION


# --- lesson 14 (style transfer) ------------------------------------------------------------------

def gram_matrix(features):
    """N x C x H x W features -> N x C x C: each image's channels flattened to rows of
    H * W values (F: N x C x HW), then F F^T divided by C * H * W."""
    ### BEGIN SOLUTION
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)
    ### END SOLUTION


def style_loss(features, style_grams, weights):
    """A scalar tensor: the sum over the style layers (the keys of `weights`) of
    weights[layer] times the sum of the squared differences between the Gram matrix of
    features[layer] (as `gram_matrix` computes it) and style_grams[layer]."""
    ### BEGIN SOLUTION
    total = 0.0
    for layer, weight in weights.items():
        difference = gram_matrix(features[layer]) - style_grams[layer]
        total = total + weight * (difference ** 2).sum()
    return total
    ### END SOLUTION


def unit_iou(maps, masks, quantile):
    """N x H x W activations of one unit (upsampled to the masks' size), N x H x W bool
    masks of one concept, the share of values to keep -> the unit's IoU with the concept
    over the whole dataset, a float. The threshold T is the k-th largest of all N*H*W
    values, k = ceil(quantile * N*H*W); the unit is on where maps > T; the IoU is
    |on & masks| / |on | masks|, both counted over all the images together."""
    ### BEGIN SOLUTION
    values = maps.flatten()
    k = max(1, int(torch.tensor(quantile * values.numel()).ceil()))
    threshold = values.topk(k).values[-1]
    on = maps > threshold
    union = (on | masks).sum()
    return float((on & masks).sum() / union) if union > 0 else 0.0
    ### END SOLUTION
