"""How long the lessons' sentences are: the median and the longest, per lesson.

    python docs/readability.py            # a table, lesson by lesson
    python docs/readability.py --long 35  # and every sentence longer than 35 words

The aim (issue #24, docs/LESSON_CONVENTIONS.md): a median under 18 words and no sentence over
35, for readers of English as a second language. Only the prose is counted: code blocks,
inline code and inline equations (each counts as one word), link targets, block quotes and
references (citations), tables, headings and bold labels are left out; a list item ends a sentence.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AIM_MEDIAN, AIM_LONGEST = 18, 35

_FENCE = re.compile(r"```.*?```", re.S)
_DISPLAY_MATH = re.compile(r"\$\$.*?\$\$", re.S)
_INLINE_MATH = re.compile(r"\$[^$\n]+\$")
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_HTML = re.compile(r"<[^>]+>")
# a sentence ends at . ! ? (or : before a list) followed by a space and a capital, a digit or a quote
_END = re.compile(r"(?<=[.!?])(?<!\b[A-Z]\.)\s+(?=[\"'(*A-Z0-9])")
# a reference: authors, then the year in brackets and a full stop ("A. Author (2015). Title.")
_CITATION = re.compile(r"\(\d{4}[a-z]?\)\.")
_ABBREVIATIONS = ("e.g.", "i.e.", "et al.", "etc.", "vs.", "cf.", "Fig.", "No.")


def prose(markdown: str) -> list[str]:
    """The sentences of one markdown cell."""
    text = _FENCE.sub(" ", markdown)
    text = _DISPLAY_MATH.sub(" ", text)
    text = _INLINE_MATH.sub("X1", text)      # an equation in a sentence reads as one word
    text = _INLINE_CODE.sub("X1", text)
    text = _LINK.sub(r"\1", text)
    text = _HTML.sub(" ", text)
    units, paragraph = [], []
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith(">") or stripped.startswith("|"):
            continue                         # citations and tables
        if not stripped or stripped.startswith("#") or re.match(r"^([-*+]|\d+\.)\s", stripped):
            if paragraph:
                units.append(" ".join(paragraph))
            paragraph = []
            if stripped and not stripped.startswith("#"):  # a heading is a title, not a sentence
                paragraph = [re.sub(r"^([-*+]|\d+\.)\s+", "", stripped)]
            continue
        paragraph.append(stripped)
    if paragraph:
        units.append(" ".join(paragraph))
    sentences = []
    for unit in units:
        if _CITATION.search(unit) or re.fullmatch(r"\*\*[^*]+\*\*:?", unit.strip()):
            continue                         # a reference, or a bold label such as **Goals**
        protected = unit
        for i, abbreviation in enumerate(_ABBREVIATIONS):
            protected = protected.replace(abbreviation, f"\0{i}\0")
        for piece in _END.split(protected):
            for i, abbreviation in enumerate(_ABBREVIATIONS):
                piece = piece.replace(f"\0{i}\0", abbreviation)
            if words(piece):
                sentences.append(piece.strip())
    return sentences


def words(sentence: str) -> int:
    # "e.g." and "1.5" are one word each
    return len(re.findall(r"[A-Za-z0-9\u00C0-\uFFFF](?:[\w'’\-\u00C0-\uFFFF]|\.(?=\w))*", sentence))


@dataclass
class Report:
    """One lesson's `sentences` and their word counts: `median`, `longest`."""
    lesson: str
    sentences: list[str]

    @property
    def counts(self) -> list[int]:
        return [words(s) for s in self.sentences]

    @property
    def median(self) -> float:
        return statistics.median(self.counts) if self.sentences else 0.0

    @property
    def longest(self) -> int:
        return max(self.counts, default=0)

    def longer_than(self, n: int) -> list[str]:
        return [s for s in self.sentences if words(s) > n]

    @property
    def meets_aim(self) -> bool:
        return self.median < AIM_MEDIAN and self.longest <= AIM_LONGEST


def report(notebook: Path) -> Report:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    sentences = [s for c in cells if c["cell_type"] == "markdown" for s in prose("".join(c["source"]))]
    return Report(notebook.stem, sentences)


def lessons(folder: Path = ROOT / "notebooks") -> list[Path]:
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--long", type=int, default=None, help="also list the sentences longer than this")
    a = p.parse_args(argv)
    print(f"{'lesson':32} {'sentences':>9} {'median':>6} {'longest':>7} {'> 35':>5}  aim")
    for nb in lessons():
        r = report(nb)
        print(f"{r.lesson:32} {len(r.sentences):9d} {r.median:6.1f} {r.longest:7d} "
              f"{len(r.longer_than(AIM_LONGEST)):5d}  {'yes' if r.meets_aim else 'no'}")
        if a.long is not None:
            for s in r.longer_than(a.long):
                print(f"    ({words(s)}) {s}")


if __name__ == "__main__":
    main()
