"""Garbage-collector settings for a server that keeps thousands of sockets alive.

CPython's cyclic collector walks every tracked object of a generation. After start-up
the heap holds a large, permanent object graph (the schema, graphql-core's and
SQLAlchemy's structures, compiled statements), and while thousands of clients connected
full collections walked all of it again and again: 150-200 ms each with the event loop
stopped, which is a fan-out to thousands of subscribers delayed by that much.
`settled` collects once and then freezes what start-up built (`gc.freeze`), so
collections only walk what came later. It also raises the youngest generation's
threshold, so the objects of thousands of connects are promoted in tens of passes
instead of hundreds.

A closed connection leaves cycles behind (uvicorn's protocol and transport, the
WebSocket state machine, our protocol handler), and by then they sit in the oldest
generation: the connection lived through many young passes. Only a full pass frees
them. So the older generations' thresholds are lowered to match the raised young one:
CPython's defaults (700, 10, 10) allow a full pass about every 85,000 net allocations,
(20,000, 10, 10) only every 2.4 million, tens of thousands of closed connections apart
(memory grew by about 30 MB per 2,000 of them), and (20,000, 1, 1) every 180,000. CPython
still skips a full pass until the objects promoted since the last one are a quarter of
the oldest generation, which keeps their cost in proportion to the heap. A second
collection right after freezing resets that quarter to the heap left unfrozen; it would
otherwise be reckoned against everything start-up built.

`GQL_FEED_GC_THRESHOLDS` sets the thresholds; `GQL_FEED_GC_FREEZE=false` leaves the
collector alone, for an app embedded in a process that is not only this server.

The collector belongs to the process: every app in it holds the same settings
(`runtime.process_wide`), applied by the first to start and undone by the last to stop,
so two apps in one process (a test run, say) do not undo each other.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from gql_feed.runtime.process_wide import ProcessWide, Restore

THRESHOLDS = (20_000, 1, 1)

Thresholds = tuple[int, int, int]


def _apply(thresholds: Thresholds) -> Restore:
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.collect()  # walks nothing frozen; resets the oldest generation's reckoning
    gc.set_threshold(*thresholds)

    def restore() -> None:
        gc.unfreeze()
        gc.set_threshold(*before)

    return restore


COLLECTOR: ProcessWide[Thresholds] = ProcessWide("the collector's thresholds", _apply)


@contextmanager
def settled(thresholds: Thresholds = THRESHOLDS) -> Iterator[None]:
    """Enter once start-up is done; when the last app in the process leaves, the
    collector is as it was before the first entered."""
    with COLLECTOR.held(thresholds):
        yield


_pause_lock = threading.Lock()
_pausers = 0
_was_enabled = False


@contextmanager
def paused() -> Iterator[None]:
    """No collection while a big JSON body is decoded (from any thread, nested).

    orjson builds millions of objects in one call that holds the interpreter: each
    young pass promotes them, and the oldest generation's passes, each walking all of
    them, came every quarter of growth. Decoding 5 MB of `[[],[],…]` took 2.2 s that
    way, 0.6 s without: time during which the event loop cannot run either. The objects
    are freed by their reference counts once the request ends; nothing of it is cyclic.
    """
    global _pausers, _was_enabled
    with _pause_lock:
        if _pausers == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pausers += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pausers -= 1
            if _pausers == 0 and _was_enabled:
                gc.enable()
