"""The collector settings applied while the server runs."""

from __future__ import annotations

import gc
import weakref

from gql_feed.runtime import heap


def test_settled_freezes_start_up_objects_and_restores_the_collector_after() -> None:
    thresholds = gc.get_threshold()
    with heap.settled():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == heap.THRESHOLDS
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == thresholds


def test_cycles_left_by_closed_connections_reach_a_full_pass_under_the_settings() -> None:
    """Objects that lived long enough to reach the oldest generation, then became cyclic
    garbage (a closed connection's), are freed by the collector's own passes, without
    anyone calling gc.collect: within 400,000 allocations, not millions."""

    class Node:
        def __init__(self) -> None:
            self.me = self

    freed: list[int] = []
    with heap.settled():
        survivors = [Node() for _ in range(50_000)]
        for node in survivors[:1000]:
            # A weak callback tells when the collector frees the cycle.
            weakref.finalize(node, freed.append, 1)
        del node
        gc.collect(1)  # the survivors reach the oldest generation, as a connection's do
        survivors.clear()  # now garbage, in the oldest generation
        kept = []
        for _ in range(20):
            kept.append([[n] for n in range(20_000)])
            if len(freed) == 1000:
                break
    assert len(freed) == 1000
