"""Plain English (#24): the lessons' sentences, measured by docs/readability.py."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("readability", ROOT / "docs" / "readability.py")
readability = importlib.util.module_from_spec(_spec)
sys.modules["readability"] = readability  # dataclasses look their module up
_spec.loader.exec_module(readability)

LESSONS = readability.lessons()
# Names coined by the course that a learner cannot look up (#24); the plain words are in
# docs/LESSON_CONVENTIONS.md.
COINED = [r"\bthe maker\b", r"\bthe judge\b", r"\btwin question\b", r"\bare awake\b", r"\bis the door\b"]


def test_sentences_split_where_a_reader_stops():
    text = ("The map is noisy. Simonyan et al. (2014) took the maximum, e.g. over colours. "
            "A. Mahendran wrote it. Call `saliency(net, image)` and read $x_{i,j}$ as one pixel!\n\n"
            "- a list item\n- another one\n\n# A heading\n\n```python\nx = 1. + 2.\n```\n\n> A quote. Two.")
    sentences = readability.prose(text)
    assert sentences == ["The map is noisy.", "Simonyan et al. (2014) took the maximum, e.g. over colours.",
                         "A. Mahendran wrote it.", "Call X1 and read X1 as one pixel!", "a list item", "another one"]
    assert [readability.words(s) for s in sentences] == [4, 10, 4, 8, 3, 2]


def test_a_long_sentence_is_reported():
    r = readability.Report("x", ["one two three", " ".join(["word"] * 40)])
    assert r.longest == 40 and r.longer_than(35) == [r.sentences[1]] and not r.meets_aim


def test_every_lesson_is_measured():
    assert len(LESSONS) >= 14
    for nb in LESSONS:
        assert len(readability.report(nb).sentences) > 20, nb.name


# Lessons the plain-English pass of #24 has not reached yet. Strict: a lesson that meets
# the aim fails here until it leaves this list, and one off the list must meet it.
PENDING = {
           "08_guided_backprop",
           "09_gradient_ascent", "10_fooling_images",
           "13_comparing_attributions"}
COINED_PENDING = {"09_gradient_ascent", "10_fooling_images"}


def _marked(nb: Path, pending: set[str], reason: str):
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if nb.stem in pending else []
    return pytest.param(nb, marks=marks, id=nb.stem)


@pytest.mark.parametrize("nb", [_marked(nb, PENDING, "plain-English pass pending (#24)") for nb in LESSONS])
def test_lesson_sentences_are_short(nb):
    r = readability.report(nb)
    assert r.median < readability.AIM_MEDIAN and r.longest <= readability.AIM_LONGEST, \
        f"{nb.name}: median {r.median}, longest {r.longest}; longer than 35:\n" + "\n".join(r.longer_than(35))


def _markdown(nb: Path) -> str:
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


@pytest.mark.parametrize("nb", [_marked(nb, COINED_PENDING, "coined terms (#24)") for nb in LESSONS])
def test_no_coined_names(nb):
    found = [p for p in COINED if re.search(p, _markdown(nb), re.I)]
    assert not found
