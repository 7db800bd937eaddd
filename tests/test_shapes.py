"""The synthetic shapes set (ground-truth masks) and the bundled ``shapes`` network."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cnnviz_widgets.engine.zoo.shapes import SHAPE_CLASSES, Item, ShapesDataset, render_shape
from cnnviz_widgets.engine.zoo.shapes_net import (
    INPUT_SIZE,
    LAYER_NAMES,
    MEAN,
    SNAPSHOTS_PATH,
    STD,
    WEIGHTS_PATH,
    ShapesNet,
    build_shapes_net,
    filter_smoothness,
    load_conv1_snapshots,
    load_shapes_state_dict,
)
from tests.helpers import close_to_scale

C = len(SHAPE_CLASSES)
# seeds used for training (1) and held-out evaluation in train_shapes (12345) are avoided
TEST_SEED = 2024


@pytest.fixture(scope="module")
def sample():
    return ShapesDataset(400, seed=7).arrays()


# ----------------------------------------------------------------------------- dataset


def test_classes_and_item_types():
    assert len(SHAPE_CLASSES) >= 10 and len(set(SHAPE_CLASSES)) == len(SHAPE_CLASSES)
    ds = ShapesDataset(25, seed=3)
    assert len(ds) == 25 and ds.classes == SHAPE_CLASSES and ds.size == 64
    assert ds.name == "shapes-seed3-n25-64px"
    item = ds[17]
    assert isinstance(item, Item)
    assert isinstance(item.image, Image.Image) and item.image.mode == "RGB"
    assert item.image.size == (64, 64)
    assert item.label == 17 % C and isinstance(item.label, int)
    assert item.mask.dtype == bool and item.mask.shape == (64, 64)
    assert item.name == "shapes-3-17"
    assert ds[-1].name == "shapes-3-24"
    with pytest.raises(IndexError):
        ds[25]
    small = ShapesDataset(3, seed=0, size=32)
    img, lab, msk = small.arrays()
    assert img.shape == (3, 32, 32, 3) and img.dtype == np.uint8
    assert lab.dtype == np.int64 and msk.shape == (3, 32, 32) and msk.dtype == bool


def test_render_shape_contract():
    img, mask = render_shape(np.random.default_rng(0), 3, 48)
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8
    assert mask.shape == (48, 48) and mask.dtype == bool
    with pytest.raises(ValueError):
        render_shape(np.random.default_rng(0), C, 64)


def test_deterministic_and_seed_dependent():
    a = ShapesDataset(30, seed=5).arrays()
    b = ShapesDataset(30, seed=5).arrays()
    c = ShapesDataset(30, seed=6).arrays()
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[2], b[2])
    assert np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[2], c[2])


def test_access_order_independent():
    ds = ShapesDataset(20, seed=9)
    backwards = {i: ds[i] for i in reversed(range(20))}
    imgs, labels, masks = ShapesDataset(20, seed=9).arrays()
    for i in (0, 7, 19):
        assert np.array_equal(np.asarray(backwards[i].image), imgs[i])
        assert np.array_equal(backwards[i].mask, masks[i])
        assert backwards[i].label == labels[i]
    # an item does not depend on the dataset's length either
    assert np.array_equal(np.asarray(ShapesDataset(200, seed=9)[7].image), imgs[7])
    # after arrays() is cached, items come from the cache and still agree
    assert np.array_equal(np.asarray(ds[3].image), np.asarray(backwards[3].image))


def test_labels_balanced():
    _, labels, _ = ShapesDataset(10 * C, seed=1).arrays()
    assert np.bincount(labels, minlength=C).tolist() == [10] * C


def test_masks_nonempty_and_inside(sample):
    _, labels, masks = sample
    area = masks.mean(axis=(1, 2))
    assert area.min() > 0.02, "every object covers a visible part of the image"
    assert area.max() < 0.6
    border = masks[:, 0, :].any() or masks[:, -1, :].any() or masks[:, :, 0].any() or masks[:, :, -1].any()
    assert not border, "objects lie fully inside the image"


def test_mask_is_exactly_the_object():
    ds = ShapesDataset(3 * C, seed=11)
    for i in range(len(ds)):
        item = ds[i]
        with_obj = np.asarray(item.image).astype(int)
        without = ds.background(i).astype(int)
        changed = (with_obj != without).any(axis=2)
        assert not changed[~item.mask].any(), "drawing the object touches nothing outside its mask"
        assert changed[item.mask].mean() > 0.95, "the object covers the mask"
        # and it stands out from the background it replaced
        diff = np.abs(with_obj - without).sum(axis=2)[item.mask]
        assert np.median(diff) > 60


def _nearest_centroid_accuracy(train_x, train_y, test_x, test_y):
    centroids = np.stack([train_x[train_y == k].mean(0) for k in range(C)])
    pred = np.argmin(((test_x[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    return float((pred == test_y).mean())


def test_colour_and_position_do_not_classify(sample):
    imgs, labels, masks = sample
    imgs2, labels2, masks2 = ShapesDataset(400, seed=8).arrays()

    def image_mean(x):
        return x.reshape(len(x), -1, 3).mean(1)

    def object_mean(x, m):
        return np.stack([x[i][m[i]].mean(0) for i in range(len(x))])

    def centroid(m):
        yy, xx = np.mgrid[: m.shape[1], : m.shape[2]]
        a = m.sum((1, 2))
        return np.stack([(m * yy).sum((1, 2)) / a, (m * xx).sum((1, 2)) / a], 1)

    chance = 1 / C
    for f_train, f_test in [
        (image_mean(imgs), image_mean(imgs2)),
        (object_mean(imgs, masks), object_mean(imgs2, masks2)),
        (centroid(masks), centroid(masks2)),
    ]:
        acc = _nearest_centroid_accuracy(f_train, labels, f_test, labels2)
        assert acc < chance + 0.1, acc


def test_images_are_cluttered(sample):
    imgs, _, masks = sample
    bg_std = np.array([imgs[i][~masks[i]].std(0).mean() for i in range(len(imgs))])
    assert np.median(bg_std) > 20, "backgrounds are not flat"
    # many distinct colours in the background (gradient + strokes + noise)
    n_colours = len(np.unique(imgs[0][~masks[0]].reshape(-1, 3), axis=0))
    assert n_colours > 500


# ----------------------------------------------------------------------------- network


def test_architecture_mirrors_alexnet():
    from torchvision.models import AlexNet

    net, ref = ShapesNet(), AlexNet(num_classes=C)
    for ours, theirs in [(net.features, ref.features), (net.classifier, ref.classifier)]:
        assert [type(m) for m in ours] == [type(m) for m in theirs]
    assert type(net.avgpool) is type(ref.avgpool)
    modules = dict(net.named_modules())
    for layer, path in LAYER_NAMES.items():
        assert isinstance(modules[path], torch.nn.ReLU) or layer == "fc8"
        assert not getattr(modules[path], "inplace", False)
    assert isinstance(modules[LAYER_NAMES["fc8"]], torch.nn.Linear)
    k = net.features[0].kernel_size[0]
    assert 7 <= k <= 11
    out = net.eval()(torch.zeros(2, 3, INPUT_SIZE, INPUT_SIZE))
    assert out.shape == (2, C)
    assert len(MEAN) == 3 and len(STD) == 3


def test_weights_file_small_and_float32_on_load():
    assert WEIGHTS_PATH.stat().st_size <= 2 * 1024 * 1024
    sd = load_shapes_state_dict()
    assert all(v.dtype == torch.float32 for v in sd.values())
    net = build_shapes_net()
    assert not net.training


def _normalise(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images.copy()).permute(0, 3, 1, 2).float() / 255
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def test_heldout_accuracy():
    imgs, labels, _ = ShapesDataset(300, seed=TEST_SEED).arrays()
    net = build_shapes_net()
    with torch.no_grad():
        pred = net(_normalise(imgs)).argmax(1).numpy()
    acc = float((pred == labels).mean())
    assert acc >= 0.97, acc


def test_filter_smoothness_measure():
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(16, 3, 9, 9, generator=g)
    yy, xx = torch.meshgrid(torch.arange(9.0), torch.arange(9.0), indexing="ij")
    ramp = (xx + 0.5 * yy).expand(16, 3, 9, 9)
    assert 0.8 < filter_smoothness(noise) < 1.2
    assert filter_smoothness(ramp) < 0.1
    with pytest.raises(ValueError):
        filter_smoothness(torch.zeros(3, 9, 9))


def test_trained_conv1_smoother_than_init():
    trained = build_shapes_net().features[0].weight
    torch.manual_seed(0)
    fresh = ShapesNet().features[0].weight
    s_trained, s_fresh = filter_smoothness(trained), filter_smoothness(fresh)
    assert s_trained < 0.6 * s_fresh, (s_trained, s_fresh)


def test_conv1_snapshots():
    raw = torch.load(SNAPSHOTS_PATH, map_location="cpu", weights_only=True)
    assert isinstance(raw, list) and len(raw) >= 5
    snaps = load_conv1_snapshots()
    steps = [s["step"] for s in snaps]
    assert steps[0] == 0 and steps == sorted(set(steps))
    shipped = load_shapes_state_dict()["features.0.weight"]
    assert all(s["weight"].shape == shipped.shape for s in snaps)
    # the first is the initialisation: train_shapes seeds torch with 0 and builds ShapesNet first
    torch.manual_seed(0)
    init = ShapesNet().features[0].weight.detach()
    close_to_scale(snaps[0]["weight"], init, 1e-2)
    assert filter_smoothness(snaps[0]["weight"]) > 0.8
    # the last is the shipped conv1
    close_to_scale(snaps[-1]["weight"], shipped, 1e-3)
