"""The byte-bounded LRU that every cache uses, per operation: gql_feed's (cachetools'
size-weighted `LRUCache`) beside the OrderedDict map it replaced.

Each get and put is a few hundred nanoseconds either way; an executed read makes a handful
of lookups (parsed document, validation, cost, known users), a cached read one more.

python bench/lru_micro.py [--entries 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections import OrderedDict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))
from gql_feed.lru import ByteLRU


class OrderedDictLRU:
    """The map gql_feed kept by hand before it used cachetools (same bounds, same API)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[Any, tuple[Any, int]] = OrderedDict()

    def get(self, key: Any) -> Any:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: Any, value: Any, cost: int) -> None:
        cost = max(1, cost)
        self.pop(key)
        if cost > self.max_bytes:
            return
        self._entries[key] = (value, cost)
        self.size += cost
        while self.size > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.size -= evicted

    def pop(self, key: Any) -> Any:
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        self.size -= entry[1]
        return entry[0]


def nanoseconds(run: Any, calls: int) -> float:
    return min(timeit.repeat(run, number=1, repeat=7)) / calls * 1e9


def measure(make: Any, entries: int) -> tuple[float, float, float]:
    keys = [f"query Q{number} {{ posts {{ id title }} }}" for number in range(entries)]
    roomy = make(entries * 1000)
    for key in keys:
        roomy.put(key, key, 100)
    rounds = max(1, 200_000 // entries)
    hit = nanoseconds(
        lambda: [roomy.get(key) for _ in range(rounds) for key in keys], rounds * entries
    )
    misses = [key + "!" for key in keys]
    miss = nanoseconds(
        lambda: [roomy.get(key) for _ in range(rounds) for key in misses], rounds * entries
    )
    tight = make(entries * 50)  # half the entries fit: every put evicts
    put = nanoseconds(
        lambda: [tight.put(key, key, 100) for _ in range(rounds) for key in keys], rounds * entries
    )
    return hit, miss, put


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    makers = (("gql_feed.lru.ByteLRU", ByteLRU), ("OrderedDict (hand-written)", OrderedDictLRU))
    best: dict[str, list[float]] = {}
    for _ in range(args.rounds):  # alternated, best of each: the machine is shared
        for name, make in makers:
            figures = measure(make, args.entries)
            best[name] = [min(pair) for pair in zip(best.get(name, figures), figures, strict=True)]
    print(
        f"{'map':32s} {'get (hit)':>10s} {'get (miss)':>11s} {'put+evict':>10s}  ns/op, best of {args.rounds}"
    )
    for name, (hit, miss, put) in best.items():
        print(f"{name:32s} {hit:10.0f} {miss:11.0f} {put:10.0f}")


if __name__ == "__main__":
    main()
