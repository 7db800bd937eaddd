"""Build the course website: every lesson executed, its pictures on the page.

    bash docs/build.sh OUTDIR        # full mode;  CNNVIZ_QUICK=1 bash docs/build.sh OUTDIR: quick

1. Stage the sources in a work folder (``build/site/src`` unless CNNVIZ_SITE_CACHE says
   otherwise): lesson 00 becomes the index page, every other lesson
   (``notebooks/NN_name.ipynb``) a page under ``notebooks/``, every guide (``docs/*.md``) a
   page under ``docs/``. Nothing is hard-coded: whatever lessons and guides exist get pages.
   On the way each lesson's launch badge is replaced by Binder and Colab buttons that open
   that lesson's notebook, and links to repository files that are not pages are pointed at
   GitHub (images beside a page are copied along).
2. Run Sphinx (myst-nb, sphinx-book-theme; all of it offline) with ``docs/site/conf.py``:
   myst-nb executes each lesson on the CPU, offline, with the embedded models, in a kernel
   whose IPython startup file (``kernel_startup.py``) shows every app as a still. A lesson
   that fails, or any Sphinx warning (a broken link, a missing image), fails the build.
3. Executed lessons are cached (jupyter-cache) under the work folder, keyed by the lesson's
   code cells, the mode, and a hash of the kit's own files: an unchanged lesson is not
   executed again, and a change to the kit re-executes every lesson.

What was executed and what came from the cache is written to ``OUTDIR/.cnnviz-build.json``
and printed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent  # docs/site
REPO = HERE.parents[1]



def repository(root: Path = REPO) -> str:
    """OWNER/NAME of the kit's repository, from pyproject.toml's [project.urls] Repository:
    the one place the address lives (python -m tools.address writes the badges from it)."""
    try:
        import tomllib
    except ImportError:  # deferred: Python 3.10 has tomli instead
        import tomli as tomllib
    url = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]["Repository"]
    match = re.match(r"https://github\.com/([^/]+/[^/]+?)(?:\.git)?/?$", url)
    if not match:
        raise SystemExit(f"site: pyproject.toml's Repository {url!r} is not https://github.com/OWNER/NAME")
    return match.group(1)


REPOSITORY = repository()
BRANCH = "main"  # the branch the launch buttons open (as tools/address.py's badges)
BINDER_URL = "https://mybinder.org/v2/gh/{repository}/{branch}?urlpath=lab/tree/{path}"
COLAB_URL = "https://colab.research.google.com/github/{repository}/blob/{branch}/{path}"
GITHUB_URL = "https://github.com/{repository}/{kind}/{branch}/{path}"

LESSON_GLOB = "[0-9][0-9]_*.ipynb"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}
BUILD_REPORT = ".cnnviz-build.json"

# A launch badge inside a lesson ([![Open In Colab](badge.svg)](colab link)): its picture
# is on a remote host (broken offline), and the site puts its own buttons there.
_LAUNCH_BADGE = re.compile(
    r"\[!\[[^\]]*\]\(\s*https?://[^)\s]+\s*\)\]\(\s*https?://(?:colab\.research\.google\.com|mybinder\.org)[^)\s]*\s*\)"
    r"[ \t]*\n?")
# Targets of markdown links and images, reference definitions, and HTML href/src attributes.
_LINK_TARGETS = [
    re.compile(r"\]\(\s*<?(?P<url>[^)\s>]+)>?"),
    re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(?P<url>\S+?)>?(?:\s|$)", re.M),
    re.compile(r"""\b(?:href|src)\s*=\s*["'](?P<url>[^"']+)["']"""),
]
_COLAB_INSTALL = '"google.colab" in sys.modules'
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def launch_urls(repo_path: str) -> dict[str, str]:
    """The Binder and Colab links that open the notebook at `repo_path` (as the README's badges)."""
    fields = {"repository": REPOSITORY, "branch": BRANCH, "path": repo_path}
    return {"binder": BINDER_URL.format(**fields), "colab": COLAB_URL.format(**fields)}


def find_lessons(root: Path) -> list[Path]:
    return sorted((root / "notebooks").glob(LESSON_GLOB))


def find_guides(root: Path) -> list[Path]:
    return sorted((root / "docs").glob("*.md"))


def page_paths(root: Path) -> dict[str, str]:
    """Repository path of every source that becomes a page -> its path in the staged source."""
    lessons = find_lessons(root)
    if not lessons or not lessons[0].name.startswith("00_"):
        raise SystemExit(f"site: no lesson 00 in {root / 'notebooks'} to make the index page from")
    pages = {f"notebooks/{lessons[0].name}": "index.ipynb"}
    pages.update({f"notebooks/{p.name}": f"notebooks/{p.name}" for p in lessons[1:]})
    pages.update({f"docs/{p.name}": f"docs/{p.name}" for p in find_guides(root)})
    return pages


def launch_bar(repo_path: str) -> str:
    urls = launch_urls(repo_path)
    return ('<div class="cnnviz-launch">'
            f'<a class="cnnviz-launch-binder" href="{urls["binder"]}">Open in Binder</a> '
            f'<a class="cnnviz-launch-colab" href="{urls["colab"]}">Open in Colab</a> '
            f'<span class="cnnviz-launch-file">{repo_path}</span></div>')


class Stager:
    """Copies lessons and guides into the Sphinx source folder, fixing links on the way."""

    def __init__(self, root: Path, src: Path):
        self.root, self.src = root, src
        self.pages = page_paths(root)

    def stage(self) -> None:
        if self.src.exists():
            shutil.rmtree(self.src)
        self.src.mkdir(parents=True)
        for repo_path, staged in self.pages.items():
            target = self.src / staged
            target.parent.mkdir(parents=True, exist_ok=True)
            if repo_path.endswith(".ipynb"):
                nb = nbformat.read(self.root / repo_path, as_version=4)
                self._stage_notebook(nb, repo_path, staged)
                nbformat.write(nb, target)
            else:
                text = (self.root / repo_path).read_text(encoding="utf-8")
                target.write_text(self.fix_links(text, repo_path, staged), encoding="utf-8")

    def _stage_notebook(self, nb, repo_path: str, staged: str) -> None:
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            tags = cell.metadata.setdefault("tags", [])
            if _COLAB_INSTALL in cell.source:
                tags.append("remove-cell")  # it does nothing outside Colab; the page has its own button
            # what nbval is told about a cell holds for the site's execution too
            if "nbval-raises-exception" in tags or "NBVAL_RAISES_EXCEPTION" in cell.source:
                tags.append("raises-exception")
            if "nbval-skip" in tags or "NBVAL_SKIP" in cell.source:
                tags.append("skip-execution")
        markdown = [c for c in nb.cells if c.cell_type == "markdown"]
        for cell in markdown:
            cell.source = _LAUNCH_BADGE.sub("", cell.source)
            cell.source = self.fix_links(cell.source, repo_path, staged)
        bar = launch_bar(repo_path)
        first = markdown[0] if markdown and nb.cells[0] is markdown[0] else None
        if first is not None and re.search(r"^# .*$", first.source, re.M):
            first.source = re.sub(r"^(# .*)$", lambda m: m.group(1) + "\n\n" + bar + "\n", first.source,
                                  count=1, flags=re.M)
        else:
            nb.cells.insert(0, nbformat.v4.new_markdown_cell(bar))
        if staged == "index.ipynb":
            nb.cells.append(nbformat.v4.new_markdown_cell(self._toctrees()))

    def _toctrees(self) -> str:
        lessons = [s[:-len(".ipynb")] for r, s in self.pages.items() if r.startswith("notebooks/") and s != "index.ipynb"]
        guides = [s[:-len(".md")] for r, s in self.pages.items() if r.startswith("docs/")]
        out = "```{toctree}\n:hidden:\n:caption: Lessons\n:maxdepth: 1\n\nself\n" + "\n".join(lessons) + "\n```\n"
        if guides:
            out += "\n```{toctree}\n:hidden:\n:caption: Guides\n:maxdepth: 1\n\n" + "\n".join(guides) + "\n```\n"
        return out

    def fix_links(self, text: str, repo_path: str, staged: str) -> str:
        """Relative links keep working from the page's staged place: a page links to a
        page, an image beside it is copied along, any other repository file goes to GitHub.
        A link to nothing is left for Sphinx to report (and fail the build)."""
        def fix(m: re.Match) -> str:
            url = m.group("url")
            new = self._fixed_target(url, repo_path, staged)
            if new == url:
                return m.group(0)
            start, end = m.start("url") - m.start(0), m.end("url") - m.start(0)
            whole = m.group(0)
            return whole[:start] + new + whole[end:]

        # code (fenced blocks, inline spans) is shown as written
        pieces = re.split(r"(```.*?```|~~~.*?~~~|`[^`\n]*`)", text, flags=re.S)
        for i in range(0, len(pieces), 2):
            for pattern in _LINK_TARGETS:
                pieces[i] = pattern.sub(fix, pieces[i])
        return "".join(pieces)

    def _fixed_target(self, url: str, repo_path: str, staged: str) -> str:
        if not url or url.startswith(("#", "/")) or _SCHEME.match(url):
            return url
        path, sep, fragment = url.partition("#")
        path = path.split("?", 1)[0]
        target = posixpath.normpath(posixpath.join(posixpath.dirname(repo_path), path))
        if target.startswith("../") or not path:
            return url
        staged_dir = posixpath.dirname(staged) or "."
        if target in self.pages:
            return posixpath.relpath(self.pages[target], staged_dir) + sep + fragment
        on_disk = self.root / target
        if not on_disk.exists():
            return url
        if on_disk.is_file() and on_disk.suffix.lower() in IMAGE_SUFFIXES:
            copy = self.src / target
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(on_disk, copy)
            return posixpath.relpath(target, staged_dir)
        kind = "tree" if on_disk.is_dir() else "blob"
        return GITHUB_URL.format(repository=REPOSITORY, kind=kind, branch=BRANCH, path=target) + sep + fragment


def kit_hash(root: Path) -> str:
    """A hash of the kit's own files: lessons executed with another kit are executed again."""
    digest = hashlib.sha256()
    package = root / "cnnviz_widgets"
    for path in sorted(package.rglob("*")) if package.is_dir() else []:
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(package).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def check_outdir(out: Path) -> None:
    """OUTDIR must be new, empty, or an earlier site build (which is replaced)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not (out / BUILD_REPORT).exists():
        raise SystemExit(f"site: {out} is not empty and holds no earlier site build; choose an empty or new folder")


def publish(html: Path, out: Path) -> None:
    """Copy the built pages to OUTDIR (Sphinx builds in the work folder: myst-nb writes
    its executed outputs beside its output folder, which must not be OUTDIR's parent)."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(html, out)


def kernel_environment(work: Path, quick: bool) -> dict[str, str]:
    env = dict(os.environ)
    ipython = work / "ipython"
    startup = ipython / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    shutil.copy2(HERE / "kernel_startup.py", startup / "00-cnnviz-site.py")
    for name in ("MPLBACKEND",  # the kernels' inline figures are the pages' pictures
                 "CNNVIZ_MODEL", "CNNVIZ_DATA"):  # the site shows the embedded models
        env.pop(name, None)
    env.update({"IPYTHONDIR": str(ipython), "CNNVIZ_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "",
                "PYDEVD_DISABLE_FILE_VALIDATION": "1", "PYTHONUNBUFFERED": "1"})
    if quick:
        env["CNNVIZ_QUICK"] = "1"
    else:
        env.pop("CNNVIZ_QUICK", None)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the course website into OUTDIR.")
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--root", type=Path, default=REPO, help="the repository to build (default: this one)")
    parser.add_argument("--work", type=Path, default=None,
                        help="staging and cache folder (default: $CNNVIZ_SITE_CACHE or ROOT/build/site)")
    parser.add_argument("--jobs", default=os.environ.get("CNNVIZ_SITE_JOBS", "1"),
                        help="Sphinx processes reading (and executing) lessons at once")
    args = parser.parse_args(argv)

    started = time.monotonic()
    root = args.root.resolve()
    out = args.outdir.resolve()
    work = (args.work or Path(os.environ.get("CNNVIZ_SITE_CACHE", "") or root / "build" / "site")).resolve()
    quick = os.environ.get("CNNVIZ_QUICK", "") not in ("", "0")
    mode = "quick" if quick else "full"

    src, html = work / "src", work / "html"
    Stager(root, src).stage()
    cache = work / "jupyter-cache" / f"{mode}-{kit_hash(root)}"
    for old in (work / "jupyter-cache").glob(f"{mode}-*"):
        if old != cache:  # executed with another version of the kit: never valid again
            shutil.rmtree(old, ignore_errors=True)
    check_outdir(out)
    shutil.rmtree(html, ignore_errors=True)  # no page of a lesson that is gone

    config = work / "site.json"
    config.write_text(json.dumps({
        "mode": mode, "cache": str(cache), "repository": REPOSITORY, "branch": BRANCH,
        "lessons": [s for r, s in page_paths(root).items() if r.startswith("notebooks/")],
        "report": BUILD_REPORT,
        "timeout": int(os.environ.get("CNNVIZ_SITE_TIMEOUT", "1800")),  # per cell; 2 busy cores are slow
    }, indent=1))
    env = kernel_environment(work, quick)
    env["CNNVIZ_SITE_CONFIG"] = str(config)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-E", "-W", "--keep-going", "-j", str(args.jobs),
           "-c", str(HERE), "-d", str(work / "doctrees"), str(src), str(html)]
    print(f"site: building {len(page_paths(root))} pages in {mode} mode into {out}", flush=True)
    result = subprocess.run(cmd, env=env, cwd=root)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        print(f"site: FAILED after {elapsed:.0f} s (a lesson failed or Sphinx reported a problem; see above)",
              file=sys.stderr, flush=True)
        return result.returncode
    publish(html, out)
    report_path = out / BUILD_REPORT
    report = json.loads(report_path.read_text())
    report["seconds"] = round(elapsed, 1)
    report_path.write_text(json.dumps(report, indent=1))
    for doc, info in report["executions"].items():
        how = "executed" if info["executed"] else "from cache"
        print(f"site:   {doc:45s} {how:10s} {info['seconds'] or 0:6.1f} s", flush=True)
    executed = sum(1 for i in report["executions"].values() if i["executed"])
    print(f"site: built in {elapsed:.0f} s ({mode} mode; {executed} lessons executed, "
          f"{len(report['executions']) - executed} from cache) -> {out / 'index.html'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
