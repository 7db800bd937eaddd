"""The course website (`bash docs/build.sh OUTDIR`): every lesson has a page with pictures,
nothing on a page is broken or fetched from the network, the launch buttons open the
page's own notebook, apps are captioned stills.

The page checks look at the build `.ci/run` made ($CNNVIZ_SITE_DIR) or build the site once
in quick mode (tests/site_build.py). The build-pipeline tests at the end build tiny sites
from a made-up repository: a failing lesson fails the build, unchanged lessons come from
the cache, links are fixed or reported.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.site_build import (BUILD_REPORT, GUIDES, LESSONS, REPO, article, decode_image, docs_tools_missing,
                              is_remote, local_target, page_of, report, soup)

pytestmark = pytest.mark.site


@pytest.fixture(scope="module")
def site(built_site) -> Path:
    return built_site


def all_pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.parts)


def notebook_title(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        m = re.search(r"^# (.+)$", cell.source, re.M) if cell.cell_type == "markdown" else None
        if m:
            return m.group(1).strip()
    raise AssertionError(f"{path.name} has no title")


def text_of(tag) -> str:
    return re.sub(r"\s+", " ", tag.get_text(" ")).strip().rstrip("#¶").strip()


def readme_launch_patterns() -> dict[str, str]:
    """The README's Binder and Colab badge links, with the lesson's file name as {name}."""
    readme = (REPO / "README.md").read_text()
    found = {}
    for kind, host in (("binder", r"mybinder\.org"), ("colab", r"colab\.research\.google\.com")):
        urls = re.findall(rf"\]\((https://{host}/[^)\s]+)\)", readme)
        urls = [u for u in urls if u.endswith("/00_start_here.ipynb")]
        assert urls, f"the README has no {kind} badge opening lesson 00"
        found[kind] = urls[0].replace("00_start_here.ipynb", "{name}")
    return found


# -- pages of the site that was built ------------------------------------------------------

def test_the_build_executed_every_lesson_and_says_in_which_mode(site):
    info = report(site)
    assert info["mode"] in ("full", "quick")
    assert len(info["executions"]) == len(LESSONS), sorted(info["executions"])
    assert all(e["succeeded"] for e in info["executions"].values()), info["executions"]


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_every_lesson_has_a_page_with_its_title_and_a_picture(site, lesson):
    page_path = site / page_of(lesson)
    assert page_path.is_file(), f"no page for {lesson.name} (expected {page_of(lesson)})"
    page = soup(page_path)
    h1 = article(page).find("h1")
    assert h1 is not None and text_of(h1) == notebook_title(lesson), (text_of(h1) if h1 else None)
    pictures = [img for img in article(page).find_all("img") if decode_image(site, page_path, img["src"])]
    assert pictures, f"{page_of(lesson)} shows no picture"
    # a lesson's printed output is on its page too (every lesson prints something)
    nb = nbformat.read(lesson, as_version=4)
    if any("print(" in c.source for c in nb.cells if c.cell_type == "code"):
        assert article(page).select("div.cell_output pre, div.output pre"), f"{page_of(lesson)}: no printed output"


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.stem)
def test_every_guide_has_a_page(site, guide):
    page_path = site / "docs" / f"{guide.stem}.html"
    assert page_path.is_file(), f"no page for docs/{guide.name}"
    title = re.search(r"^# (.+)$", guide.read_text(), re.M)
    if title:
        assert text_of(article(soup(page_path)).find("h1")) == re.sub(r"[`*_]", "", title.group(1)).strip()


def test_the_sidebar_lists_every_lesson_and_guide_in_order(site):
    nav = soup(site / "index.html").select_one("nav.bd-docs-nav, nav#bd-docs-nav, .bd-sidebar-primary nav")
    assert nav is not None, "the index has no sidebar navigation"
    hrefs = [a["href"].split("#")[0] for a in nav.find_all("a", href=True)]
    wanted = [page_of(p) for p in LESSONS[1:]]
    assert [h for h in hrefs if h.startswith("notebooks/")] == wanted
    assert {f"docs/{g.stem}.html" for g in GUIDES} <= set(hrefs)


def test_no_image_is_broken_missing_or_remote(site):
    for page_path in all_pages(site):
        for img in soup(page_path).find_all("img"):
            src = img.get("src", "")
            assert src and not is_remote(src), f"{page_path.relative_to(site)}: image {src!r} is not in the site"
            decode_image(site, page_path, src)


def test_no_internal_link_is_broken(site):
    ids: dict[Path, set[str]] = {}
    for page_path in all_pages(site):
        for a in soup(page_path).find_all("a", href=True):
            href = a["href"]
            if is_remote(href) or href.startswith(("mailto:", "javascript:")):
                continue
            target, fragment = local_target(site, page_path, href)
            where = f"{page_path.relative_to(site)}: link {href!r}"
            assert target.exists(), f"{where} points at nothing"
            assert site in target.parents or target == site, f"{where} leaves the site"
            if fragment and target.suffix == ".html":
                if target not in ids:
                    ids[target] = {t["id"] for t in soup(target).find_all(id=True)}
                assert fragment in ids[target], f"{where}: no #{fragment} on that page"


def test_pages_need_nothing_from_the_network(site):
    for page_path in all_pages(site):
        page = soup(page_path)
        where = page_path.relative_to(site)
        for tag in page.find_all("script", src=True):
            assert not is_remote(tag["src"]), f"{where} loads a script from {tag['src']}"
            assert local_target(site, page_path, tag["src"])[0].is_file(), f"{where}: {tag['src']} is missing"
        for tag in page.find_all("link", href=True):
            rel = " ".join(tag.get("rel", []))
            if any(r in rel for r in ("stylesheet", "preload", "icon", "modulepreload")):
                assert not is_remote(tag["href"]), f"{where} loads {tag['href']}"
        assert "application/vnd.jupyter.widget-state+json" not in str(page), f"{where} embeds widget state"
    for css in (site / "_static").rglob("*.css"):
        remote = re.findall(r"""(?:@import|url\()\s*["']?(https?://[^"')\s]+)""", css.read_text(errors="replace"))
        assert not remote, f"{css.relative_to(site)} fetches {remote}"


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_launch_buttons_open_this_lessons_notebook(site, lesson):
    patterns = readme_launch_patterns()
    page = article(soup(site / page_of(lesson)))
    for kind in ("binder", "colab"):
        links = [a["href"] for a in page.select(f"a.cnnviz-launch-{kind}")]
        assert links == [patterns[kind].format(name=lesson.name)], (kind, links)
    # the lesson's own remote Colab badge is replaced (its picture would be broken offline)
    assert not page.select('img[src*="colab-badge"]')


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_every_app_on_a_page_is_a_captioned_still(site, lesson):
    nb = nbformat.read(lesson, as_version=4)
    shows_app = [c for c in nb.cells if c.cell_type == "code" and re.search(r"\w+App\(", c.source)]
    page_path = site / page_of(lesson)
    page = article(soup(page_path))
    assert "application/vnd.jupyter.widget-view+json" not in str(page), \
        f"{page_of(lesson)} has a widget view (an empty box without a kernel): give it a still_bundle()"
    stills = page.select("figure.cnnviz-app-still")
    assert len(stills) >= (1 if shows_app else 0), f"{page_of(lesson)}: the app is not shown as a still"
    for still in stills:
        assert "live in Jupyter" in text_of(still.find("figcaption"))
        assert not still.select(".cnnviz-error"), f"{page_of(lesson)}: the app shows an error: {text_of(still)}"
        img = still.find("img")
        assert img is not None, f"{page_of(lesson)}: the app's still has no picture"
        picture = decode_image(site, page_path, img["src"]).convert("L")
        lo, hi = picture.getextrema()
        assert hi > lo, f"{page_of(lesson)}: the app's still is a blank picture"


def _has_math(markdown: str) -> bool:
    prose = re.sub(r"`[^`]*`", "", re.sub(r"```.*?```", "", markdown, flags=re.S))
    return bool(re.search(r"\$\$.+?\$\$|\$[^\s$][^$\n]*?[^\s$]\$|\$[^\s$]\$", prose, re.S))


def _prose(tag) -> str:
    """A paragraph's text without its equations and code: what is left of a $ is a
    dollar sign MyST did not take for math."""
    import copy

    tag = copy.copy(tag)
    for inner in tag.select(".math, code, pre, script"):
        inner.decompose()
    return tag.get_text()


def test_math_is_typeset_by_the_bundled_mathjax(site):
    bundled = site / "_static" / "mathjax" / "tex-svg-full.js"
    assert bundled.is_file() and bundled.stat().st_size > 1_000_000
    for lesson in LESSONS:
        nb = nbformat.read(lesson, as_version=4)
        page = soup(site / page_of(lesson))
        scripts = [s["src"].split("?")[0] for s in page.find_all("script", src=True) if "mathjax" in s["src"].lower()]
        assert all(s.endswith("_static/mathjax/tex-svg-full.js") for s in scripts), scripts
        if any(_has_math(c.source) for c in nb.cells if c.cell_type == "markdown"):
            assert article(page).select(".math"), f"{page_of(lesson)}: its equations are not math on the page"
            assert scripts, f"{page_of(lesson)} has equations but does not load MathJax"
            for paragraph in article(page).find_all(["p", "li"]):
                assert "$" not in _prose(paragraph), f"{page_of(lesson)}: a stray $ in {text_of(paragraph)}"


# -- staging: links, badges, tags (no build) ---------------------------------------------

def _build_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("cnnviz_site_build", REPO / "docs" / "site" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_staging_fixes_links_for_each_pages_new_place(tmp_path):
    site_build = _build_module()
    root = tmp_path / "repo"
    _tiny_repo(root)
    (root / "README.md").write_text("# readme\n")
    stager = site_build.Stager(root, tmp_path / "src")
    fix = stager.fix_links
    # lesson 00 moves to the root as the index: its links to lessons gain notebooks/
    assert fix("[one](01_one.ipynb#goals)", "notebooks/00_start_here.ipynb", "index.ipynb") == \
        "[one](notebooks/01_one.ipynb#goals)"
    assert fix("[start](00_start_here.ipynb)", "notebooks/01_one.ipynb", "notebooks/01_one.ipynb") == \
        "[start](../index.ipynb)"
    # a repository file that is no page opens on GitHub (a folder as a tree)
    assert fix("[r](../README.md) [n](../notebooks)", "docs/GUIDE.md", "docs/GUIDE.md") == (
        f"[r](https://github.com/{site_build.REPOSITORY}/blob/main/README.md) "
        f"[n](https://github.com/{site_build.REPOSITORY}/tree/main/notebooks)")
    # an image beside a page is copied along; HTML attributes are fixed like markdown links
    assert fix('<img src="img/figure.png">', "docs/GUIDE.md", "docs/GUIDE.md") == '<img src="img/figure.png">'
    assert (tmp_path / "src" / "docs" / "img" / "figure.png").is_file()
    assert fix("![f](../docs/img/figure.png)", "notebooks/00_start_here.ipynb", "index.ipynb") == \
        "![f](docs/img/figure.png)"
    # left alone: the web, anchors, code, and links to nothing (Sphinx reports those)
    for text in ("[w](https://example.org/a.md)", "[a](#goals)", "`[c](../README.md)`",
                 "```\n[c](../README.md)\n```", "[m](missing.ipynb)"):
        assert fix(text, "notebooks/01_one.ipynb", "notebooks/01_one.ipynb") == text


def test_staged_lessons_get_launch_buttons_a_sidebar_and_tags(tmp_path):
    site_build = _build_module()
    root = tmp_path / "repo"
    _tiny_repo(root)
    nb = nbformat.read(root / "notebooks" / "01_one.ipynb", as_version=4)
    nb.cells.insert(1, nbformat.v4.new_code_cell(
        '# On Colab, install the kit first\nimport sys\nif "google.colab" in sys.modules:\n    %pip install x'))
    nb.cells.append(nbformat.v4.new_code_cell("raise ValueError  # NBVAL_RAISES_EXCEPTION"))
    nb.cells.append(nbformat.v4.new_code_cell("slow()", metadata={"tags": ["nbval-skip"]}))
    nbformat.write(nb, root / "notebooks" / "01_one.ipynb")
    src = tmp_path / "src"
    site_build.Stager(root, src).stage()

    assert sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()) == [
        "docs/GUIDE.md", "docs/img/figure.png", "index.ipynb", "notebooks/01_one.ipynb"]
    one = nbformat.read(src / "notebooks" / "01_one.ipynb", as_version=4)
    title = one.cells[0].source
    assert "colab-badge.svg" not in title
    assert title.index("# 01 · One") < title.index('class="cnnviz-launch"')
    assert site_build.launch_urls("notebooks/01_one.ipynb")["binder"] in title
    tags = [c.metadata.get("tags", []) for c in one.cells if c.cell_type == "code"]
    assert tags[0] == ["remove-cell"] and "raises-exception" in tags[-2] and "skip-execution" in tags[-1]
    index = nbformat.read(src / "index.ipynb", as_version=4)
    toctree = index.cells[-1].source
    assert ":caption: Lessons" in toctree and "\nself\nnotebooks/01_one\n" in toctree
    assert ":caption: Guides" in toctree and "docs/GUIDE" in toctree


def test_the_outdir_must_be_empty_new_or_an_earlier_site(tmp_path):
    site_build = _build_module()
    site_build.check_outdir(tmp_path / "new")
    site_build.check_outdir(tmp_path)  # empty
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match="not empty"):
        site_build.check_outdir(tmp_path)
    (tmp_path / BUILD_REPORT).write_text("{}")
    site_build.check_outdir(tmp_path)


def test_readme_says_how_to_build_the_site():
    readme = (REPO / "README.md").read_text()
    assert "bash docs/build.sh" in readme and 'pip install -e ".[docs]"' in readme
    assert os.access(REPO / "docs" / "build.sh", os.X_OK)


# -- the build pipeline, on a tiny made-up repository ----------------------------------------

def _notebook(path: Path, title: str, markdown: str, code: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    badge = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
             f"(https://colab.research.google.com/github/{_build_module().REPOSITORY}/blob/main/notebooks/{path.name})")
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\n{badge}\n\n{markdown}"),
                nbformat.v4.new_code_cell(code)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def _tiny_repo(root: Path) -> None:
    _notebook(root / "notebooks" / "00_start_here.ipynb", "00 · Start",
              "Go on with [lesson one](01_one.ipynb) or read [the guide](../docs/GUIDE.md#a-section).",
              "print('hello from lesson 00')")
    _notebook(root / "notebooks" / "01_one.ipynb", "01 · One",
              "The score is $S_c(x) = w^\\top x + b$, and\n\n$$\\frac{\\partial S_c}{\\partial x} = w.$$\n\n"
              "Within a paragraph, as Jupyter allows: $$\\lVert w \\rVert_2 > 0$$ still an equation.\n\n"
              "Back to [the start](00_start_here.ipynb).",
              "import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nplt.show()\nprint('x' * 3)")
    (root / "docs" / "img").mkdir(parents=True)
    (root / "docs" / "GUIDE.md").write_text(
        "# A guide\n\n## A section\n\nSee [the first lesson](../notebooks/00_start_here.ipynb), "
        "[the settings](../pyproject.toml) and ![a figure](img/figure.png).\n")
    from PIL import Image

    Image.new("RGB", (8, 8), (200, 30, 30)).save(root / "docs" / "img" / "figure.png")
    (root / "pyproject.toml").write_text("[project]\nname = 'tiny'\n")


def _build(root: Path, work: Path, out: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, CNNVIZ_QUICK="1")
    env.pop("CNNVIZ_SITE_CACHE", None)
    return subprocess.run([sys.executable, str(REPO / "docs" / "site" / "build.py"), str(out), "--root", str(root),
                           "--work", str(work)], env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    missing = docs_tools_missing()
    if missing:
        pytest.fail(f"the site tests need the docs tools ({missing} is missing): pip install -e \".[test]\"")
    base = tmp_path_factory.mktemp("tiny-site")
    root, work, out = base / "repo", base / "work", base / "out"
    _tiny_repo(root)
    first = _build(root, work, out)
    assert first.returncode == 0, (first.stdout + first.stderr)[-5000:]
    return root, work, out, json.loads((out / BUILD_REPORT).read_text())


def test_build_stages_pages_fixes_links_and_typesets_math(tiny):
    root, work, out, first = tiny
    assert {d for d, e in first["executions"].items() if e["executed"]} == {"index", "notebooks/01_one"}
    index, one, guide = soup(out / "index.html"), soup(out / "notebooks" / "01_one.html"), \
        soup(out / "docs" / "GUIDE.html")
    hrefs = {a["href"] for a in article(index).find_all("a", href=True)}
    assert "notebooks/01_one.html" in hrefs and "docs/GUIDE.html#a-section" in hrefs, hrefs
    guide_hrefs = {a["href"] for a in article(guide).find_all("a", href=True)}
    assert "../index.html" in guide_hrefs, guide_hrefs
    repository = _build_module().REPOSITORY
    assert f"https://github.com/{repository}/blob/main/pyproject.toml" in guide_hrefs
    figure = article(guide).find("img")
    assert decode_image(out, out / "docs" / "GUIDE.html", figure["src"]).getpixel((0, 0)) == (200, 30, 30)
    assert "hello from lesson 00" in text_of(article(index))
    assert any(decode_image(out, out / "notebooks" / "01_one.html", img["src"]) for img in article(one).find_all("img"))
    assert [a["href"] for a in article(one).select("a.cnnviz-launch-colab")] == [
        f"https://colab.research.google.com/github/{repository}/blob/main/notebooks/01_one.ipynb"]
    assert [a["href"] for a in article(index).select("a.cnnviz-launch-binder")] == [
        f"https://mybinder.org/v2/gh/{repository}/main?urlpath=lab/tree/notebooks/00_start_here.ipynb"]
    assert len(article(one).select("span.math")) == 1 and len(article(one).select("div.math")) == 2
    assert not any("$" in _prose(p) for p in article(one).find_all("p"))
    assert [s["src"].split("?")[0] for s in one.find_all("script", src=True) if "mathjax" in s["src"]] == \
        ["../_static/mathjax/tex-svg-full.js"]
    assert not (out.parent / "jupyter_execute").exists(), "the build wrote beside OUTDIR"


def test_unchanged_lessons_come_from_the_cache_and_a_failing_lesson_fails_the_build(tiny):
    root, work, out, _ = tiny
    again = _build(root, work, out)
    assert again.returncode == 0, (again.stdout + again.stderr)[-5000:]
    executions = json.loads((out / BUILD_REPORT).read_text())["executions"]
    assert not any(e["executed"] for e in executions.values()), executions

    _notebook(root / "notebooks" / "01_one.ipynb", "01 · One", "Now broken.",
              "raise RuntimeError('lesson one is broken')")
    broken = _build(root, work, out)
    assert broken.returncode != 0
    log = broken.stdout + broken.stderr
    assert "01_one" in log and "lesson one is broken" in log, log[-3000:]
    assert "FAILED" in log
