"""What `check` says about one exercise (`CheckResult`), and the two signals a checker uses
to end a case early: `failure(...)` (a problem with a name) and `Candidates` (the answer is
what some known mistakes give)."""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field

__all__ = ["CheckResult", "ExerciseFailed", "grading_mode", "PASSED", "FAILED", "NOT_DONE", "Stop", "Candidates", "failure"]


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


class Stop(Exception):
    """Ends a check early with a result (never leaves `Checker.run`)."""

    def __init__(self, status: str, key: str, title: str, message: str):
        super().__init__(message)
        self.status, self.key, self.title, self.message = status, key, title, message


class Candidates(Exception):
    """The answer is what these known mistakes (keys, in the checker's order) give."""

    def __init__(self, keys: list[str]):
        super().__init__(", ".join(keys))
        self.keys = keys


def failure(key: str, title: str, message: str) -> Stop:
    return Stop(FAILED, key, title, message)

