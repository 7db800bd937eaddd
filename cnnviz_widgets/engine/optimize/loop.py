"""The one image-optimisation loop of lessons 09-12 (Lucent's ``render``).

`optimize_iter(net, objective, param, ...)` minimises ``objective + penalties`` over
the image of `param`: transforms before each forward pass, regularisers after each
step, an optimiser (Adam, SGD, the sign step of FGSM/PGD, DeepDream's normalised
step) in between. It yields `engine.progress.Progress` whose `result` is an
`OptimizeResult`; gradient ascent, fooling, DeepDream and inversion are each one call
of it with different pieces.

The network is never changed: each step runs inside ``net.guard()`` and
``net.capture(...)``, entered and left within the step, so between two yields (and
after an error) the model is exactly as it was, and gradients are taken with
`torch.autograd.grad` with respect to the image only: no parameter's ``.grad`` is set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import torch

from ..core import checks
from ..core.progress import Progress, StopCheck, run_to_end
from .objectives import LOGITS, Objective
from .regularizers import Regularizer

__all__ = ["OPTIMIZERS", "SCHEDULES", "Diverged", "OptimizeResult", "optimize_iter", "optimize"]

OPTIMIZERS = ("adam", "sgd", "sign", "normalized")
SCHEDULES = ("constant", "cosine")


class Diverged(RuntimeError):
    """The optimisation blew up (NaN/inf loss or gradient, or an exploding image)."""


@dataclass
class OptimizeResult:
    """An optimised image and how it got there.

    image: N x 3 x H x W in [0, 1] (N: the parametrisation's batch, usually 1), on the
        CPU, detached.
    losses: the named loss terms of the last step taken, and their ``"total"``.
    steps_taken: the number of steps that changed the image.
    ended: ``""`` while running, then ``"done"`` (all steps), ``"stopped"``
        (`should_stop` said so) or ``"reached"`` (`until` was met).
    """

    image: torch.Tensor
    losses: dict[str, float] = field(default_factory=dict)
    steps_taken: int = 0
    ended: str = ""

    @property
    def loss(self) -> float:
        return float(self.losses.get("total", float("nan")))


def _forward(net, x: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
    """Run as far as the objective needs (the whole net only when it needs logits)."""
    inner = [l for l in layers if l != LOGITS]
    x = net.fast_layout(x)  # channels-last on a CPU: a faster forward+backward, same values
    with net.capture(inner) as captured:
        if LOGITS in layers or not inner:
            logits = net(x)
            return {**captured, LOGITS: logits}
        net.forward_to(x, max(inner, key=net.layers.index))
        return dict(captured)


def optimize_iter(
    net,
    objective: Objective,
    param,
    *,
    steps: int,
    step_size: float,
    optimizer: str = "adam",
    transforms: Sequence[Callable] = (),
    regularizers: Sequence[Regularizer] = (),
    every: int = 1,
    seed: int = 0,
    should_stop: StopCheck = None,
    until: Callable[[dict], bool] | None = None,
    schedule: str = "constant",
) -> Iterator[Progress[OptimizeResult]]:
    """Minimise ``objective + regularisers`` over `param`'s image; yield `Progress`.

    Yields every `every` steps and always once at the end (``done=True``;
    ``result.ended`` says why). `optimizer`: ``"adam"``, ``"sgd"`` (`step_size` is the
    learning rate), ``"sign"`` (x -= step_size * sign(g): FGSM/PGD) or ``"normalized"``
    (x -= step_size * g / mean|g|: DeepDream). `should_stop()` is asked before every
    step; `until(outputs)` sees each step's (detached) outputs and ends the run with
    that image when it returns True (fooling: "the target is predicted").
    ``schedule="cosine"`` decays the step size to zero over the run (inversion
    converges much further with it). NaN/inf or an exploding image raise `Diverged`.
    """
    steps = checks.integer(steps, "steps", low=0)
    step_size = checks.number(step_size, "step_size", low=0.0, low_open=True)
    every = checks.integer(every, "every", low=1)
    seed = checks.integer(seed, "seed")
    optimizer = checks.choice(optimizer, "optimizer", OPTIMIZERS)
    schedule = checks.choice(schedule, "schedule", SCHEDULES)
    for layer in objective.layers:
        if layer != LOGITS:
            checks.layer(net, layer)
    for r in regularizers:
        r.check(param)
    # Checked at the call, run when iterated: a bad setting is an error before any work.
    return _steps(net, objective, param, steps, step_size, optimizer, list(transforms), list(regularizers),
                  every, seed, should_stop, until, schedule)


def _steps(net, objective, param, steps, step_size, optimizer, transforms, regularizers, every, seed,
           should_stop, until, schedule) -> Iterator[Progress[OptimizeResult]]:
    layers = objective.layers
    param.to(net.device)
    params = param.parameters()
    wants_gradient = any(r.needs_gradient for r in regularizers)
    gen = torch.Generator().manual_seed(seed)
    opt = None
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=step_size)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=step_size)
    losses: dict[str, float] = {}

    def snapshot(taken: int, ended: str = "") -> Progress[OptimizeResult]:
        image = param.image().detach().to("cpu", copy=True)
        return Progress(taken, steps, OptimizeResult(image, dict(losses), taken, ended), done=bool(ended))

    for step in range(1, steps + 1):
        if should_stop is not None and should_stop():
            yield snapshot(step - 1, "stopped")
            return
        rate = step_size if schedule == "constant" else \
            step_size * 0.5 * (1 + math.cos(math.pi * (step - 1) / max(1, steps)))
        if opt is not None:
            for group in opt.param_groups:
                group["lr"] = rate
        with net.guard(), torch.enable_grad():
            image = param.image()
            x = image
            for t in transforms:
                x = t(x, gen)
            outputs = _forward(net, x, layers)
            total, parts = objective(outputs)
            for r in regularizers:
                p = r.penalty(image)
                if p is not None:
                    parts[r.name] = p
                    total = total + p
            losses = {k: float(v.detach()) for k, v in parts.items()}
            losses["total"] = float(total.detach())
            if not math.isfinite(losses["total"]):
                raise Diverged(f"the optimisation diverged at step {step}: the loss became "
                               f"{losses['total']}. Lower the step size or raise the regularisers.")
            reached = until is not None and until({k: v.detach() for k, v in outputs.items()})
            grads = image_grad = None
            if not reached:
                extra = [image] if wants_gradient and not any(image is p for p in params) else []
                grads = torch.autograd.grad(total, [*params, *extra])
                if wants_gradient:
                    image_grad = grads[-1] if extra else grads[[image is p for p in params].index(True)]
                grads = grads[:len(params)]
        if reached:  # yield outside the guard: a paused generator holds no model state
            yield snapshot(step - 1, "reached")
            return
        with torch.no_grad():
            for p, g in zip(params, grads):
                if not torch.isfinite(g).all():
                    raise Diverged(f"the optimisation diverged at step {step}: the gradient has NaN/inf values. "
                                   "Lower the step size.")
                if opt is not None:
                    p.grad = g
                elif optimizer == "sign":
                    p.sub_(rate * g.sign())
                else:  # normalized: the step size does not depend on the gradient's scale
                    p.sub_(rate * g / g.abs().mean().clamp_min(1e-12))
            if opt is not None:
                opt.step()
                for p in params:
                    p.grad = None
            param.after_step()
            for r in regularizers:
                r.after_step(param, step, image_grad)
            for p in params:
                if not torch.isfinite(p).all() or p.abs().max() > 1e4:
                    raise Diverged(f"the image exploded at step {step} (values beyond 1e4 or NaN). "
                                   "Lower the step size.")
        if step % every == 0 and step != steps:
            yield snapshot(step)
    yield snapshot(steps, "done")


def optimize(net, objective: Objective, param, *, steps: int, step_size: float, optimizer: str = "adam",
             transforms: Sequence[Callable] = (), regularizers: Sequence[Regularizer] = (), every: int = 1,
             seed: int = 0, until: Callable[[dict], bool] | None = None,
             schedule: str = "constant") -> OptimizeResult:
    """`optimize_iter` run to the end: its final `OptimizeResult`."""
    return run_to_end(optimize_iter(net, objective, param, steps=steps, step_size=step_size, optimizer=optimizer,
                                    transforms=transforms, regularizers=regularizers, every=every, seed=seed,
                                    until=until, schedule=schedule))
