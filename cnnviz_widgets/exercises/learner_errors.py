"""Telling a learner what went wrong when their function raised: the learner's own line
(found in the traceback), a hint for the common autograd errors, and whether the function
is still nbgrader's stub ("not done yet" rather than an error)."""

from __future__ import annotations

import ast
import inspect
import os
import textwrap
import traceback
from typing import Callable

__all__ = ["learner_frame", "ERROR_HINTS", "describe_exception", "is_not_done", "is_stub"]


def learner_frame(exc: BaseException, fn: Callable) -> traceback.FrameSummary | None:
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


ERROR_HINTS = (
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


def describe_exception(exc: BaseException, fn: Callable, fn_name: str) -> str:
    kind = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    lines = [f"`{fn_name}` raised {kind}{': ' + text if text else ''}"]
    frame = learner_frame(exc, fn)
    if frame is not None:
        source = (frame.line or "").strip()
        lines.append(f"in `{frame.name}`, line {frame.lineno} of its cell:" + (f"\n\n    {source}" if source else ""))
    for needle, hint in ERROR_HINTS:
        if needle in str(exc) or needle == kind:
            lines.append(f"\n\nHint: {hint}")
            break
    return " ".join(lines[:1]) + ("\n" + "".join(lines[1:]) if len(lines) > 1 else "")


def is_not_done(exc: BaseException, fn: Callable) -> bool:
    """A stub: NotImplementedError raised by the learner's function itself."""
    if not isinstance(exc, NotImplementedError):
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    code = getattr(fn, "__code__", None)
    return bool(frames) and code is not None and frames[-1].filename == code.co_filename


def is_stub(fn: Callable) -> bool:
    """The function's body is still only (a docstring and) `raise NotImplementedError(...)`:
    say "not done yet" without building any input."""
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

