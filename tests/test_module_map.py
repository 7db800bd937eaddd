"""docs/ARCHITECTURE.md's module map and the engine's folders name the same files."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "cnnviz_widgets" / "engine"


def mapped_files() -> set[str]:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text[text.index("### Module map of the engine"):text.index("## The app skeleton")]
    files, folder = set(), ""
    for row in re.findall(r"^\|[ \t]*(.*?)[ \t]*\|[ \t]*`([\w/]+(?:\.py|/))`[ \t]*\|", section, re.M):
        first, name = row
        if first.startswith("`"):
            folder = first.strip("`")
        elif first == "(top)":
            folder = ""
        files.add(folder + name)
    return files


def engine_files() -> set[str]:
    out = set()
    for path in ENGINE.rglob("*.py"):
        rel = path.relative_to(ENGINE)
        if rel.name == "__init__.py" and len(rel.parts) <= 2:
            continue  # a folder's __init__ is its own table of contents
        # a package inside a folder (attribution/occlusion/) is one row
        out.add(rel.parts[0] + "/" + rel.parts[1] + "/" if len(rel.parts) > 2 else rel.as_posix())
    return out


def test_the_map_is_read():
    files = mapped_files()
    assert "core/network.py" in files and "attribution/occlusion/" in files and "techniques.py" in files


def test_every_engine_module_is_in_the_map_and_every_row_exists():
    mapped, actual = mapped_files(), engine_files()
    assert not actual - mapped, f"modules missing from docs/ARCHITECTURE.md's map: {sorted(actual - mapped)}"
    assert not mapped - actual, f"rows of the map with no file: {sorted(mapped - actual)}"


def test_every_folder_init_lists_its_modules():
    for init in sorted(ENGINE.glob("*/__init__.py")):
        doc = init.read_text(encoding="utf-8")
        modules = {p.stem for p in init.parent.glob("*.py") if p.name != "__init__.py"}
        modules |= {p.name for p in init.parent.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
        missing = [m for m in sorted(modules) if f"`{m}`" not in doc and f"`{m}/`" not in doc]
        assert not missing, f"{init.relative_to(ROOT)} does not list {missing}"


def test_every_render_module_is_in_its_map_and_in_the_package_table():
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text[text.index("### Module map of render"):text.index("## The app skeleton")]
    mapped = set(re.findall(r"^\|[ \t]*`(\w+\.py)`[ \t]*\|", section, re.M))
    folder = ROOT / "cnnviz_widgets" / "render"
    actual = {p.name for p in folder.glob("*.py") if p.name != "__init__.py"}
    assert mapped == actual, f"missing from the map: {sorted(actual - mapped)}; rows with no file: {sorted(mapped - actual)}"
    doc = (folder / "__init__.py").read_text(encoding="utf-8")
    assert not [m for m in sorted(actual) if f"`{m[:-3]}`" not in doc]
