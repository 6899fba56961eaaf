"""One least-recently-used map, bounded by the bytes its entries weigh, for every cache.

Every cache that a client's input can fill (parsed documents, persisted queries, HTTP
responses, verified tokens) must be bounded by what it holds, not by how many entries:
a thousand 5 MB documents are a thousand entries. Each entry is weighed once, when it is
stored, by the cost the caller gives; an entry heavier than the whole bound is not kept.
The map is cachetools' size-weighted `LRUCache`, each value stored with its weight.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

from cachetools import LRUCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _weight(entry: tuple[object, int]) -> int:
    return entry[1]


class ByteLRU(Generic[K, V]):
    """A map that forgets its least recently used entries once they weigh over `max_bytes`
    (or, with `max_entries`, once there are more of them)."""

    def __init__(self, max_bytes: int, max_entries: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._entries: LRUCache[K, tuple[V, int]] = LRUCache(max_bytes, getsizeof=_weight)

    @property
    def size(self) -> int:
        """What the entries weigh together, in bytes."""
        return int(self._entries.currsize)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: K) -> bool:
        return key in self._entries

    def get(self, key: K) -> V | None:
        try:
            return self._entries[key][0]  # a hit costs one lookup less than `.get`
        except KeyError:
            return None

    def put(self, key: K, value: V, cost: int) -> None:
        """Keep `value` under `key`; `cost` is what it weighs, in bytes (at least 1)."""
        cost = max(1, cost)
        if cost > self.max_bytes:
            self._entries.pop(key, None)
            return
        self._entries[key] = (value, cost)
        if self.max_entries is not None:
            while len(self._entries) > self.max_entries:
                self._entries.popitem()

    def pop(self, key: K) -> V | None:
        entry = self._entries.pop(key, None)
        return None if entry is None else entry[0]

    def clear(self) -> None:
        self._entries.clear()
