"""The course website in Chromium, from its built files, with the network cut off.

The site is served from 127.0.0.1 (a local http.server); every request elsewhere is
refused and recorded. The index and one lesson page with an app must show all their
pictures (the app's still among them), and equations set with the bundled MathJax.
Screenshots go to tests/browser/screenshots/site-*.png.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest

from tests.site_build import LESSONS, page_of, soup

from .conftest import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.site]

LOAD_TIMEOUT = 60_000  # ms
MATH_TIMEOUT = 60_000  # ms: MathJax typesets after load; 2 busy cores


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # noqa: D401 - keep pytest's output clean
        pass


@pytest.fixture(scope="module")
def served(built_site, tmp_path_factory):
    """The site at http://127.0.0.1:PORT/site/, and a scratch folder at /scratch/."""
    scratch = tmp_path_factory.mktemp("site-scratch")
    root = tmp_path_factory.mktemp("site-root")
    (root / "site").symlink_to(built_site, target_is_directory=True)
    (root / "scratch").symlink_to(scratch, target_is_directory=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", built_site, scratch
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def offline_page(chromium, served):
    base = served[0]
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    refused: list[str] = []
    failed: list[str] = []

    def route(r):
        if r.request.url.startswith(base + "/"):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("requestfailed", lambda req: failed.append(req.url))
    page.on("response", lambda resp: failed.append(resp.url) if resp.status >= 400 else None)
    try:
        yield page, refused, failed
    finally:
        context.close()


_IMAGES_JS = """
() => [...document.querySelectorAll('article img')].map(img => ({
    src: img.currentSrc.slice(0, 120), ok: img.complete && img.naturalWidth > 0,
    still: !!img.closest('figure.cnnviz-app-still'),
    visible: img.getBoundingClientRect().width > 0,
}))
"""


def _open(page, url: str) -> list[dict]:
    page.goto(url, wait_until="load", timeout=LOAD_TIMEOUT)
    page.evaluate("async () => { for (const img of document.images) { if (!img.complete) "
                  "await new Promise(r => { img.onload = img.onerror = r; }); } }")
    return page.evaluate(_IMAGES_JS)


def _wait_for_math(page) -> int:
    """Number of equations on the page, once MathJax has set every one of them as SVG."""
    count = page.evaluate("document.querySelectorAll('article .math').length")
    if count:
        page.wait_for_function(
            "n => document.querySelectorAll('article .math mjx-container svg').length >= n", arg=count,
            timeout=MATH_TIMEOUT)
    return count


def _lesson_with_app(site: Path) -> Path:
    for lesson in LESSONS[1:]:
        if soup(site / page_of(lesson)).select("figure.cnnviz-app-still img"):
            return lesson
    pytest.fail("no lesson page shows an app's still")


def test_index_and_a_lesson_page_show_their_pictures_offline(offline_page, served):
    page, refused, failed = offline_page
    base, site, _ = served
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    images = _open(page, f"{base}/site/index.html")
    assert images and all(i["ok"] for i in images), images
    nav = page.locator("nav.bd-docs-nav a.reference")
    assert nav.count() >= len(LESSONS) - 1
    assert page.locator("a.cnnviz-launch-binder").first.is_visible()
    assert page.locator("a.cnnviz-launch-colab").first.is_visible()
    _wait_for_math(page)
    page.screenshot(path=str(SCREENSHOTS / "site-index.png"))

    lesson = _lesson_with_app(site)
    images = _open(page, f"{base}/site/{page_of(lesson)}")
    assert all(i["ok"] for i in images), [i for i in images if not i["ok"]]
    stills = [i for i in images if i["still"]]
    assert stills and all(i["visible"] for i in stills), images
    assert len(images) > len(stills), "the lesson's own figures are missing"
    caption = page.locator("figure.cnnviz-app-still figcaption").first
    assert caption.is_visible() and "live in Jupyter" in caption.inner_text()
    _wait_for_math(page)
    page.screenshot(path=str(SCREENSHOTS / f"site-{lesson.stem}.png"), full_page=True)

    assert not refused, f"the pages asked the network for {refused}"
    assert not failed, f"requests failed: {failed}"


def test_the_bundled_mathjax_typesets_offline(offline_page, served):
    page, refused, failed = offline_page
    base, site, scratch = served
    # a page of the site's own making would do, but lessons may have no equation yet:
    # this one loads the site's MathJax exactly as Sphinx's pages do
    (scratch / "mathjax").symlink_to(site / "_static" / "mathjax", target_is_directory=True)
    (scratch / "math.html").write_text(
        '<!doctype html><html><head><script defer src="mathjax/tex-svg-full.js"></script></head><body><article>'
        '<p>inline <span class="math notranslate nohighlight">\\(S_c(x) = w^\\top x\\)</span></p>'
        '<div class="math notranslate nohighlight">\\[\\frac{\\partial S_c}{\\partial x} = w,\\quad '
        '\\lVert \\nabla_x S_c \\rVert_2 \\le \\sum_i |w_i|\\]</div></article></body></html>')
    _open(page, f"{base}/scratch/math.html")
    assert _wait_for_math(page) == 2
    assert page.evaluate("document.querySelector('div.math mjx-container svg').getBoundingClientRect().width") > 20
    assert not page.locator("mjx-merror").count(), "MathJax reported an error"
    assert not refused, f"MathJax asked the network for {refused}"
    assert not failed, f"requests failed: {failed}"
