"""Garbage-collector settings for a server that keeps thousands of sockets alive.

CPython's cyclic collector walks every tracked object of a generation. After start-up
the heap holds a large, permanent object graph (the schema, graphql-core's and
SQLAlchemy's structures, compiled statements), and while thousands of clients connected
full collections walked all of it again and again: 150-200 ms each with the event loop
stopped, which is a fan-out to thousands of subscribers delayed by that much.
`settled` collects once and then freezes what start-up built (`gc.freeze`), so
collections only walk what came later. It also raises the youngest generation's
threshold, so the objects of thousands of connects are promoted in tens of passes
instead of hundreds. `GQL_FEED_GC_FREEZE=false` leaves the collector alone, for an app
embedded in a process that is not only this server (a test run, say).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 20_000


@contextmanager
def settled() -> Iterator[None]:
    """Enter once start-up is done; on leaving, the collector is as it was."""
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
