"""Garbage-collector settings for a server that keeps thousands of sockets alive.

CPython's cyclic collector walks every tracked object of a generation. After start-up
the heap holds a large, permanent object graph (the schema, graphql-core's and
SQLAlchemy's tables, compiled templates), and every few thousand allocations a full
collection walked all of it again: 150-200 ms with the event loop stopped, which is a
fan-out to thousands of subscribers delayed by that much. `settle` collects once and
then freezes what start-up built (`gc.freeze`), so collections only walk what came
later, and it raises the youngest generation's threshold, since a busy fan-out
allocates many short-lived containers that reference counting frees anyway.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000


def settle() -> None:
    """Call once start-up is done: collect, then exempt the survivors from later passes."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def unsettle() -> None:
    """Call at shutdown: hand the start-up objects back to the collector."""
    gc.unfreeze()
