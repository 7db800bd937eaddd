"""Sphinx configuration of the course website. Run it through `bash docs/build.sh OUTDIR`,
which stages the sources and passes the settings below in $CNNVIZ_SITE_CONFIG."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

if not os.environ.get("CNNVIZ_SITE_CONFIG"):
    raise RuntimeError("Build the site with `bash docs/build.sh OUTDIR` (it stages the lessons first).")
site = json.loads(Path(os.environ["CNNVIZ_SITE_CONFIG"]).read_text())

project = "cnnviz-widgets"
html_title = "cnnviz-widgets: see inside a convolutional network"
author = "the cnnviz-widgets authors"
copyright = "the cnnviz-widgets authors (code MIT; see the repository for the assets' licences)"
root_doc = "index"

extensions = ["myst_nb", "sphinx.ext.mathjax", "cnnviz_site"]

# -- notebooks: executed on build (jupyter-cache keeps what did not change)
nb_execution_mode = "cache"
nb_execution_cache_path = site["cache"]
nb_execution_timeout = site["timeout"]
nb_execution_raise_on_error = True  # a failing lesson fails the build
nb_execution_show_tb = True
nb_execution_in_temp = True  # like Colab: a lesson may not rely on files beside it
nb_merge_streams = True
nb_ipywidgets_js = {}  # apps are shown as stills; nothing is fetched from a CDN

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "html_image"]
myst_dmath_double_inline = True  # $$...$$ inside a paragraph is display math, as in Jupyter
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # a lesson may skip a heading level; the page is still fine

# -- math: MathJax 3 (SVG output, every TeX extension, no fonts to fetch) served from _static
mathjax_path = "mathjax/tex-svg-full.js"

# -- pages
html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["cnnviz-site.css"]
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    "repository_url": f"https://github.com/{site['repository']}",
    "repository_branch": site["branch"],
    "use_repository_button": True,
    "use_download_button": True,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "navbar_persistent": [],  # the sidebar has the search field; no second one in a header
    "announcement": ("Quick-mode build (fewer steps, smaller pictures than a lesson shows in full mode)"
                     if site["mode"] == "quick" else ""),
}
html_context = {"default_mode": "light"}

cnnviz_site = site
