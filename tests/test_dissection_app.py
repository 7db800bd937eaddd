"""Lesson 15's app, headless: the units of a concept with their IoU and top patches."""

from __future__ import annotations

import pytest

from cnnviz_widgets.engine.inspect.dissection import dissect
from cnnviz_widgets.engine.zoo.data import load_dataset
from cnnviz_widgets.engine.zoo.models import load_model
from cnnviz_widgets.widgets import DissectionApp
from tests.helpers import tiny_network

pytestmark = pytest.mark.widgets


@pytest.fixture(scope="module")
def shapes():
    data = load_dataset("shapes", n=120, seed=12345)
    data.arrays()
    return data


def test_the_app_lists_a_concepts_units_by_iou_as_the_engine_measures(shapes):
    net = load_model("shapes")
    app = DissectionApp(net, dataset=shapes, layer="conv5", concept="checker", rows=3, k=3, threaded=False)
    assert app.error == ""
    truth = dissect(net, shapes, "conv5")
    expected = truth.units_of("checker")[:3]
    assert expected, "some unit of conv5 has the checker as its best concept"
    assert app.dissection is not None and app.dissection.units_of("checker")[:3] == expected
    text = app.info.value
    assert f"<b>{truth.n_detectors}</b> of 64 units" in text and "checker" in text
    assert app.grid is not None and app.grid.shape[0] > 3 * 40 and app.view.value[:4] == b"\x89PNG"
    # Another concept answers from the same dissection, at once.
    forwards_before = app.results.copy()
    app.concept.value = "circle"
    assert app.results == forwards_before and app.error == ""
    assert "circle" in app.info.value


def test_a_layer_without_maps_and_an_unknown_concept_are_messages(shapes):
    app = DissectionApp(tiny_network(), dataset=load_dataset("shapes", n=12, seed=1), quantile=0.05, k=2,
                        threaded=False)
    assert app.error == ""
    app.layer.value = "tiny_fc"
    assert "feature maps" in app.error
    app.layer.value = "tiny_a"
    assert app.error == ""
    app.select(concept="dodecahedron")
    assert "concept must be one of" in app.error
