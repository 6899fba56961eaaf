"""One least-recently-used map, bounded by the bytes its entries weigh, for every cache.

Every cache that a client's input can fill (parsed documents, persisted queries, HTTP
responses, verified tokens) must be bounded by what it holds, not by how many entries:
a thousand 5 MB documents are a thousand entries. Each entry is weighed once, when it is
stored, by the cost the caller gives; an entry heavier than the whole bound is not kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ByteLRU(Generic[K, V]):
    """A map that forgets its least recently used entries once they weigh over `max_bytes`."""

    def __init__(self, max_bytes: int, max_entries: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.size = 0
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: K) -> bool:
        return key in self._entries

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: K, value: V, cost: int) -> None:
        """Keep `value` under `key`; `cost` is what it weighs, in bytes (at least 1)."""
        cost = max(1, cost)
        if cost > self.max_bytes:
            self.pop(key)
            return
        self.pop(key)
        self._entries[key] = (value, cost)
        self.size += cost
        while self.size > self.max_bytes or (
            self.max_entries is not None and len(self._entries) > self.max_entries
        ):
            _, (_, evicted) = self._entries.popitem(last=False)
            self.size -= evicted

    def pop(self, key: K) -> V | None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        self.size -= entry[1]
        return entry[0]

    def clear(self) -> None:
        self._entries.clear()
        self.size = 0
