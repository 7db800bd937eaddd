"""The kit's address in one place: pyproject.toml's ``[project.urls]`` Repository.

Every launch badge (README, the first cell of every lesson, the lesson conventions) and
every lesson's install cell is written from it, with the package's name and version:

    python -m tools.address                                   # rewrite them all from pyproject.toml
    python -m tools.address --check                           # list what disagrees (exit 1); tests run this
    python -m tools.address --set https://github.com/ORG/REPO # a fork: its own address, then rewrite all

The install cell installs the release that matches the notebook, ``NAME==VERSION`` from
the package index, falling back to the git repository at the tag ``vVERSION``, and does
nothing outside Colab. docs/site/build.py reads the same address (`repository`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
BRANCH = "main"  # the branch the badges open
LESSON_GLOB = "[0-9][0-9]_*.ipynb"
COLAB_SENTINEL = '"google.colab" in sys.modules'

_GITHUB = re.compile(r"^https://github\.com/(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))/"
                     r"(?P<name>[A-Za-z0-9._-]{1,100}?)(?:\.git)?/?$")
_URLS_TABLE = re.compile(r"^\[project\.urls\]\n(?:(?!\[).*\n?)*", re.M)
# A launch badge: [![Open In Colab](picture)](link) or [![Open in Binder](picture)](link)
_COLAB_BADGE = re.compile(r"\[!\[Open In Colab\]\([^)\s]*\)\]\([^)\s]*\)")
_BINDER_BADGE = re.compile(r"\[!\[Open in Binder\]\([^)\s]*\)\]\([^)\s]*\)")
# Any address of a repository on the three hosts that open it
_REPO_MENTIONS = re.compile(
    r"(?:colab\.research\.google\.com/github|mybinder\.org/v2/gh|git\+https://github\.com)/"
    r"(?P<repo>[A-Za-z0-9-]+/[A-Za-z0-9._-]+)")


@dataclass(frozen=True)
class Address:
    """Where the kit lives and what it is called."""

    repository: str   # https://github.com/OWNER/NAME
    package: str      # the distribution name on the index
    version: str      # the release the notebooks install

    @property
    def slug(self) -> str:
        """OWNER/NAME"""
        m = _GITHUB.match(self.repository)
        assert m, self.repository
        return f"{m['owner']}/{m['name']}"

    def colab_url(self, path: str) -> str:
        return f"https://colab.research.google.com/github/{self.slug}/blob/{BRANCH}/{path}"

    def binder_url(self, path: str) -> str:
        return f"https://mybinder.org/v2/gh/{self.slug}/{BRANCH}?urlpath=lab/tree/{path}"

    def colab_badge(self, path: str) -> str:
        return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({self.colab_url(path)})"

    def binder_badge(self, path: str) -> str:
        return f"[![Open in Binder](https://mybinder.org/badge_logo.svg)]({self.binder_url(path)})"

    @property
    def index_requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def git_requirement(self) -> str:
        return f"{self.package} @ git+{self.repository}@v{self.version}"

    def install_cell(self) -> str:
        """The first code cell of every lesson."""
        return (
            "# On Colab, install the kit first (does nothing elsewhere): release "
            f"{self.version}, from the package\n"
            "# index or, failing that, from its tag on GitHub. Colab's own torch and ipywidgets stay.\n"
            "import subprocess, sys\n"
            f"if {COLAB_SENTINEL}:\n"
            f'    for requirement in ("{self.index_requirement}",\n'
            f'                        "{self.git_requirement}"):\n'
            '        pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", requirement],\n'
            "                             capture_output=True, text=True)\n"
            "        if pip.returncode == 0:\n"
            "            break\n"
            "    else:\n"
            f'        raise RuntimeError("could not install {self.package} {self.version}:\\n" + pip.stderr[-2000:])'
        )


def validate_repository(url: str) -> str:
    url = url.strip()
    m = _GITHUB.match(url)
    if not m:
        raise SystemExit(f"address: {url!r} is not a GitHub repository address; "
                         "give it as https://github.com/OWNER/NAME")
    return f"https://github.com/{m['owner']}/{m['name']}"


def read_address(root: Path = ROOT) -> Address:
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    try:
        repository = project["urls"]["Repository"]
    except KeyError:
        raise SystemExit("address: pyproject.toml has no [project.urls] Repository; add one "
                         "(python -m tools.address --set https://github.com/OWNER/NAME)") from None
    return Address(validate_repository(repository), project["name"], project["version"])


def urls_table(repository: str) -> str:
    return ("[project.urls]\n"
            f'Repository = "{repository}"\n'
            f'Homepage = "{repository}"\n'
            f'Issues = "{repository}/issues"\n'
            f'Changelog = "{repository}/blob/{BRANCH}/CHANGELOG.md"\n')


def lessons(root: Path = ROOT) -> list[Path]:
    """Every lesson notebook, the translations' too."""
    return sorted((root / "notebooks").rglob(LESSON_GLOB))


# -- what each file should say -------------------------------------------------------------

def _read_notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _write_notebook(path: Path, nb: dict) -> None:
    # nbformat's own layout (indent 1, UTF-8 kept), so an unchanged notebook stays byte-identical
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _source(cell: dict) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def _set_source(cell: dict, text: str) -> None:
    lines = text.splitlines(keepends=True)
    cell["source"] = lines if isinstance(cell["source"], list) else text


def fix_notebook(nb: dict, repo_path: str, address: Address) -> list[str]:
    """Put the lesson's badge and install cell in place; return what was wrong."""
    problems = []
    first = nb["cells"][0]
    text = _source(first)
    badge = address.colab_badge(repo_path)
    if first["cell_type"] != "markdown" or not _COLAB_BADGE.search(text):
        problems.append("its first cell has no Open In Colab badge")
    elif _COLAB_BADGE.search(text).group(0) != badge:
        problems.append(f"its Colab badge does not open {address.colab_url(repo_path)}")
        _set_source(first, _COLAB_BADGE.sub(lambda _: badge, text, count=1))
    code = next((c for c in nb["cells"] if c["cell_type"] == "code"), None)
    if code is None or COLAB_SENTINEL not in _source(code):
        problems.append("its first code cell is not the Colab install cell")
    elif _source(code) != address.install_cell():
        problems.append("its install cell is not the one pyproject.toml gives")
        _set_source(code, address.install_cell())
    return problems


def fix_readme(text: str, address: Address) -> tuple[str, list[str]]:
    problems = []
    start = "notebooks/00_start_here.ipynb"
    for pattern, badge, what in ((_BINDER_BADGE, address.binder_badge(start), "Binder"),
                                 (_COLAB_BADGE, address.colab_badge(start), "Colab")):
        found = pattern.search(text)
        if not found:
            problems.append(f"no {what} badge")
        elif found.group(0) != badge:
            problems.append(f"its {what} badge does not say {address.slug}")
            text = pattern.sub(lambda _: badge, text, count=1)
    return text, problems


def fix_conventions(text: str, address: Address) -> tuple[str, list[str]]:
    problems = []
    badge = address.colab_badge("notebooks/NN_name.ipynb")
    found = _COLAB_BADGE.search(text)
    if found and found.group(0) != badge:
        problems.append("its example badge is not pyproject's")
        text = _COLAB_BADGE.sub(lambda _: badge, text, count=1)
    block = re.compile(r"(```python\n)((?:[ \t]*)# On Colab, install the kit first.*?)(\n[ \t]*```)", re.S)
    found = block.search(text)
    if found:
        indent = re.match(r"[ \t]*", found.group(2)).group(0)
        wanted = "\n".join(indent + line if line else line for line in address.install_cell().split("\n"))
        if found.group(2) != wanted:
            problems.append("its install cell is not the one pyproject.toml gives")
            text = text[:found.start(2)] + wanted + text[found.end(2):]
    return text, problems


def stray_addresses(root: Path, address: Address) -> list[str]:
    """Colab, Binder or pip-from-git addresses of another repository anywhere in the
    repository's text files (README, docs, notebooks, binder, the changelog)."""
    out = []
    paths = [root / "README.md", root / "CHANGELOG.md", *sorted((root / "docs").rglob("*.md")),
             *sorted((root / "docs").rglob("*.py")), *sorted((root / "binder").glob("*")),
             *sorted((root / "notebooks").rglob("*.ipynb"))]
    for path in paths:
        if not path.is_file():
            continue
        for m in _REPO_MENTIONS.finditer(path.read_text(encoding="utf-8", errors="replace")):
            if m["repo"].removesuffix(".git") != address.slug:
                out.append(f"{path.relative_to(root)}: {m.group(0)}")
    return out


def sync(root: Path = ROOT, write: bool = True) -> list[str]:
    """Bring every badge and install cell in line with pyproject.toml; return what disagreed
    (before the fix, when `write`)."""
    address = read_address(root)
    problems: list[str] = []
    for path in lessons(root):
        nb = _read_notebook(path)
        rel = path.relative_to(root).as_posix()
        found = fix_notebook(nb, rel, address)
        problems += [f"{rel}: {p}" for p in found]
        if found and write:
            _write_notebook(path, nb)
    for rel, fix in (("README.md", fix_readme), ("docs/LESSON_CONVENTIONS.md", fix_conventions)):
        path = root / rel
        if not path.exists():
            continue
        text, found = fix(path.read_text(encoding="utf-8"), address)
        problems += [f"{rel}: {p}" for p in found]
        if found and write:
            path.write_text(text, encoding="utf-8")
    problems += [f"{s} (not {address.slug})" for s in stray_addresses(root, address)]
    return problems


def set_repository(url: str, root: Path = ROOT) -> str:
    """Write `url` into pyproject.toml's [project.urls]; return the address as written."""
    repository = validate_repository(url)
    before = read_address(root).repository
    path = root / "pyproject.toml"
    text = path.read_text(encoding="utf-8")
    table = urls_table(repository)
    if _URLS_TABLE.search(text):
        text = _URLS_TABLE.sub(lambda _: table + "\n", text, count=1).replace(table + "\n\n", table + "\n")
        text = re.sub(r"\n{3,}", "\n\n", text)
    else:
        text = text.replace("\n[project.optional-dependencies]", "\n" + table + "\n[project.optional-dependencies]", 1)
    path.write_text(text, encoding="utf-8")
    # The prose that names the old address (README, the changelog, the guides) follows it;
    # badges and install cells are rewritten by `sync`.
    for prose in [root / "README.md", root / "CHANGELOG.md", *sorted((root / "docs").glob("*.md"))]:
        if prose.is_file() and before != repository:
            old_text = prose.read_text(encoding="utf-8")
            new_text = re.sub(re.escape(before) + r"(?![A-Za-z0-9._-])", repository, old_text)
            if new_text != old_text:
                prose.write_text(new_text, encoding="utf-8")
    return repository


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.address", description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", metavar="URL", help="a new repository address, https://github.com/OWNER/NAME")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything disagrees")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.set and args.check:
        parser.error("--set and --check do not go together")
    if args.set:
        print(f"address: pyproject.toml's [project.urls] now say {set_repository(args.set, args.root)}")
    problems = sync(args.root, write=not args.check)
    address = read_address(args.root)
    if args.check:
        for p in problems:
            print(f"address: {p}")
        print(f"address: {len(problems)} disagreement(s) with {address.repository} "
              f"({address.index_requirement})" if problems else
              f"address: every badge and install cell says {address.repository} ({address.index_requirement})")
        return 1 if problems else 0
    left = sync(args.root, write=False)
    for p in left:
        print(f"address: left for a hand: {p}")
    print(f"address: {len(problems) - len(left)} fix(es); everything now says {address.repository} "
          f"({address.index_requirement})")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
