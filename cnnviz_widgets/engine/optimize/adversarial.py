"""Fooling images: a change too small to see that makes the network say something else.

Lesson `notebooks/10_fooling_images.ipynb`. Szegedy et al. 2014 ("Intriguing
properties of neural networks", arXiv:1312.6199) found them; FGSM (Goodfellow, Shlens
& Szegedy 2015, "Explaining and Harnessing Adversarial Examples", arXiv:1412.6572)
takes one step of size eps along the sign of the gradient; PGD (Madry et al. 2018,
"Towards Deep Learning Models Resistant to Adversarial Attacks", arXiv:1706.06083)
takes many small sign steps and projects back into the L-inf ball of radius eps
after each. All three are the shared loop with the ``"sign"`` optimiser and a
`LinfBall` regulariser; `fool` is targeted PGD that stops as soon as the model
predicts the target (with `confidence`: once the target's probability reaches it).

One meaning of the class arguments everywhere:

- ``target``: the class to reach. Given, the attack is *targeted*: it lowers the
  cross-entropy towards `target`.
- ``label``: the true class, for an *untargeted* attack (``target=None``): it raises
  the cross-entropy of `label`, moving away from it. Left as None, `label` is what
  the model predicts for the original image.

Budgets are in pixel units on the [0, 1] scale (8/255 = 0.031), since the network
takes [0, 1] pixels and normalises inside; apps may show them in /255.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import torch

from ..core import checks
from ..core.progress import Progress, StopCheck, run_to_end
from ..core.targets import predicted_classes
from . import LinfBall, OptimizeResult, PixelParam
from . import objectives as O
from . import optimize_iter

__all__ = ["FoolResult", "predicted_class", "perturbation_size", "magnify", "fgsm", "pgd_iter", "pgd",
           "fool_iter", "fool"]

_PIXELS = "[0, 1] pixels: 8/255 = 0.031"


@dataclass(kw_only=True)
class FoolResult(OptimizeResult):
    """An `OptimizeResult` whose `image` is the changed (adversarial) image, and:

    original: the image before the change (1 x 3 x H x W in [0, 1], CPU).
    target: the class to reach (targeted), None for an untargeted attack.
    label: the class to move away from (untargeted), None for a targeted attack.
    original_class / predicted: the model's top-1 class for the original / changed image.
    probability: the model's probability of `predicted` on the changed image.
    linf, l2: the size of the change, [0, 1] pixel units.
    """

    original: torch.Tensor
    target: int | None
    label: int | None
    original_class: int
    predicted: int
    probability: float
    linf: float
    l2: float

    @property
    def success(self) -> bool:
        """The target is predicted (targeted) or the label is not (untargeted)."""
        return self.predicted == self.target if self.target is not None else self.predicted != self.label

    @property
    def linf_255(self) -> float:
        return self.linf * 255

    @property
    def difference(self) -> torch.Tensor:
        return self.image - self.original


def perturbation_size(original: torch.Tensor, changed: torch.Tensor) -> tuple[float, float]:
    """(L-inf, L2) of the change, in [0, 1] pixel units (multiply by 255 for levels)."""
    d = (changed.detach().cpu() - original.detach().cpu()).flatten()
    return float(d.abs().max()), float(d.norm())


def magnify(difference: torch.Tensor, factor: float = 10.0) -> torch.Tensor:
    """The change made visible: grey (0.5) means unchanged, scaled by `factor`."""
    return (0.5 + factor * difference.detach()).clamp(0, 1)


def predicted_class(net, image) -> int:
    """The model's top-1 class index for one image (no gradient)."""
    x = checks.network(net, "a fooling attack").as_batch(image, single=True, what="predicted_class")
    return predicted_classes(net, x)[0]


def _start(net, image) -> torch.Tensor:
    return checks.pixels(checks.network(net, "a fooling attack").as_batch(image, single=True, what="a fooling attack"),
                         "image")


def pgd_iter(net, image, target: Any = None, *, label: Any = None, eps: float = 8 / 255,
             step_size: float = 1 / 255, steps: int = 20, stop_when_reached: bool = False,
             confidence: float | None = None, every: int = 5,
             should_stop: StopCheck = None) -> Iterator[Progress[FoolResult]]:
    """Projected gradient descent in the L-inf ball of radius `eps`, `steps` sign steps
    of `step_size`: towards `target` if given, otherwise away from `label` (see the
    module's docstring). `stop_when_reached` ends the run as soon as the goal is met:
    for a targeted attack, the target is the top class and, if `confidence` (0..1) is
    given, its probability is at least that. Without `confidence` the first winning
    step ends the run, which may be a narrow win.
    Each `Progress` (every `every` steps, and the last) carries a `FoolResult`."""
    x = _start(net, image)
    eps = checks.number(eps, "eps", low=0.0, low_open=True, high=1.0, unit=_PIXELS)
    step_size = checks.number(step_size, "step_size", low=0.0, low_open=True, high=1.0, unit=_PIXELS)
    if target is not None and label is not None:
        raise ValueError("give a target (a targeted attack) or a label (an untargeted one), not both")
    original_class = predicted_class(net, x)
    targeted = target is not None
    if confidence is not None:
        if not targeted:
            raise ValueError("confidence is the probability a targeted attack must reach: give a target")
        confidence = checks.number(confidence, "confidence", low=0.0, high=1.0)
    goal = net.class_index(target) if targeted else (original_class if label is None else net.class_index(label))
    ce = O.target_cross_entropy(goal)

    def reached(outputs) -> bool:
        probs = outputs[O.LOGITS].softmax(-1)[0]
        pred = int(probs.argmax())
        if not targeted:
            return pred != goal
        return pred == goal and (confidence is None or float(probs[goal]) >= confidence)

    loop = optimize_iter(net, ce if targeted else -ce, PixelParam(x), steps=steps, step_size=step_size,
                         optimizer="sign", regularizers=[LinfBall(x, eps)], every=every, should_stop=should_stop,
                         until=reached if stop_when_reached else None)
    return _results(net, loop, x, goal if targeted else None, None if targeted else goal, original_class)


def _results(net, loop, x, target, label, original_class) -> Iterator[Progress[FoolResult]]:
    original = x.detach().cpu()
    for progress in loop:
        r = progress.result
        with torch.no_grad(), net.guard():
            p = net(r.image.to(net.device)).softmax(-1)[0]
        linf, l2 = perturbation_size(original, r.image)
        yield Progress(progress.step, progress.total, FoolResult(
            image=r.image, losses=r.losses, steps_taken=r.steps_taken, ended=r.ended, original=original,
            target=target, label=label, original_class=original_class, predicted=int(p.argmax()),
            probability=float(p.max()), linf=linf, l2=l2), progress.done)


def pgd(net, image, target: Any = None, *, label: Any = None, eps: float = 8 / 255, step_size: float = 1 / 255,
        steps: int = 20, stop_when_reached: bool = False, confidence: float | None = None,
        every: int = 5) -> FoolResult:
    """`pgd_iter` run to the end (all `steps` unless `stop_when_reached`)."""
    return run_to_end(pgd_iter(net, image, target, label=label, eps=eps, step_size=step_size, steps=steps,
                               stop_when_reached=stop_when_reached, confidence=confidence, every=every))


def fgsm(net, image, target: Any = None, *, label: Any = None, eps: float = 2 / 255) -> FoolResult:
    """The fast gradient sign method: one step of size `eps`, towards `target` if given,
    otherwise away from `label` (default: the model's prediction)."""
    return pgd(net, image, target, label=label, eps=eps, step_size=eps, steps=1)


def fool_iter(net, image, target: Any, *, eps: float = 8 / 255, step_size: float = 1 / 255, steps: int = 60,
              confidence: float | None = None, every: int = 5,
              should_stop: StopCheck = None) -> Iterator[Progress[FoolResult]]:
    """Targeted PGD that stops as soon as the model predicts `target` (at most `steps`
    steps) with at least `confidence` probability (0..1; None: at the first step where
    `target` is the top class, however narrowly)."""
    if target is None:
        raise ValueError("fool needs a target class to reach")
    return pgd_iter(net, image, target, eps=eps, step_size=step_size, steps=steps, stop_when_reached=True,
                    confidence=confidence, every=every, should_stop=should_stop)


def fool(net, image, target: Any, *, eps: float = 8 / 255, step_size: float = 1 / 255, steps: int = 60,
         confidence: float | None = None, every: int = 5) -> FoolResult:
    """Change `image` (PIL, array or 1x3xHxW tensor) until the model says `target`, never
    by more than `eps` per pixel. Check `.success`: the budget may not suffice."""
    return run_to_end(fool_iter(net, image, target, eps=eps, step_size=step_size, steps=steps,
                                confidence=confidence, every=every))
