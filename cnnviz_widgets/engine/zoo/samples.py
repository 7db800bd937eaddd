"""The sample photos bundled with the kit (`assets/samples/`, provenance in `samples.json`).

Lesson 00 checks the environment with them and lessons 04 onwards start from them.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from PIL import Image

from ..core.images import load_image

__all__ = ["SAMPLES_DIR", "UnknownSample", "sample_image", "sample_images", "sample_info", "sample_names"]

#: Folder holding the bundled sample photos and their ``samples.json`` manifest.
SAMPLES_DIR = Path(__file__).resolve().parents[2] / "assets" / "samples"


class UnknownSample(KeyError, ValueError):
    """Asked for a bundled sample photo that does not exist (a KeyError and a ValueError)."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


@lru_cache(maxsize=1)
def _manifest() -> dict[str, dict]:
    path = SAMPLES_DIR / "samples.json"
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    return {entry["name"]: entry for entry in doc["samples"]}


def sample_names() -> list[str]:
    """Names of the bundled sample photos, in manifest order (e.g. ``['cat', 'coffee', ...]``)."""
    return list(_manifest())


def _entry(name: str) -> dict:
    entries = _manifest()
    if name not in entries:
        raise UnknownSample(
            f"there is no sample photo called {name!r}; the samples are: "
            + ", ".join(entries)
            + "."
        )
    return entries[name]


@lru_cache(maxsize=None)
def _sample_cached(name: str) -> Image.Image:
    entry = _entry(name)
    return load_image(SAMPLES_DIR / entry["file"], name=entry["file"])


def sample_image(name: str) -> Image.Image:
    """The bundled sample photo *name* as a fresh RGB PIL image (safe to modify)."""
    img = _sample_cached(name)
    out = img.copy()
    out.info = dict(img.info)
    return out


def sample_images() -> dict[str, Image.Image]:
    """All bundled sample photos, ``{name: RGB PIL image}``, in manifest order."""
    return {name: sample_image(name) for name in sample_names()}


def sample_info(name: str) -> dict:
    """Provenance of sample *name*: ``title``, ``source``, ``licence``, ``expected`` (+ ``file``, ``author``)."""
    entry = _entry(name)
    return {
        "name": entry["name"],
        "file": entry["file"],
        "title": entry["title"],
        "source": entry["source"],
        "author": entry.get("author", ""),
        "licence": entry["licence"],
        "expected": list(entry.get("expected", [])),
    }
