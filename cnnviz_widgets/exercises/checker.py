"""One exercise's checker: the `Case`s it tries, the `Mistake`s it names, and `Checker.run`,
which calls the learner's function safely on every case (copies of the inputs, the models
snapshotted and put back, the learner's errors described) and judges each answer."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from ..engine.zoo.models import load_model
from .learner_errors import describe_exception, is_not_done, is_stub
from .result import FAILED, NOT_DONE, PASSED, CaseOutcome, Candidates, CheckResult, Stop, failure
from .snapshot import ModelSnapshot

__all__ = ["Case", "Mistake", "Checker", "clone_arg", "same_arg"]


@dataclass
class Case:
    """One input to the learner's function: positional `args` (named by the checker's
    `arg_names`), the `networks` the function may touch, the reference `expected`
    answer and anything the checker's comparison needs in `extra`."""

    label: str
    args: tuple
    expected: Any = None
    networks: tuple = ()
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Mistake:
    """A common mistake, recognised when the learner's answer equals what `compute(case)`
    gives on the failing case. `key` names it in tests; `title` and `explanation` in the
    message."""

    key: str
    title: str
    explanation: str
    compute: Callable[[Case], Any]


def clone_arg(a):
    if isinstance(a, torch.Tensor):
        return a.detach().clone()
    if isinstance(a, np.ndarray):
        return a.copy()
    if isinstance(a, list):
        return [clone_arg(v) for v in a]
    if isinstance(a, tuple):
        return tuple(clone_arg(v) for v in a)
    return a


def same_arg(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a.detach(), b.detach())
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(same_arg(x, y) for x, y in zip(a, b))
    return True


class Checker:
    """One exercise's checker. Subclasses set `name`, `arg_names`, and implement
    `cases()` (built once, cached), `compare(output, case)` (None when right, else a
    short description of the difference), `mistakes`, and optionally `convert` (turn
    the learner's return value into what `compare` takes, or raise `failure`) and
    `properties` (checks that name a problem without an exact mistake to match)."""

    name = ""
    arg_names: tuple[str, ...] = ()
    mistakes: tuple[Mistake, ...] = ()
    #: The models the inputs come from: held (their lock, eval mode) while the check runs, so an
    #: app's worker thread never meets the learner's hooks, nor the learner's pass the app's.
    models: tuple[str, ...] = ()

    def __init__(self):
        self._cases: list[Case] | None = None
        self._answers: dict[int, dict[int, Any]] = {}  # id(case) -> {mistake index: its answer}

    # -- to be provided
    def build_cases(self) -> list[Case]:
        raise NotImplementedError

    def prepare(self, given: list, case: Case) -> None:
        """Adjust the copies of the inputs before the call (e.g. make one require a gradient)."""

    def convert(self, output, case: Case, given: list):
        return output

    def compare(self, output, expected, case: Case) -> str | None:
        raise NotImplementedError

    def properties(self, output, case: Case) -> tuple[str, str, str] | None:
        return None

    def generic(self, output, case: Case) -> tuple[str, str, str] | None:
        return None

    # -- shared
    def cases(self) -> list[Case]:
        if self._cases is None:
            self._cases = self.build_cases()
        return self._cases

    def call(self, fn: Callable, case: Case):
        """fn(*case.args) with copies of the inputs; the models restored afterwards.
        Raises `Stop` on an exception, a stub, a changed model or a changed input."""
        given = [clone_arg(a) for a in case.args]
        self.prepare(given, case)
        flags = [a.requires_grad if isinstance(a, torch.Tensor) else None for a in given]
        snapshots = [ModelSnapshot(net) for net in case.networks]
        error: BaseException | None = None
        output = None
        try:
            output = fn(*given)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # the learner's code may raise anything
            error = exc
        finally:
            changes = []
            for snapshot in snapshots:  # every model is put back, even if one of them fails to be
                try:
                    changes += snapshot.restore()
                except Exception as exc:
                    changes.append(f"changed the model in a way the checker could not undo ({exc}): "
                                   "reload it with load_model(..., fresh=True)")
        self._flags = flags
        if error is not None:
            if is_not_done(error, fn):
                raise Stop(NOT_DONE, "not_done", "not done yet", self.not_done_message())
            also = ("\n\nIt had also " + "; it had ".join(changes) + " (the checker put the model back)."
                    if changes else "")
            raise failure("raised", "your function raised an error",
                        describe_exception(error, fn, self.name) + also)
        if changes:
            raise failure("changed_model", "your function leaves the model changed",
                        "Your function " + "; it ".join(changes) + ".\n\nThe checker has put the model back "
                        "as it was; the rest of the notebook is unaffected. A function that explains a "
                        "model must leave it as it found it.")
        for arg_name, original, passed_in in zip(self.arg_names, case.args, given):
            if not same_arg(original, passed_in):
                raise failure("changed_input", f"your function changes its argument `{arg_name}`",
                            f"After the call, `{arg_name}` holds different values: your function changed it "
                            "in place (`x -= ...`, `x[...] = ...`, `x.clamp_(...)`, or an in-place method "
                            "ending in `_`). The caller still needs it: work on a copy, `x = "
                            f"{arg_name}.clone()`, or write `x = x - ...` instead of `x -= ...`.")
        return output, given

    def run(self, fn: Callable, points: float = 1.0) -> CheckResult:
        """Try `fn` on every case; the result's score is the share of cases it got right."""
        if is_stub(fn):
            return CheckResult(self.name, NOT_DONE, self.not_done_message(), "not_done", "not done yet",
                               points=points)
        with ExitStack() as held:
            for model in self.models:
                held.enter_context(load_model(model).guard())
            return self._run(fn, points)

    def _run(self, fn: Callable, points: float) -> CheckResult:
        """Every case is tried, each on its own (one that goes wrong does not stop the others),
        so the score can give partial credit; the message explains the first that went wrong."""
        cases = self.cases()
        notes: list[str] = []
        values: list = []      # the converted answer of each case (None where there is none)
        problems: list = []    # None (right), a Stop, or a Candidates, per case
        keys = None            # after a first wrong answer, only the mistakes it could be are tried
        for case in cases:
            value = None
            try:
                output, given = self.call(fn, case)
                self.after_call(case, given, notes)
                if output is None:
                    raise failure("returned_none", "your function returned None",
                                  "Your function returned None: is its `return` missing?")
                value = self.convert(output, case, given)
                self.judge(value, case, keys)
                problems.append(None)
            except Stop as stop:
                if stop.status == NOT_DONE:
                    return CheckResult(self.name, NOT_DONE, stop.message, stop.key, stop.title, None, notes,
                                       points=points)
                problems.append(stop)
                keys = [] if keys is None else keys
            except Candidates as found:
                problems.append(found)
                keys = list(found.keys) if keys is None else keys
            values.append(value)
        outcomes, first = [], None
        for number, (case, problem) in enumerate(zip(cases, problems), 1):
            if problem is None:
                outcomes.append(CaseOutcome(case.label, True))
                continue
            if isinstance(problem, Candidates):
                key = self.narrow(problem.keys, list(zip(cases, values))[number:])[0]
                mistake = next(m for m in self.mistakes if m.key == key)
                key, title, message = mistake.key, mistake.title, mistake.explanation
            else:
                key, title, message = problem.key, problem.title, problem.message
            outcomes.append(CaseOutcome(case.label, False, key, title))
            if first is None:
                first = (key, title, message, self.where(case, number))
        if first is None:
            return CheckResult(self.name, PASSED, f"Your function agrees with the reference on all {len(cases)} "
                               f"inputs ({self.describe_cases()}).", None, "correct", None, notes,
                               outcomes=outcomes, points=points)
        key, title, message, where = first
        return CheckResult(self.name, FAILED, message, key, title, where, notes, outcomes=outcomes, points=points)

    def not_done_message(self) -> str:
        return (f"Write the body of `{self.name}` in the cell above (in place of `raise NotImplementedError()`), "
                "run that cell, then run this check again.")

    def where(self, case: Case, number: int) -> str:
        return case.label + (f" (input {number} of {len(self.cases())})" if len(self.cases()) > 1 else "")

    def after_call(self, case: Case, given: list, notes: list[str]) -> None:
        for arg_name, before, passed_in in zip(self.arg_names, self._flags, given):
            if isinstance(passed_in, torch.Tensor) and passed_in.requires_grad != before:
                note = (f"your function switched requires_grad on for the `{arg_name}` it was given; "
                        f"work on a copy (`{arg_name}.clone().requires_grad_(True)`) so the caller's tensor "
                        "stays as it was.")
                if note not in notes:
                    notes.append(note)

    def describe_cases(self) -> str:
        return "; ".join(c.label for c in self.cases())

    def judge(self, value, case: Case, keys: list[str] | None = None) -> None:
        """Nothing when `value` is right on `case`; else raise `Candidates` (the known mistakes
        among `keys`, all by default, that give `value`) or a `failure` naming the problem."""
        difference = self.compare(value, case.expected, case)
        if difference is None:
            return
        keys = self.matching_mistakes(value, case, [m.key for m in self.mistakes] if keys is None else keys)
        if keys:
            raise Candidates(keys)
        found = self.properties(value, case) or self.generic(value, case)
        if found is not None:
            raise failure(*found)
        raise failure("wrong", "the answer differs from the reference", difference)

    def matching_mistakes(self, value, case: Case, keys: list[str]) -> list[str]:
        """Those of the mistake `keys` whose answer (any of its variants) equals `value` on `case`."""
        found = []
        for key in dict.fromkeys(keys):
            for index, mistake in enumerate(self.mistakes):
                if mistake.key != key:
                    continue
                wrong = self.mistaken_answer(index, case)
                if wrong is not None and self.matches(value, wrong, case):
                    found.append(key)
                    break
        return found

    def mistaken_answer(self, index: int, case: Case):
        """What mistake number `index` gives on `case` (None where it cannot happen), computed
        once: the cases are fixed and the models always put back, so the answer never changes."""
        store = self._answers.setdefault(id(case), {})
        if index not in store:
            try:
                store[index] = self.mistakes[index].compute(case)
            except Exception:  # a mistake that cannot happen on this input
                store[index] = None
        return store[index]

    def narrow(self, keys: list[str], later: list) -> list[str]:
        """Several mistakes give the same answer on one input (a confident prediction makes
        the probability's gradient look like the log-probability's): keep those that also
        explain the learner's answers to the later inputs, (case, answer) pairs."""
        for case, value in later:
            if len(keys) == 1:
                break
            if value is None:
                continue
            still = self.matching_mistakes(value, case, keys)
            if still:
                keys = still
        return keys

    def matches(self, value, wrong, case: Case) -> bool:
        try:
            return self.compare(value, wrong, case) is None
        except Exception:
            return False

