"""Datasets the lessons scan: synthetic shapes (with masks), the bundled photos, a
folder of your own images, and Imagenette (online).

Every dataset is a sequence of `Item(image, label, mask, name)` with `classes` and a
`name` that identifies its contents (the lessons cache features under it). Lessons
02, 03 and 05 scan them; 06-08 check explanations against the shapes' masks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
from PIL import Image
from torchvision.datasets import Imagenette

from ..core.images import BadImage, load_image
from .models import is_reachable
from .samples import sample_images
from .shapes import ShapesDataset

__all__ = ["Item", "ListDataset", "FolderDataset", "DatasetUnavailable", "load_dataset", "model_for", "DATASETS"]

DATASETS = ("shapes", "samples", "folder", "imagenette")


class DatasetUnavailable(RuntimeError):
    """A dataset cannot be had here (offline and not downloaded, missing folder...)."""


class Item(NamedTuple):
    image: Image.Image
    label: int
    mask: np.ndarray | None
    name: str


class ListDataset:
    """A dataset held in memory: a list of items."""

    def __init__(self, items: Sequence[Item], classes: Sequence[str], name: str):
        self.items = list(items)
        self.classes = list(classes)
        self.name = name

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Item:
        return self.items[i]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {len(self)} images, {len(self.classes)} classes)"


class FolderDataset:
    """Images in `root/<class>/*.jpg` (or directly in `root`, as one class).

    Every file is checked when the dataset is made; files that are not readable
    images are skipped and listed in `errors` as (path, message), never fatal.
    """

    EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}

    def __init__(self, root: str | os.PathLike, min_size: int = 32):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetUnavailable(f"the folder {self.root} does not exist (load_dataset('folder', path=...)).")
        subdirs = sorted(d for d in self.root.iterdir() if d.is_dir() and not d.name.startswith("."))
        groups = [(d.name, d) for d in subdirs] or [(self.root.name or "images", self.root)]
        self.classes = [g for g, _ in groups]
        self.paths: list[tuple[Path, int]] = []
        self.errors: list[tuple[str, str]] = []
        for label, (_, folder) in enumerate(groups):
            for path in sorted(folder.iterdir()):
                if path.is_dir() or path.name.startswith("."):
                    continue
                try:
                    with open(path, "rb") as f:
                        load_image(f, name=path.name, min_size=min_size)
                except BadImage as e:
                    self.errors.append((str(path), str(e)))
                    continue
                except OSError as e:
                    self.errors.append((str(path), f"could not be read ({e.strerror or e})"))
                    continue
                self.paths.append((path, label))
        if not self.paths:
            found = f" ({len(self.errors)} files were not readable images)" if self.errors else ""
            raise DatasetUnavailable(f"no images found in {self.root}{found}.")
        self.name = f"folder:{self.root.resolve()}:{len(self.paths)}"

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Item:
        path, label = self.paths[i]
        return Item(load_image(path), label, None, path.name)

    def __repr__(self) -> str:
        return f"FolderDataset({str(self.root)!r}, {len(self)} images, {len(self.errors)} skipped)"


class _TorchvisionDataset:
    """Adapts a torchvision (image, label) dataset, optionally a strided subset."""

    def __init__(self, base, classes: Sequence[str], name: str, indices: Sequence[int]):
        self.base, self.classes, self.name, self.indices = base, list(classes), name, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Item:
        image, label = self.base[self.indices[i]]
        return Item(image.convert("RGB"), int(label), None, f"{self.name}-{self.indices[i]}")


def _spread(total: int, n: int | None) -> list[int]:
    """n indices spread evenly over `total` (datasets sorted by class stay balanced)."""
    if n is None or n >= total:
        return list(range(total))
    return [int(i) for i in np.linspace(0, total - 1, n).round()]


def data_home() -> Path:
    return Path(os.environ.get("CNNVIZ_DATA_HOME", Path.home() / ".cache" / "cnnviz"))


def _imagenette(split: str = "val", size: str = "160px", n: int | None = None, root: str | None = None):
    root = Path(root) if root else data_home() / "imagenette"
    if size not in ("full", "320px", "160px"):
        raise ValueError(f"Imagenette size must be 'full', '320px' or '160px', not {size!r}")
    if split not in ("train", "val"):
        raise ValueError(f"Imagenette split must be 'train' or 'val', not {split!r}")
    try:
        base = Imagenette(str(root), split=split, size=size, download=False)
    except RuntimeError:
        url = Imagenette._ARCHIVES[size][0]
        if not is_reachable(url):
            raise DatasetUnavailable(
                f"Imagenette ({size}, {split}) is not in {root} and this machine is offline. "
                f"Run once with internet (load_dataset('imagenette') downloads about "
                f"{ {'160px': '94 MB', '320px': '325 MB', 'full': '1.5 GB'}[size] }), or unpack "
                f"{url.rsplit('/', 1)[-1]} into {root}. The offline default is load_dataset('shapes')."
            ) from None
        root.mkdir(parents=True, exist_ok=True)
        base = Imagenette(str(root), split=split, size=size, download=True)
    classes = [names[0] for names in base.classes]
    return _TorchvisionDataset(base, classes, f"imagenette-{size}-{split}-{n}", _spread(len(base), n))


def _samples() -> ListDataset:
    images = sample_images()
    items = [Item(img, i, None, name) for i, (name, img) in enumerate(images.items())]
    return ListDataset(items, list(images), "samples")


def load_dataset(name: str | None = None, **options):
    """A dataset by name; `None` means ``$CNNVIZ_DATA`` or ``shapes``.

    - ``shapes``: n=500, seed=0, size=64 — synthetic shapes with masks (offline)
    - ``samples``: the bundled photos (offline)
    - ``folder``: path=... — your own images, one sub-folder per class
    - ``imagenette``: split="val", size="160px", n=None — 10 ImageNet classes (online once)
    """
    name = (name or os.environ.get("CNNVIZ_DATA") or "shapes").strip().lower()
    if name == "shapes":
        return ShapesDataset(n=int(options.get("n", 500)), seed=int(options.get("seed", 0)),
                             size=int(options.get("size", 64)))
    if name == "samples":
        return _samples()
    if name == "folder":
        if "path" not in options:
            raise ValueError("load_dataset('folder') needs path=... (a folder of images, one sub-folder per class)")
        return FolderDataset(options["path"], min_size=int(options.get("min_size", 32)))
    if name == "imagenette":
        return _imagenette(options.get("split", "val"), options.get("size", "160px"), options.get("n"), options.get("root"))
    raise ValueError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")


def model_for(dataset) -> str | None:
    """The model a dataset lesson should use by default: the kit's `shapes` CNN for
    the shapes set (an ImageNet model has never seen them), else ``$CNNVIZ_MODEL``
    or the embedded ImageNet model (None)."""
    name = getattr(dataset, "name", str(dataset))
    return "shapes" if name.startswith("shapes") else None
