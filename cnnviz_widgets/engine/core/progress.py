"""How long techniques report progress, and how a caller runs one to the end.

Every technique that can take more than a moment has two forms:
``verb(net, image, ..., *, settings...) -> Result`` and
``verb_iter(net, image, ..., *, settings..., should_stop=None)`` yielding `Progress`.
The twin is a plain function: it checks its settings when called and returns a
generator that holds no guard and no grad mode across a ``yield``.
`should_stop` is asked between steps; when it answers True the run ends early and
its last `Progress` carries the result so far with ``result.ended == "stopped"``.
The last `Progress` of every run has ``done=True`` and its ``result`` set;
``verb`` is ``run_to_end(verb_iter(...))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterable, Optional, TypeVar

__all__ = ["Progress", "run_to_end", "StopCheck", "never_stop"]

R = TypeVar("R")
StopCheck = Optional[Callable[[], bool]]


@dataclass
class Progress(Generic[R]):
    """`step` of `total` done; `result` is the partial result (a preview) while running,
    the final one when `done`."""

    step: int
    total: int
    result: R | None = None
    done: bool = False

    @property
    def fraction(self) -> float:
        return self.step / self.total if self.total else 1.0


def never_stop() -> bool:
    return False


def run_to_end(steps: Iterable[Progress[R]]) -> R:
    """Drive a ``*_iter`` run to its end and return its final result."""
    last: Any = None
    for last in steps:
        pass
    if last is None or last.result is None:
        raise RuntimeError("the run ended without a result")
    return last.result
