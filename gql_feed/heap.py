"""Garbage-collector settings for a server that keeps thousands of sockets alive.

CPython's cyclic collector walks every tracked object of a generation. After start-up
the heap holds a large, permanent object graph (the schema, graphql-core's and
SQLAlchemy's structures, compiled statements), and while thousands of clients connected
full collections walked all of it again and again: 150-200 ms each with the event loop
stopped, which is a fan-out to thousands of subscribers delayed by that much. `settle`
collects once and then freezes what start-up built (`gc.freeze`), so collections only
walk what came later. It also raises the youngest generation's threshold, so the
objects of thousands of connects are promoted in tens of passes instead of hundreds.
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
