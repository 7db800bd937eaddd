"""One cache for what the engine works out about a network, gone with the network.

Several techniques remember what they learnt about one network: the memory budget what
an image costs it (measured with forward passes), Grad-CAM its spatial layers (a
forward per layer to find out), lessons 02 and 03 a dataset's feature vectors at a
layer, lesson 05 a dataset's top patches. Each keeps it in `cache_for(net)`, a
`NetworkCache` held weakly for that network object: it goes when the network goes,
two networks of one name (a fresh copy, a randomised copy) never share one, and
`clear_caches()` (or `clear_caches(net)`) forgets everything in one call.

A value stored here must not hold the network itself (a value that held its own weak
key would keep it alive for ever): store tensors and plain data, and give the network
back when answering (`patches.cached_scan` does).

    costs = cache_for(net).part("image costs")       # a dict made on first use
    layers = cache_for(net).get("spatial layers")    # None until someone stores it
    cache_for(net).setdefault("spatial layers", computed)
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any, Callable, Hashable, TypeVar

import torch

__all__ = ["NetworkCache", "LRU", "cache_for", "clear_caches"]

T = TypeVar("T")


class LRU:
    """A least-recently-used map to CPU tensors, bounded in entries and in bytes (an
    entry alone over the byte bound is kept, the others go). Counts hits and misses."""

    def __init__(self, max_entries: int, max_bytes: int):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._items: OrderedDict[Hashable, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> torch.Tensor | None:
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: torch.Tensor) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries or (len(self._items) > 1 and self._nbytes() > self.max_bytes):
                self._items.popitem(last=False)

    def __contains__(self, key: Hashable) -> bool:  # no hit or miss counted: only a look
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def keys(self) -> list:
        """The keys held, least recently used first."""
        with self._lock:
            return list(self._items)

    def nbytes(self) -> int:
        with self._lock:
            return self._nbytes()

    def _nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self._items.values())

    def info(self) -> dict:
        """Entries, bytes held, hits and misses."""
        with self._lock:
            return {"entries": len(self._items), "bytes": self._nbytes(), "hits": self.hits, "misses": self.misses}


class NetworkCache:
    """What the engine has worked out about one network, by name ("image costs",
    "spatial layers", "features", "patch scans").

    `part(name, make)` is a container made once (cheaply: nothing is computed under the
    cache's lock, since computing takes the network's lock and another thread may hold
    that while it asks this cache); `get` and `setdefault` hold a value computed outside.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._parts: dict[str, Any] = {}

    def part(self, name: str, make: Callable[[], T] = dict) -> T:
        with self._lock:
            if name not in self._parts:
                self._parts[name] = make()
            return self._parts[name]

    def get(self, name: str, default: Any = None) -> Any:
        with self._lock:
            return self._parts.get(name, default)

    def setdefault(self, name: str, value: T) -> T:
        """Store `value` under `name` unless another thread stored one first; the one kept."""
        with self._lock:
            return self._parts.setdefault(name, value)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._parts)

    def clear(self) -> None:
        with self._lock:
            self._parts.clear()


# The one module-level store of per-network state: weak, so it never keeps a network alive.
_CACHES: "weakref.WeakKeyDictionary[torch.nn.Module, NetworkCache]" = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def cache_for(net: torch.nn.Module) -> NetworkCache:
    """The cache of this network object (a `Network` or any module), made on first use."""
    with _CACHES_LOCK:
        cache = _CACHES.get(net)
        if cache is None:
            cache = _CACHES[net] = NetworkCache()
        return cache


def clear_caches(net: torch.nn.Module | None = None) -> None:
    """Forget what the engine worked out about `net` (None: about every network)."""
    with _CACHES_LOCK:
        if net is None:
            caches = list(_CACHES.values())
            _CACHES.clear()
        else:
            caches = [_CACHES.pop(net)] if net in _CACHES else []
    for cache in caches:
        cache.clear()
