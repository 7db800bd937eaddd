"""The course website the site tests look at, and how to read its pages.

`.ci/run` builds the site once (``bash docs/build.sh DIR``, its time reported) and sets
``CNNVIZ_SITE_DIR=DIR``; the tests check that build. Without it (a plain ``pytest``), the
first test that needs the site builds it here, once per session, in quick mode.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD_REPORT = ".cnnviz-build.json"
LESSONS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
GUIDES = sorted((REPO / "docs").glob("*.md"))

_built: dict = {}  # one build per test session: path, seconds, mode


def docs_tools_missing() -> str | None:
    for module in ("sphinx", "myst_nb", "sphinx_book_theme", "bs4"):
        try:
            __import__(module)
        except ImportError:
            return module
    return None


def built_site(tmp_path_factory) -> Path:
    given = os.environ.get("CNNVIZ_SITE_DIR", "")
    if given:
        path = Path(given)
        if not (path / BUILD_REPORT).is_file():
            pytest.fail(f"CNNVIZ_SITE_DIR={given} holds no site build (no {BUILD_REPORT}); "
                        f"build one with: bash docs/build.sh {given}", pytrace=False)
        return path
    if "path" not in _built:
        missing = docs_tools_missing()
        if missing:
            pytest.fail(f"the site tests need the docs tools ({missing} is missing): "
                        'pip install -e ".[test]" (or ".[docs]")', pytrace=False)
        out = tmp_path_factory.mktemp("site") / "html"
        env = dict(os.environ, CNNVIZ_QUICK="1", PYTHON=sys.executable)
        started = time.monotonic()
        proc = subprocess.run(["bash", str(REPO / "docs" / "build.sh"), str(out)], env=env, cwd=REPO,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.fail(f"bash docs/build.sh failed (exit {proc.returncode}):\n"
                        f"{(proc.stdout + proc.stderr)[-6000:]}", pytrace=False)
        _built.update(path=out, seconds=time.monotonic() - started, mode="quick")
    return _built["path"]


def build_summary() -> str | None:
    """A line for pytest's summary when this session built the site."""
    if "path" not in _built:
        return None
    return f"site: built by the tests in {_built['seconds']:.0f} s ({_built['mode']} mode) at {_built['path']}"


def page_of(lesson: Path) -> str:
    """The site path of a lesson's page: lesson 00 is the index."""
    return "index.html" if lesson.name.startswith("00_") else f"notebooks/{lesson.stem}.html"


def soup(path: Path):
    from bs4 import BeautifulSoup

    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def article(page):
    """The page's own content (what the lesson says), without the theme's navigation."""
    return page.find("article") or page.find("main") or page


def is_remote(url: str) -> bool:
    return bool(re.match(r"^(https?:)?//", url))


def local_target(site: Path, page_path: Path, url: str) -> tuple[Path, str]:
    """The file (and #fragment) a relative URL on `page_path` points at."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    target = (page_path.parent / path).resolve() if path else page_path
    if target.is_dir():
        target = target / "index.html"
    return target, parts.fragment


def decode_image(site: Path, page_path: Path, src: str):
    """A PIL image of what an <img src> shows; raises if it is missing or unreadable."""
    from PIL import Image

    if src.startswith("data:"):
        header, _, payload = src.partition(",")
        data = base64.b64decode(payload) if ";base64" in header else unquote(payload).encode()
        if "svg" in header:
            assert b"<svg" in data, src[:60]
            return None
        return Image.open(io.BytesIO(data))
    target, _ = local_target(site, page_path, src)
    assert target.is_file(), f"{page_path.relative_to(site)}: image {src} is missing"
    assert site in target.parents, f"{page_path.relative_to(site)}: image {src} lies outside the site"
    if target.suffix.lower() == ".svg":
        assert b"<svg" in target.read_bytes()[:2000], src
        return None
    image = Image.open(target)
    image.load()
    return image


def report(site: Path) -> dict:
    return json.loads((site / BUILD_REPORT).read_text())
