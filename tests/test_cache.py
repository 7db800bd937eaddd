"""The engine's one per-network cache (`engine.core.cache`): what it holds, that one call
clears it, that two networks never share it and that it never keeps a network alive."""

from __future__ import annotations

import gc
import weakref

import torch

from cnnviz_widgets.engine.attribution.gradcam import spatial_layers
from cnnviz_widgets.engine.core import memory
from cnnviz_widgets.engine.core.cache import LRU, cache_for, clear_caches
from cnnviz_widgets.engine.inspect import features as F
from cnnviz_widgets.engine.inspect import patches as P
from cnnviz_widgets.engine.zoo.data import load_dataset
from tests.helpers import tiny_network


def _fill(net, data) -> None:
    """Everything the engine remembers about a network, once each."""
    memory.image_cost(net, backward=True)
    spatial_layers(net)
    F.extract_features(net, data, "tiny_fc")
    P.max_activating_patches(net, data, "tiny_b", k=2)


def test_one_call_clears_what_every_technique_remembers_and_only_for_that_network():
    data = load_dataset("shapes", n=6, seed=1, size=32)
    a, b = tiny_network(seed=0), tiny_network(seed=1)
    _fill(a, data)
    _fill(b, data)
    held = {"image costs", "layer probes", "features", "patch scans"}
    assert set(cache_for(a).names()) == held and set(cache_for(b).names()) == held
    assert F.is_cached(a, data, "tiny_fc") and P.cached_scan(a, data, "tiny_b", 2) is not None
    # two networks of one name keep their own scans
    assert a.name == b.name
    features = [F.extract_features(net, data, "tiny_fc").vectors for net in (a, b)]
    assert not torch.equal(*features)

    clear_caches(a)
    assert cache_for(a).names() == [] and set(cache_for(b).names()) == held
    assert not F.is_cached(a, data, "tiny_fc") and P.cached_scan(a, data, "tiny_b", 2) is None
    forwards = a.model.forwards
    spatial_layers(a)  # measured again: a forward per layer
    assert a.model.forwards > forwards

    clear_caches()
    assert cache_for(b).names() == [] and not F.is_cached(b, data, "tiny_fc")


def test_the_cache_never_keeps_a_network_alive():
    data = load_dataset("shapes", n=6, seed=1, size=32)
    net = tiny_network()
    _fill(net, data)
    gone = weakref.ref(net)
    del net
    gc.collect()
    assert gone() is None


def test_the_lru_is_bounded_in_entries_and_bytes():
    cache = LRU(max_entries=2, max_bytes=10_000)
    for i in range(4):
        cache.put(("k", i), torch.zeros(10))
    assert cache.keys() == [("k", 2), ("k", 3)]
    assert cache.get(("k", 2)) is not None and cache.get(("k", 0)) is None
    assert cache.info() == {"entries": 2, "bytes": 80, "hits": 1, "misses": 1}
    cache.put(("big",), torch.zeros(5000))  # alone over the byte budget: kept, the rest go
    assert cache.keys() == [("big",)]
