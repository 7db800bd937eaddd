"""Running a learner's function safely, and saying what is wrong with its answer.

A checker (`checks.py`) gives a list of `Case`s (inputs, and the reference answer
from `solutions.py`), a comparison, and the `Mistake`s it knows. `Checker.run` calls
the learner's function on each case and stops at the first problem:

- the function raises: the message quotes the learner's own line (a stub that
  still raises NotImplementedError is "not done yet", not an error);
- it leaves a model changed (weights, training mode, requires_grad flags, hooks,
  module attributes, the global grad mode) or changes its input tensors: the model
  is put back exactly as it was, and the message says what had changed;
- its answer is not what the reference gives: the answer is compared with what
  each known mistake would give, then with generic slips (a wrong shape,
  transposed, a kept batch dimension, NaN, the opposite sign, a constant factor),
  and the first that fits is named.

Nothing here imports ipywidgets or matplotlib; `CheckResult._repr_html_` is plain HTML.
"""

from __future__ import annotations

import html
import math
import os
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["CheckResult", "Case", "Mistake", "Checker", "ExerciseFailed", "ModelSnapshot", "grading_mode"]


class ExerciseFailed(AssertionError):
    """Raised by `check` in grading mode (``CNNVIZ_GRADING=1``) when an exercise does not pass,
    so an autograder (nbgrader's autograde) marks the check cell as failed."""


def grading_mode() -> bool:
    return os.environ.get("CNNVIZ_GRADING", "") not in ("", "0")


# --- the result ---------------------------------------------------------------------------

PASSED, FAILED, NOT_DONE = "passed", "failed", "not done"


@dataclass
class CheckResult:
    """What `check` says about one exercise.

    `passed`: every case agreed with the reference and nothing was left changed.
    `status`: "passed", "failed" or "not done" (the stub still raises NotImplementedError).
    `diagnosis`: the key of the named mistake when one was recognised (e.g. ``"no_abs"``),
    or of a generic problem (``"shape"``, ``"raised"``, ``"changed_model"``, ...); None
    when it passed. `message`: the explanation, in plain text. `case`: the input it
    failed on. `notes`: remarks that do not fail the check.
    """

    name: str
    status: str
    message: str
    diagnosis: str | None = None
    title: str = ""
    case: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def __bool__(self) -> bool:
        return self.passed

    def summary(self) -> str:
        mark = {PASSED: "✓", FAILED: "✗", NOT_DONE: "…"}[self.status]
        head = f"{mark} {self.name}: {self.title}" if self.title else f"{mark} {self.name}"
        return head

    def __str__(self) -> str:
        lines = [self.summary(), self.message]
        if self.case and self.status == FAILED:
            lines.append(f"Input: {self.case}.")
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(line for line in lines if line)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        colour = {PASSED: "#1a7f37", FAILED: "#cf222e", NOT_DONE: "#6e7781"}[self.status]
        paragraphs = [f"<div style='font-weight:bold;color:{colour}'>{html.escape(self.summary())}</div>"]
        for block in self.message.split("\n\n"):
            if block.startswith("    ") or block.startswith("`"):
                paragraphs.append(f"<pre style='margin:4px 0'>{html.escape(block.strip())}</pre>")
            elif block.strip():
                paragraphs.append(f"<div style='margin:4px 0'>{html.escape(block)}</div>")
        if self.case and self.status == FAILED:
            paragraphs.append(f"<div style='margin:4px 0;color:#57606a'>Input: {html.escape(self.case)}.</div>")
        for note in self.notes:
            paragraphs.append(f"<div style='margin:4px 0;color:#57606a'>Note: {html.escape(note)}</div>")
        return (f"<div style='border-left:4px solid {colour};padding:4px 10px;font-family:sans-serif;"
                f"white-space:pre-wrap'>{''.join(paragraphs)}</div>")


class _Stop(Exception):
    """Ends a check early with a result (never leaves `Checker.run`)."""

    def __init__(self, status: str, key: str, title: str, message: str):
        super().__init__(message)
        self.status, self.key, self.title, self.message = status, key, title, message


class _Candidates(Exception):
    """The answer is what these known mistakes (keys, in the checker's order) give."""

    def __init__(self, keys: list[str]):
        super().__init__(", ".join(keys))
        self.keys = keys


def failure(key: str, title: str, message: str) -> _Stop:
    return _Stop(FAILED, key, title, message)


# --- what a learner's function may leave changed -------------------------------------------

_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
               "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks_with_kwargs",
               "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
               "_load_state_dict_post_hooks")
_COUNTED_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
_MISSING = object()


class ModelSnapshot:
    """Everything about a model a learner's function could change, kept so that it can
    be put back exactly: the module tree, parameter and buffer objects and values,
    requires_grad flags and .grad, training flags, hooks, instance attributes that
    shadow methods (a monkey-patched ``forward``), and the global grad mode."""

    def __init__(self, net: nn.Module):
        self.net = net
        self.names = {id(m): (name or "the model") for name, m in net.named_modules()}
        self.modules = []
        for m in net.modules():
            self.modules.append((
                m,
                dict(m._parameters),
                dict(m._buffers),
                dict(m._modules),
                {attr: dict(getattr(m, attr)) for attr in _HOOK_DICTS if isinstance(getattr(m, attr, None), dict)},
                getattr(m, "_is_full_backward_hook", _MISSING),
                m.training,
                dict(vars(m)),
            ))
        self.params = {}
        for m, params, buffers, *_ in self.modules:
            for p in params.values():
                if p is not None and id(p) not in self.params:
                    self.params[id(p)] = (p, p.detach().clone(), p.requires_grad, p.grad)
        self.buffers = {}
        for m, _, buffers, *_ in self.modules:
            for b in buffers.values():
                if b is not None and id(b) not in self.buffers:
                    self.buffers[id(b)] = (b, b.detach().clone())
        self.grad_enabled = torch.is_grad_enabled()

    def restore(self) -> list[str]:
        """Put everything back; return what had changed, in words (empty: nothing)."""
        changes: list[str] = []
        hooks_left: list[str] = []
        replaced: list[str] = []
        mode: list[str] = []
        patched: list[str] = []
        for m, params, buffers, children, hooks, full_hook, training, attrs in self.modules:
            where = self.names[id(m)]
            pairs = ((m._parameters, params), (m._buffers, buffers), (m._modules, children))
            if not all(_same_items(live, saved) for live, saved in pairs):
                replaced.append(where)
                for live, saved in pairs:
                    live.clear()
                    live.update(saved)
            for attr, saved in hooks.items():
                live = getattr(m, attr)
                if attr in _COUNTED_HOOKS:
                    added = len(set(live) - set(saved))
                    hooks_left += [f"{attr.strip('_').replace('_', ' ')[:-1]} on {where}"] * added
                if live.keys() != saved.keys():
                    live.clear()
                    live.update(saved)
            if full_hook is _MISSING:
                m.__dict__.pop("_is_full_backward_hook", None)
            else:
                m._is_full_backward_hook = full_hook
            if m.training != training:
                mode.append(where)
                m.training = training
            for key in set(vars(m)) - set(attrs):
                if not key.startswith("_"):  # torch keeps its own state in private attributes
                    patched.append(f"{where}.{key}")
                    del m.__dict__[key]
            for key, value in attrs.items():
                if not key.startswith("_") and key != "training" and vars(m).get(key, _MISSING) is not value:
                    patched.append(f"{where}.{key}")
                    m.__dict__[key] = value
        weights, flags, grads = [], [], []
        names = {id(p): n for n, p in self.net.named_parameters()}
        for p, value, requires_grad, grad in self.params.values():
            if not _same_tensor(p.detach(), value):
                weights.append(names.get(id(p), "a parameter"))
                _put_back(p, value)
            if p.requires_grad != requires_grad:
                flags.append(names.get(id(p), "a parameter"))
                p.requires_grad_(requires_grad)
            if p.grad is not grad:
                grads.append(names.get(id(p), "a parameter"))
                p.grad = grad
        buffer_names = {id(b): n for n, b in self.net.named_buffers()}
        stats = []
        for b, value in self.buffers.values():
            if not _same_tensor(b, value):
                stats.append(buffer_names.get(id(b), "a buffer"))
                _put_back(b, value)
        if torch.is_grad_enabled() != self.grad_enabled:
            changes.append(f"switched gradients {'off' if self.grad_enabled else 'on'} for the whole session "
                           "(torch.set_grad_enabled); use `with torch.no_grad():` around a block instead")
            torch.set_grad_enabled(self.grad_enabled)
        if hooks_left:
            changes.append(f"left {len(hooks_left)} hook(s) on the model ({_some(hooks_left)}): keep the handle "
                           "that register_..._hook returns and call handle.remove(), in a `finally:` block")
        if mode:
            changes.append("switched the model to training mode (net.train(), or .train() on a part of it); "
                           "leave it in eval mode: dropout and batch norm behave differently in training mode")
        if weights:
            changes.append(f"changed the model's weights ({_some(weights)}): an in-place operation on a "
                           "parameter, or an optimiser step on the model")
        if stats:
            changes.append(f"changed the model's buffers ({_some(stats)}), e.g. batch-norm statistics "
                           "updated by a forward pass in training mode")
        if flags:
            changes.append(f"switched requires_grad on for the model's parameters ({_some(flags)}); the "
                           "gradient you need is with respect to the image, not the weights")
        if grads:
            changes.append(f"left gradients in the parameters' .grad ({_some(grads)})")
        if replaced:
            changes.append(f"replaced parts of the model ({_some(replaced)})")
        if patched:
            changes.append(f"set attributes on the model ({_some(patched)}), e.g. a replaced forward")
        return changes


def _same_items(live: dict, saved: dict) -> bool:
    """The same keys holding the very same objects (tensors are compared by identity: `==`
    on two tensors is elementwise)."""
    return live.keys() == saved.keys() and all(live[k] is saved[k] for k in saved)


def _same_tensor(live: torch.Tensor, saved: torch.Tensor) -> bool:
    return (live.dtype == saved.dtype and live.device == saved.device and live.shape == saved.shape
            and torch.equal(live, saved))


def _put_back(live: torch.Tensor, saved: torch.Tensor) -> None:
    with torch.no_grad():
        if live.dtype == saved.dtype and live.device == saved.device and live.shape == saved.shape:
            live.copy_(saved)
        else:  # converted in place (.double(), .to(...)): give it back its own storage
            live.data = saved.clone()


def _some(items: Sequence[str], n: int = 3) -> str:
    items = list(dict.fromkeys(items))
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


# --- calling the learner's function ---------------------------------------------------------

def _learner_frame(exc: BaseException, fn: Callable) -> traceback.FrameSummary | None:
    """The deepest frame of the traceback that is the learner's own code (the file the
    function was defined in: a notebook cell)."""
    code = getattr(fn, "__code__", None)
    filename = code.co_filename if code is not None else None
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if filename is not None and f.filename == filename]
    if mine:
        return mine[-1]
    here = os.path.dirname(os.path.abspath(__file__))
    outside = [f for f in frames if not os.path.abspath(f.filename).startswith(here)]
    return outside[0] if outside else None


_ERROR_HINTS = (
    ("does not require grad", "the tensor you differentiate does not depend on anything that requires a gradient: "
                              "make a copy of the image that does, `x = image.clone().requires_grad_(True)`, "
                              "and run the network on x, before calling backward()."),
    ("a leaf Variable that requires grad is being used in an in-place operation",
     "an in-place change (`x += ...`, `x[...] = ...`) on a tensor that requires a gradient: compute the new "
     "image as a new tensor, `x.detach() + step`, or inside `with torch.no_grad():`."),
    ("Trying to backward through the graph a second time", "backward() ran twice over one forward pass: "
                                                           "run the network again before the second backward()."),
    ("Can't call numpy() on Tensor that requires grad", "call .detach() before .numpy()."),
    ("mat1 and mat2 shapes cannot be multiplied", "a matrix product with mismatched sizes: print the shapes of both sides."),
    ("NoneType", "something is None: did a function you wrote forget its `return`, or is x.grad None because "
                 "backward() was not called on a result computed from x?"),
    ("expected scalar type", "two tensors of different dtypes meet: convert with .float()."),
    ("Expected all tensors to be on the same device", "tensors on different devices: create new tensors with "
                                                       "`device=image.device` (or use torch.zeros_like)."),
)


def _describe_exception(exc: BaseException, fn: Callable, fn_name: str) -> str:
    kind = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    lines = [f"`{fn_name}` raised {kind}{': ' + text if text else ''}"]
    frame = _learner_frame(exc, fn)
    if frame is not None:
        source = (frame.line or "").strip()
        lines.append(f"in `{frame.name}`, line {frame.lineno} of its cell:" + (f"\n\n    {source}" if source else ""))
    for needle, hint in _ERROR_HINTS:
        if needle in str(exc) or needle == kind:
            lines.append(f"\n\nHint: {hint}")
            break
    return " ".join(lines[:1]) + ("\n" + "".join(lines[1:]) if len(lines) > 1 else "")


def _not_done(exc: BaseException, fn: Callable) -> bool:
    """A stub: NotImplementedError raised by the learner's function itself."""
    if not isinstance(exc, NotImplementedError):
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    code = getattr(fn, "__code__", None)
    return bool(frames) and code is not None and frames[-1].filename == code.co_filename


def _is_stub(fn: Callable) -> bool:
    """The function's body is still only (a docstring and) `raise NotImplementedError(...)`:
    say "not done yet" without building any input."""
    import ast
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return False
    if not tree.body or not isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    body = tree.body[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


# --- cases, mistakes, checkers ---------------------------------------------------------------

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


def _clone_arg(a):
    if isinstance(a, torch.Tensor):
        return a.detach().clone()
    if isinstance(a, np.ndarray):
        return a.copy()
    if isinstance(a, list):
        return [_clone_arg(v) for v in a]
    if isinstance(a, tuple):
        return tuple(_clone_arg(v) for v in a)
    return a


def _same_arg(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a.detach(), b.detach())
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same_arg(x, y) for x, y in zip(a, b))
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
        Raises `_Stop` on an exception, a stub, a changed model or a changed input."""
        given = [_clone_arg(a) for a in case.args]
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
            if _not_done(error, fn):
                raise _Stop(NOT_DONE, "not_done", "not done yet", self.not_done_message())
            also = ("\n\nIt had also " + "; it had ".join(changes) + " (the checker put the model back)."
                    if changes else "")
            raise failure("raised", "your function raised an error",
                        _describe_exception(error, fn, self.name) + also)
        if changes:
            raise failure("changed_model", "your function leaves the model changed",
                        "Your function " + "; it ".join(changes) + ".\n\nThe checker has put the model back "
                        "as it was; the rest of the notebook is unaffected. A function that explains a "
                        "model must leave it as it found it.")
        for arg_name, original, passed_in in zip(self.arg_names, case.args, given):
            if not _same_arg(original, passed_in):
                raise failure("changed_input", f"your function changes its argument `{arg_name}`",
                            f"After the call, `{arg_name}` holds different values: your function changed it "
                            "in place (`x -= ...`, `x[...] = ...`, `x.clamp_(...)`, or an in-place method "
                            "ending in `_`). The caller still needs it: work on a copy, `x = "
                            f"{arg_name}.clone()`, or write `x = x - ...` instead of `x -= ...`.")
        return output, given

    def run(self, fn: Callable) -> CheckResult:
        if _is_stub(fn):
            return CheckResult(self.name, NOT_DONE, self.not_done_message(), "not_done", "not done yet")
        from contextlib import ExitStack

        from ..engine.zoo.models import load_model

        with ExitStack() as held:
            for model in self.models:
                held.enter_context(load_model(model).guard())
            return self._run(fn)

    def _run(self, fn: Callable) -> CheckResult:
        cases = self.cases()
        notes: list[str] = []
        for number, case in enumerate(cases, 1):
            try:
                output, given = self.call(fn, case)
                self.after_call(case, given, notes)
                if output is None:
                    raise failure("returned_none", "your function returned None",
                                "Your function returned None: is its `return` missing?")
                value = self.convert(output, case, given)
                self.judge(value, case)
            except _Stop as stop:
                return CheckResult(self.name, stop.status, stop.message, stop.key, stop.title,
                                   None if stop.status == NOT_DONE else self.where(case, number), notes)
            except _Candidates as found:
                key = self.narrow(fn, found.keys, cases[number:])[0]
                mistake = next(m for m in self.mistakes if m.key == key)
                return CheckResult(self.name, FAILED, mistake.explanation, mistake.key, mistake.title,
                                   self.where(case, number), notes)
        return CheckResult(self.name, PASSED, f"Your function agrees with the reference on all {len(cases)} inputs "
                           f"({self.describe_cases()}).", None, "correct", None, notes)

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

    def judge(self, value, case: Case) -> None:
        difference = self.compare(value, case.expected, case)
        if difference is None:
            return
        keys = self.matching_mistakes(value, case, [m.key for m in self.mistakes])
        if keys:
            raise _Candidates(keys)
        found = self.properties(value, case) or self.generic(value, case)
        if found is not None:
            raise failure(*found)
        raise failure("wrong", "the answer differs from the reference", difference)

    def matching_mistakes(self, value, case: Case, keys: list[str]) -> list[str]:
        """Those of the mistake `keys` whose answer (any of its variants) equals `value` on `case`."""
        found = []
        for key in dict.fromkeys(keys):
            for mistake in (m for m in self.mistakes if m.key == key):
                try:
                    wrong = mistake.compute(case)
                except Exception:  # a mistake that cannot happen on this input
                    continue
                if wrong is not None and self.matches(value, wrong, case):
                    found.append(key)
                    break
        return found

    def narrow(self, fn: Callable, keys: list[str], later: list[Case]) -> list[str]:
        """Several mistakes give the same answer on one input (a confident prediction makes
        the probability's gradient look like the log-probability's): run the learner's
        function on the later inputs and keep the mistakes that explain those answers too."""
        for case in later:
            if len(keys) == 1:
                break
            try:
                output, given = self.call(fn, case)
                value = self.convert(output, case, given)
            except Exception:
                break
            still = self.matching_mistakes(value, case, keys)
            if still:
                keys = still
        return keys

    def matches(self, value, wrong, case: Case) -> bool:
        try:
            return self.compare(value, wrong, case) is None
        except Exception:
            return False


# --- converting and comparing numbers ---------------------------------------------------------

def as_array(output, what: str = "your function's result") -> torch.Tensor:
    """A tensor, numpy array or nested list of numbers -> float64 CPU tensor, or `failure`."""
    if isinstance(output, torch.Tensor):
        t = output.detach()
    elif isinstance(output, np.ndarray) or isinstance(output, (list, tuple, int, float, np.number)):
        try:
            t = torch.as_tensor(np.asarray(output, dtype=np.float64))
        except (TypeError, ValueError):
            raise failure("type", "the result is not an array of numbers",
                        f"{what} is a {type(output).__name__} that does not convert to an array of numbers; "
                        "return a torch tensor.") from None
    else:
        raise failure("type", "the result is not a tensor",
                    f"{what} is a {type(output).__name__}; return a torch tensor.")
    if t.is_complex():
        raise failure("type", "the result is complex", f"{what} holds complex numbers; return real values.")
    return t.to("cpu", torch.float64)


def check_shape(value: torch.Tensor, expected: torch.Tensor, wanted: str) -> None:
    """`failure` with a named slip when the shapes differ."""
    if tuple(value.shape) == tuple(expected.shape):
        return
    got, want = tuple(value.shape), tuple(expected.shape)
    if value.dim() == 2 and value.T.shape == expected.shape and tensors_close(value.T, expected):
        raise failure("transposed", "rows and columns are swapped",
                    f"Your result is the right answer transposed: shape {_shape(got)} instead of {_shape(want)}. "
                    "Rows go down the image (height), columns across (width).")
    if value.numel() == expected.numel() and value.squeeze().shape == expected.squeeze().shape:
        raise failure("extra_dims", "the result has extra dimensions of size 1",
                    f"Your result has shape {_shape(got)}; the exercise asks for {wanted}, shape {_shape(want)}. "
                    "Drop the batch (or channel) dimension, e.g. with `[0]` or `.squeeze(0)`.")
    raise failure("shape", "the result has the wrong shape",
                f"Your result has shape {_shape(got)}; the exercise asks for {wanted}, which here is {_shape(want)}.")


def _shape(shape) -> str:
    return " x ".join(str(s) for s in shape) if len(shape) else "a scalar (shape ())"


def check_finite(value: torch.Tensor) -> None:
    bad = ~torch.isfinite(value)
    if bad.any():
        nan, inf = int(torch.isnan(value).sum()), int(torch.isinf(value).sum())
        parts = ([f"{nan} NaN"] if nan else []) + ([f"{inf} infinite"] if inf else [])
        raise failure("not_finite", "the result has NaN or infinite values",
                    f"Your result has {' and '.join(parts)} value(s) out of {value.numel()}. A 0/0 or x/0 "
                    "somewhere? Look for a division by something that can be zero, or a log of 0.")


def tensors_close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-3, equal_nan: bool = True) -> bool:
    if a.shape != b.shape:
        return False
    a, b = a.double(), b.double()
    finite = torch.isfinite(b)
    if equal_nan:
        if not torch.equal(torch.isnan(a), torch.isnan(b)):
            return False
        if not torch.equal(torch.isinf(a) & (a > 0), torch.isinf(b) & (b > 0)):
            return False
        if not torch.equal(torch.isinf(a) & (a < 0), torch.isinf(b) & (b < 0)):
            return False
    elif not finite.all() or not torch.isfinite(a).all():
        return False
    if not finite.any():
        return True
    scale = float(b[finite].abs().max())
    err = float((a[finite] - b[finite]).abs().max())
    return err <= rtol * scale or err <= 1e-12


def relative_difference(value: torch.Tensor, expected: torch.Tensor, rtol: float) -> str | None:
    """None when equal within `rtol` of the reference's largest magnitude; else where and by how much."""
    if tensors_close(value, expected, rtol, equal_nan=False):
        return None
    diff = (value - expected).abs()
    diff = torch.where(torch.isfinite(diff), diff, torch.full_like(diff, math.inf))
    flat = int(diff.argmax())
    index = tuple(int(i) for i in np.unravel_index(flat, tuple(expected.shape))) if expected.dim() else ()
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    where = f" at index {index}" if index else ""
    return (f"Your result differs from the reference{where}: you have {float(value.flatten()[flat]):.6g}, "
            f"the reference {float(expected.flatten()[flat]):.6g} (the reference's values reach {scale:.3g}; "
            f"the tolerance is {rtol:g} of that).")


def generic_numeric(value: torch.Tensor, expected: torch.Tensor, rtol: float) -> tuple[str, str, str] | None:
    """Slips any numeric answer can have: the opposite sign, or a constant factor off."""
    if value.shape != expected.shape or not torch.isfinite(value).all():
        return None
    if value.dim() == 2 and value.shape[0] == value.shape[1] and tensors_close(value.T, expected, rtol):
        return ("transposed", "rows and columns are swapped",
                "Your result is the right answer transposed: rows go down the image (height), columns across "
                "(width).")
    if tensors_close(-value, expected, rtol):
        return ("negated", "the sign is flipped", "Your result is exactly minus the reference: a sign somewhere "
                "(a subtraction the wrong way round, or a minus in front of the objective).")
    denom = float((expected * expected).sum())
    if denom > 0:
        factor = float((value * expected).sum()) / denom
        if factor > 0 and abs(factor - 1) > 10 * rtol and tensors_close(value, factor * expected, rtol):
            return ("scaled", f"off by a constant factor ({factor:.4g})",
                    f"Your result is the reference multiplied by {factor:.4g}: the right shape and pattern, "
                    "the wrong scale. Look for a sum where a mean is wanted (or the other way round), or a "
                    "missing or extra constant.")
    return None
