"""Batch sizes come from a memory budget: the arithmetic, the measured cost of one image,
and the techniques that use it giving the same answer whatever batch the budget allows."""

from __future__ import annotations

import pytest
import torch

from cnnviz_widgets.engine.core import memory


def test_parse_bytes_units_and_errors():
    assert memory.parse_bytes("512MB") == 512 * 2**20
    assert memory.parse_bytes("1.5 GB") == int(1.5 * 2**30)
    assert memory.parse_bytes("300m") == 300 * 2**20
    assert memory.parse_bytes(4096) == 4096
    for bad in ("lots", "12 parsecs", "-5MB", 0, "0"):
        with pytest.raises(ValueError, match="memory size"):
            memory.parse_bytes(bad)


def test_budget_from_the_environment(monkeypatch):
    monkeypatch.delenv("CNNVIZ_MEMORY_BUDGET", raising=False)
    assert memory.memory_budget() == memory.DEFAULT_BUDGET
    monkeypatch.setenv("CNNVIZ_MEMORY_BUDGET", "1GB")
    assert memory.memory_budget() == 2**30
    monkeypatch.setenv("CNNVIZ_MEMORY_BUDGET", "a lot")
    with pytest.raises(ValueError, match="CNNVIZ_MEMORY_BUDGET"):
        memory.memory_budget()


def test_batch_size_for_is_the_budget_over_the_cost_within_bounds():
    mb = 2**20
    assert memory.batch_size_for(10 * mb, budget=256 * mb) == 25
    assert memory.batch_size_for(10 * mb, budget=256 * mb, most=8) == 8
    assert memory.batch_size_for(300 * mb, budget=256 * mb) == 1      # one image always runs
    assert memory.batch_size_for(1, budget="1GB") == 64                 # the default cap
    with pytest.raises(ValueError, match="bytes_per_image"):
        memory.batch_size_for(0)
    with pytest.raises(ValueError, match="most"):
        memory.batch_size_for(mb, most=0)


def test_backward_cost_is_the_saved_tensors_of_one_image(shapes_net):
    # Saved tensors scale with the pixels: at twice the side, about four times the cost
    # (the weights, saved once per batch, are left out by the batch-of-two difference).
    small = memory.image_cost(shapes_net, 64, backward=True)
    large = memory.image_cost(shapes_net, 128, backward=True)
    assert 3.3 < large / small < 4.7, (small, large)
    # and a backward costs more than a forward without gradients
    assert memory.image_cost(shapes_net, 64, backward=False) < small
    # cached: the same number without a second measurement
    assert memory.image_cost(shapes_net, 64, backward=True) == small


def test_effnet_backward_cost_matches_its_activations(effnet):
    # Independent count: every layer output of one forward is at least what autograd
    # must keep of it (roughly: a few layers save their input rather than their output).
    outputs = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: outputs.append(o.numel() * o.element_size()))
             for m in effnet.modules() if next(m.children(), None) is None]
    try:
        with torch.no_grad():
            effnet(torch.zeros(1, 3, 224, 224))
    finally:
        for h in hooks:
            h.remove()
    cost = memory.image_cost(effnet, 224, backward=True)
    assert 0.5 * sum(outputs) < cost < 2.5 * sum(outputs), (cost, sum(outputs))
    assert memory.batch_size(effnet, backward=True, budget="256MB") == 256 * 2**20 // cost


def test_saliency_and_smoothgrad_agree_across_budgets(shapes_net, shapes_data, monkeypatch):
    from cnnviz_widgets.engine.attribution.base import smoothgrad
    from cnnviz_widgets.engine.attribution.saliency import saliency

    images, labels, _ = shapes_data.arrays()
    x = torch.from_numpy(images[:6].copy()).permute(0, 3, 1, 2).float() / 255
    target = labels[:6].tolist()
    maps = {}
    for budget in ("256MB", "1KB"):  # generous, and one image at a time
        monkeypatch.setenv("CNNVIZ_MEMORY_BUDGET", budget)
        maps[budget] = (saliency(shapes_net, x, target).map,
                        smoothgrad(saliency, shapes_net, x, target, samples=3, seed=1).map)
    for a, b in zip(maps["256MB"], maps["1KB"]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(a.abs().max()))
