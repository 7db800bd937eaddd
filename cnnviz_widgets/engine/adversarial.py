"""Fooling images: a change too small to see that makes the network say something else.

Lesson `notebooks/10_fooling_images.ipynb`. Szegedy et al. 2014 found them; FGSM
(Goodfellow et al. 2015) takes one step of size eps along the sign of the
gradient; PGD (Madry et al. 2018) takes many small sign steps and projects back
into the L-inf ball of radius eps after each. All three are the shared loop with
the ``"sign"`` optimiser and a `LinfBall` regulariser; `fool` is targeted PGD that
stops as soon as the model predicts the target.

Budgets are in pixel units on the [0, 1] scale (8/255 = 0.031), since the
network takes [0, 1] pixels and normalises inside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from . import objectives as O
from .optimize import LinfBall, PixelParam, Progress, optimize_iter

__all__ = ["FoolResult", "predicted_class", "perturbation_size", "magnify", "fool_iter", "fool", "fgsm", "pgd", "pgd_iter"]


@dataclass
class FoolResult:
    """The original and changed images (1x3xHxW in [0,1]), what the model predicts for
    each, and the size of the change."""

    original: torch.Tensor
    adversarial: torch.Tensor
    target: int
    original_class: int
    predicted: int
    probability: float   # of `predicted` on the adversarial image
    linf: float          # max |change|, [0,1] scale
    l2: float            # sqrt(sum change^2), [0,1] scale
    steps: int

    @property
    def success(self) -> bool:
        return self.predicted == self.target

    @property
    def linf_255(self) -> float:
        return self.linf * 255

    @property
    def l2_255(self) -> float:
        return self.l2 * 255

    @property
    def difference(self) -> torch.Tensor:
        return self.adversarial - self.original


def perturbation_size(original: torch.Tensor, changed: torch.Tensor) -> tuple[float, float]:
    """(L-inf, L2) of the change, in [0, 1] pixel units (multiply by 255 for levels)."""
    d = (changed.detach() - original.detach()).flatten()
    return float(d.abs().max()), float(d.norm())


def magnify(difference: torch.Tensor, factor: float = 10.0) -> torch.Tensor:
    """The change made visible: grey (0.5) means unchanged, scaled by `factor`."""
    return (0.5 + factor * difference.detach()).clamp(0, 1)


def predicted_class(net, image) -> int:
    """The model's top-1 class index for an image (no gradient)."""
    with torch.no_grad(), net.guard():
        return int(net(_image(net, image)).argmax(-1)[0])


def _image(net, image) -> torch.Tensor:
    """A 1x3xHxW tensor in [0, 1] is used as it is (any size); anything else goes
    through the model's preprocessing (resize + centre crop)."""
    if isinstance(image, torch.Tensor) and image.dim() == 4:
        if image.shape[:2] != (1, 3):
            raise ValueError(f"the image tensor must have shape 1x3xHxW, not {tuple(image.shape)}")
        if not torch.isfinite(image).all() or image.min() < 0 or image.max() > 1:
            raise ValueError("the image tensor must hold finite pixel values in [0, 1]")
        return image.detach().to(net.device, torch.float32)
    return net.preprocess(image)


def _check_budget(eps: float, what: str = "eps") -> float:
    eps = float(eps)
    if not 0 < eps <= 1:
        raise ValueError(f"the budget {what} must be in (0, 1] on the [0,1] pixel scale (8/255 = 0.031), not {eps}")
    return eps


def pgd_iter(net, x, target: int | str, eps: float = 8 / 255, alpha: float = 1 / 255, steps: int = 20,
             targeted: bool = True, stop_when_reached: bool = False, every: int = 1,
             should_stop=None) -> Iterator[Progress]:
    """Projected gradient descent in the L-inf ball of radius `eps`, step `alpha`.

    targeted: move towards class `target`; otherwise away from class `target` (the
    true label). `stop_when_reached` ends the run as soon as the goal is met.
    """
    x = _image(net, x)
    idx = net.class_index(target)
    _check_budget(eps)
    _check_budget(alpha, "alpha")
    ce = O.target_cross_entropy(idx)
    objective = ce if targeted else -ce

    def reached(outputs) -> bool:
        pred = int(outputs[O.LOGITS].argmax(-1)[0])
        return pred == idx if targeted else pred != idx

    return optimize_iter(net, objective, PixelParam(x), steps=steps, lr=alpha, optimizer="sign",
                         regularizers=[LinfBall(x, eps)], every=every, should_stop=should_stop,
                         until=reached if stop_when_reached else None)


def _result(net, x, last: Progress, target: int) -> FoolResult:
    with torch.no_grad(), net.guard():
        p0 = net(x).softmax(-1)[0]
        p1 = net(last.image).softmax(-1)[0]
    linf, l2 = perturbation_size(x, last.image)
    return FoolResult(x.detach(), last.image, target, int(p0.argmax()), int(p1.argmax()), float(p1.max()),
                      linf, l2, last.step)


def _run(it) -> Progress:
    last = None
    for last in it:
        pass
    return last


def pgd(net, x, target: int | str, eps: float = 8 / 255, alpha: float = 1 / 255, steps: int = 20,
        targeted: bool = True) -> FoolResult:
    """PGD run for all `steps` (see `pgd_iter`)."""
    x = _image(net, x)
    last = _run(pgd_iter(net, x, target, eps, alpha, steps, targeted))
    return _result(net, x, last, net.class_index(target))


def fgsm(net, x, label_or_target: int | str, eps: float = 2 / 255, targeted: bool = False) -> FoolResult:
    """One step of size `eps`: away from the true label (default) or towards a target."""
    x = _image(net, x)
    eps = _check_budget(eps)
    last = _run(pgd_iter(net, x, label_or_target, eps=eps, alpha=eps, steps=1, targeted=targeted))
    return _result(net, x, last, net.class_index(label_or_target))


def fool_iter(net, image, target: int | str, eps: float = 8 / 255, alpha: float = 1 / 255,
              max_steps: int = 60, every: int = 1, should_stop=None) -> Iterator[Progress]:
    """Targeted PGD that stops as soon as the model predicts `target`."""
    return pgd_iter(net, image, target, eps, alpha, max_steps, targeted=True, stop_when_reached=True,
                    every=every, should_stop=should_stop)


def fool(net, image, target: int | str, eps: float = 8 / 255, alpha: float = 1 / 255,
         max_steps: int = 60) -> FoolResult:
    """Change `image` (PIL, array or 1x3xSxS tensor) until the model says `target`,
    never by more than `eps` per pixel. Check `.success`: the budget may not suffice."""
    x = _image(net, image)
    last = _run(fool_iter(net, x, target, eps, alpha, max_steps))
    return _result(net, x, last, net.class_index(target))
