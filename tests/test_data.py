"""Datasets: folder (bad files reported by name), samples, Imagenette offline and from files."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from cnnviz_widgets.engine.zoo.data import DatasetUnavailable, load_dataset, model_for


def _photo(path, color, size=(48, 40)):
    Image.new("RGB", size, color).save(path)


def test_folder_dataset_with_classes_and_bad_files(tmp_path):
    (tmp_path / "red").mkdir(); (tmp_path / "blue").mkdir()
    _photo(tmp_path / "red" / "a.png", (255, 0, 0))
    _photo(tmp_path / "red" / "b.jpg", (250, 0, 0))
    _photo(tmp_path / "blue" / "c.png", (0, 0, 255))
    (tmp_path / "blue" / "notes.txt").write_text("hello")
    (tmp_path / "blue" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    data = load_dataset("folder", path=tmp_path)
    assert data.classes == ["blue", "red"]
    assert len(data) == 3
    labels = sorted(data[i].label for i in range(3))
    assert labels == [0, 1, 1]
    item = data[0]
    assert item.image.mode == "RGB" and item.image.size == (48, 40)
    bad = {p.rsplit("/", 1)[-1]: msg for p, msg in data.errors}
    assert set(bad) == {"notes.txt", "broken.jpg"}
    assert "notes.txt" in bad["notes.txt"]


def test_folder_dataset_flat_and_missing(tmp_path):
    _photo(tmp_path / "x.png", (1, 2, 3))
    data = load_dataset("folder", path=tmp_path)
    assert len(data) == 1 and data.classes == [tmp_path.name]
    with pytest.raises(DatasetUnavailable, match="does not exist"):
        load_dataset("folder", path=tmp_path / "nope")
    empty = tmp_path / "empty"; empty.mkdir()
    (empty / "t.txt").write_text("x")
    with pytest.raises(DatasetUnavailable, match="no images found.*1 files were not readable"):
        load_dataset("folder", path=empty)


def test_samples_dataset():
    data = load_dataset("samples")
    assert [data[i].name for i in range(len(data))] == data.classes
    assert "cat" in data.classes


def test_imagenette_offline_fails_fast(tmp_path):
    start = time.monotonic()
    with pytest.raises(DatasetUnavailable, match="offline") as err:
        load_dataset("imagenette", root=tmp_path)
    assert time.monotonic() - start < 5
    assert "imagenette2-160.tgz" in str(err.value)


def test_imagenette_loads_from_files_on_disk(tmp_path):
    """torchvision's Imagenette layout, made by the test: the loading code runs for real."""
    wnids = ["n01440764", "n03000684"]
    for k, wnid in enumerate(wnids):
        folder = tmp_path / "imagenette2-160" / "val" / wnid
        folder.mkdir(parents=True)
        for j in range(3):
            _photo(folder / f"{wnid}_{j}.JPEG", (40 * k, 10 * j, 0), size=(160, 120))
    data = load_dataset("imagenette", root=tmp_path, n=4)
    assert len(data) == 4
    assert data.classes == ["tench", "chain saw"]
    assert {data[i].label for i in range(4)} == {0, 1}  # spread over both classes
    assert data[0].image.size == (160, 120)


def test_unknown_dataset_and_defaults(monkeypatch):
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")
    monkeypatch.setenv("CNNVIZ_DATA", "samples")
    assert load_dataset().name == "samples"
    assert model_for(load_dataset("samples")) is None


def test_shapes_dataset_is_the_default_and_uses_the_shapes_model(monkeypatch):
    monkeypatch.delenv("CNNVIZ_DATA", raising=False)
    data = load_dataset(n=20, seed=3)
    assert data.name.startswith("shapes") and len(data) == 20
    item = data[5]
    assert item.mask is not None and item.mask.shape == np.asarray(item.image).shape[:2]
    assert model_for(data) == "shapes"
