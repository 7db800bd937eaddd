"""The registry of the course's techniques: one entry per lesson, its verb and its
``_iter`` twin, derived from the course table (`cnnviz_widgets.course`, which names the
verbs by import path: the table is the one place a technique is added).

`TECHNIQUES` maps a lesson number (``"07"``) to a `Technique`; a lesson with several
techniques has one entry each, lettered (``"13a"`` Grad-CAM, ``"13b"`` Guided Grad-CAM,
``"13c"`` Integrated Gradients; ``"14a"`` texture synthesis, ``"14b"`` style transfer). It is what the contract
test (``tests/test_contract.py``) walks: every technique is called in the one dialect
of ``docs/ARCHITECTURE.md`` (the `image` argument, an ``_iter`` twin with
`should_stop` for anything that can take long, numpy integers accepted, a dataclass
result, the model restored after every call, also when it raises), so a new technique
joins the contract by joining this table. It also lets an index page or a test list
the course without importing every module by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..course import LESSONS, resolve

__all__ = ["Technique", "TECHNIQUES", "SUBJECTS"]

#: What a verb takes after the network: an image, a dataset, feature vectors, or nothing;
#: lesson 14's verbs take a style image (texture synthesis) or a content image and then a
#: style image (style transfer), named so.
SUBJECTS = ("image", "dataset", "features", "network", "style_image", "content_image")


@dataclass(frozen=True)
class Technique:
    """One lesson's technique.

    lesson: its number (``"07"``); part: a letter where a lesson has several techniques
    (``"a"``), the registry's key being lesson + part; notebook: its notebook's name; name: what it is called;
    verb: the call that computes it; verb_iter: its twin yielding `Progress` (None when
    the technique is one quick step, `no_iter` says why); subject: what the verb takes
    after the network (`SUBJECTS`; ``"features"`` verbs take no network); paper: where
    it comes from.
    """

    lesson: str
    notebook: str
    name: str
    verb: Callable
    verb_iter: Callable | None
    subject: str
    paper: str
    no_iter: str = ""
    part: str = ""

    @property
    def key(self) -> str:
        return self.lesson + self.part


def _registry() -> dict[str, Technique]:
    """One `Technique` per technique of the course table (`cnnviz_widgets.course`), its
    verbs imported."""
    return {t.key: t for t in (
        Technique(lesson.number, lesson.notebook, entry.name, resolve(entry.verb),
                  None if entry.verb_iter is None else resolve(entry.verb_iter), entry.subject, entry.paper,
                  entry.no_iter, entry.part)
        for lesson in LESSONS.values() for entry in lesson.techniques)}


TECHNIQUES: dict[str, Technique] = _registry()
