"""The lecture's AlexNet numbers, shown next to the embedded models' in lessons 01, 02 and
04, come from torchvision's AlexNet built on the meta device: no weights, no memory."""

from __future__ import annotations

import pytest

from cnnviz_widgets.engine.inspect.filters import first_layer_filters
from cnnviz_widgets.engine.zoo.models import architecture


def test_alexnet_architecture_has_the_lectures_shapes():
    alexnet = architecture("alexnet")
    assert tuple(first_layer_filters(alexnet).weights.shape) == (64, 3, 11, 11)
    assert alexnet.layer_shape("conv5") == (256, 13, 13)
    assert alexnet.layer_shape("fc7") == (4096,)
    assert alexnet.receptive_field("conv5").size == 163   # lesson 05's number
    # no weight is ever allocated
    assert all(p.is_meta for p in alexnet.parameters())


def test_meta_shapes_equal_a_real_forward(random_alexnet):
    alexnet = architecture("alexnet")
    for layer in alexnet.layers:
        assert alexnet.layer_shape(layer) == random_alexnet.layer_shape(layer), layer


def test_unknown_architecture_is_named():
    with pytest.raises(ValueError, match="not 'alexnett'"):
        architecture("alexnett")


def test_neuron_pairs_puts_each_patch_beside_its_picture(shapes_net, shapes_data):
    from cnnviz_widgets.engine.attribution.guided import neuron_pictures
    from cnnviz_widgets.render import fit_tile
    from cnnviz_widgets.render.guided import neuron_pairs

    x = shapes_net.preprocess(shapes_data[0].image)
    pictures = neuron_pictures(shapes_net, x, "conv2", 3, k=2)
    grid = neuron_pairs(pictures, size=80, per_row=2)
    assert grid.dtype == "uint8" and grid.shape[1] == 4 * 80 + 5 * 3   # 4 tiles, 5 gaps
    # the first tile is the first patch, enlarged in whole pixels
    assert (grid[3:83, 3:83] == fit_tile(pictures[0].crop, 80)).all()
    with pytest.raises(ValueError, match="at least one"):
        neuron_pairs([])
