"""What `check` says about one exercise (`CheckResult`), and the two signals a checker uses
to end a case early: `failure(...)` (a problem with a name) and `Candidates` (the answer is
what some known mistakes give).

A `CheckResult` is also a number: the points earned, ``points * (inputs right / inputs
tried)``. Its plain-text form is only that number, which is what nbgrader's autograder
reads from a grade cell's last value as partial credit; the notebook shows the feedback
(its HTML form) instead. `str(result)` is the feedback as text.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

__all__ = ["CheckResult", "CaseOutcome", "PASSED", "FAILED", "NOT_DONE", "Stop", "Candidates", "failure"]


# --- the result ---------------------------------------------------------------------------

PASSED, FAILED, NOT_DONE = "passed", "failed", "not done"


@dataclass(frozen=True)
class CaseOutcome:
    """How the learner's function did on one input: `passed`, or the `diagnosis` key and
    `title` of what was wrong there."""

    label: str
    passed: bool
    diagnosis: str | None = None
    title: str = ""


class CheckResult(float):
    """What `check` says about one exercise; as a float, the points earned.

    `passed`: every case agreed with the reference and nothing was left changed.
    `status`: "passed", "failed" or "not done" (the stub still raises NotImplementedError).
    `score`: the share of the inputs answered right (0 to 1); `points`: what the exercise
    is worth; ``float(result)`` = score * points, rounded to 0.01.
    `diagnosis`: the key of the named mistake on the first input that went wrong (e.g.
    ``"no_abs"``), or of a generic problem (``"shape"``, ``"raised"``, ``"changed_model"``,
    ...); None when it passed. `message`: its explanation, in plain text. `case`: that
    input. `outcomes`: one `CaseOutcome` per input. `notes`: remarks that do not change the
    score (warnings and error-stream output caught during the check among them).
    """

    def __new__(cls, name: str, status: str, message: str, diagnosis: str | None = None, title: str = "",
                case: str | None = None, notes: list[str] | None = None, *, outcomes=(), points: float = 1.0):
        outcomes = tuple(outcomes)
        if status == NOT_DONE or not outcomes:
            score = 1.0 if status == PASSED else 0.0
        else:
            score = sum(o.passed for o in outcomes) / len(outcomes)
        self = super().__new__(cls, round(score * float(points), 2))
        self.name, self.status, self.message, self.diagnosis = name, status, message, diagnosis
        self.title, self.case, self.notes = title, case, list(notes or [])
        self.outcomes, self.points, self.score = outcomes, float(points), score
        return self

    def __getnewargs_ex__(self):
        return ((self.name, self.status, self.message, self.diagnosis, self.title, self.case, self.notes),
                {"outcomes": self.outcomes, "points": self.points})

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def __bool__(self) -> bool:
        return self.passed

    def summary(self) -> str:
        mark = {PASSED: "✓", FAILED: "✗", NOT_DONE: "…"}[self.status]
        head = f"{mark} {self.name}: {self.title}" if self.title else f"{mark} {self.name}"
        return head

    def score_line(self) -> str:
        right = sum(o.passed for o in self.outcomes)
        inputs = f"{right} of {len(self.outcomes)} inputs right: " if self.outcomes else ""
        return f"Score: {inputs}{float(self):g} of {self.points:g} point{'s' if self.points != 1 else ''}."

    def case_lines(self) -> list[str]:
        """One line per input, when some went wrong (all right: the message says so)."""
        if self.passed or len(self.outcomes) < 2:
            return []
        return [f"{'✓' if o.passed else '✗'} input {i}: {o.label}" + ("" if o.passed else f": {o.title}")
                for i, o in enumerate(self.outcomes, 1)]

    def __str__(self) -> str:
        lines = [self.summary(), self.message]
        if self.case and self.status == FAILED:
            lines.append(f"Input: {self.case}.")
        lines += self.case_lines()
        lines += [f"Note: {n}" for n in self.notes]
        lines.append(self.score_line())
        return "\n".join(line for line in lines if line)

    def __repr__(self) -> str:
        # The number alone: nbgrader reads a grade cell's plain-text value as its partial credit.
        return f"{float(self):g}"

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(repr(self))

    def _repr_html_(self) -> str:
        colour = {PASSED: "#1a7f37", FAILED: "#cf222e", NOT_DONE: "#6e7781"}[self.status]
        grey = "margin:4px 0;color:#57606a"
        paragraphs = [f"<div style='font-weight:bold;color:{colour}'>{html.escape(self.summary())}</div>"]
        for block in self.message.split("\n\n"):
            if block.startswith("    ") or block.startswith("`"):
                paragraphs.append(f"<pre style='margin:4px 0'>{html.escape(block.strip())}</pre>")
            elif block.strip():
                paragraphs.append(f"<div style='margin:4px 0'>{html.escape(block)}</div>")
        if self.case and self.status == FAILED:
            paragraphs.append(f"<div style='{grey}'>Input: {html.escape(self.case)}.</div>")
        lines = self.case_lines()
        if lines:
            paragraphs.append(f"<div style='{grey}'>{'<br>'.join(html.escape(line) for line in lines)}</div>")
        for note in self.notes:
            paragraphs.append(f"<div style='{grey}'>Note: {html.escape(note)}</div>")
        paragraphs.append(f"<div style='margin:4px 0;font-weight:bold'>{html.escape(self.score_line())}</div>")
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

