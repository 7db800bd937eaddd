"""Every lesson has the course's one shape (docs/LESSON_CONVENTIONS.md): title with the
Colab badge and 3-4 Goals, the install cell, then these headers in this order, none empty:
The idea, The technique, The app, Things to try, (Your turn), Check with the check cell,
Under the hood as the closing paragraph."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
HEADERS = ["## The idea", "## The technique", "## The app", "## Things to try", "## Your turn", "## Check",
           "## Under the hood"]
OPTIONAL = {"## Your turn"}  # lesson 00 has no exercise
# The lessons given this shape so far (issue 14, and lesson 13 from the start); lessons
# 10-12 join when theirs lands.
SHAPED = [f"{i:02d}" for i in range(10)] + ["13", "14", "15"]
LESSONS = [p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) if p.name[:2] in SHAPED]


def _sections(nb) -> list[tuple[str, list]]:
    """(header, cells under it) for every level-2 header, in order."""
    sections: list[tuple[str, list]] = []
    for cell in nb.cells:
        lines = cell.source.splitlines() if cell.cell_type == "markdown" else []
        heads = [i for i, line in enumerate(lines) if line.startswith("## ")]
        if not heads:
            if sections:
                sections[-1][1].append(cell.source)
            continue
        if heads[0] > 0 and sections:
            sections[-1][1].append("\n".join(lines[:heads[0]]))
        for k, i in enumerate(heads):
            end = heads[k + 1] if k + 1 < len(heads) else len(lines)
            body = "\n".join(lines[i + 1:end]).strip()
            sections.append((lines[i].strip(), [body] if body else []))
    return sections


def test_the_shaped_lessons_are_there():
    assert [p.name[:2] for p in LESSONS] == SHAPED


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_has_the_one_shape(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0].source
    assert re.match(rf"# {path.name[:2]} · \S", first), f"{path.name}: title must be '# NN · Title'"
    assert "colab-badge.svg" in first and "**Goals**" in first, f"{path.name}: badge and Goals"
    goals = first.split("**Goals**", 1)[1].strip().splitlines()
    assert 3 <= sum(line.startswith("- ") for line in goals) <= 4, f"{path.name}: 3-4 goals"
    assert '"google.colab" in sys.modules' in nb.cells[1].source, f"{path.name}: the install cell comes second"

    sections = _sections(nb)
    names = [h for h, _ in sections]
    assert names == [h for h in HEADERS if h in names], f"{path.name}: headers {names}"
    missing = [h for h in HEADERS if h not in names and h not in OPTIONAL]
    assert not missing, f"{path.name}: missing {missing}"
    for header, body in sections:
        assert any(b.strip() for b in body), f"{path.name}: '{header}' is empty"

    checks = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("# Check")]
    assert checks, f"{path.name}: no '# Check:' cell"
    check_at = names.index("## Check")
    assert all(c.source in sections[check_at][1] for c in checks), f"{path.name}: check cells belong under ## Check"
    last = nb.cells[-1]
    assert last.cell_type == "markdown" and last.source.startswith("## Under the hood"), \
        f"{path.name}: 'Under the hood' closes the lesson"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_the_idea_cites_its_papers_with_a_link(path):
    nb = nbformat.read(path, as_version=4)
    idea = next(body for header, body in _sections(nb) if header == "## The idea")
    text = "\n".join(idea)
    assert re.search(r"\b(19|20)\d\d\b", text), f"{path.name}: the idea cites no paper with its year"
    assert "https://" in text, f"{path.name}: the idea links no paper"


# The guides (issue 27's `your_network`) are not lessons: no number, no exercise, no paper of
# their own to cite in the idea; they keep the rest of the one shape.
GUIDES = sorted(p for p in (ROOT / "notebooks").glob("[a-z]*.ipynb"))


def test_the_guides_are_there():
    assert [p.name for p in GUIDES] == ["your_network.ipynb"]


@pytest.mark.parametrize("path", GUIDES, ids=lambda p: p.name)
def test_a_guide_has_the_lesson_shape_where_it_fits(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0].source
    assert re.match(r"# [A-Z]", first) and "colab-badge.svg" in first and path.name in first, path.name
    goals = first.split("**Goals**", 1)[1].strip().splitlines()
    assert 3 <= sum(line.startswith("- ") for line in goals) <= 4, f"{path.name}: 3-4 goals"
    assert '"google.colab" in sys.modules' in nb.cells[1].source, f"{path.name}: the install cell comes second"
    names = [h for h, _ in _sections(nb)]
    assert names == [h for h in HEADERS if h != "## Your turn"], f"{path.name}: headers {names}"
    checks = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("# Check")]
    assert checks and all("assert" in c.source for c in checks), f"{path.name}: a check cell that asserts"
    assert nb.cells[-1].source.startswith("## Under the hood")
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "stored without outputs"
