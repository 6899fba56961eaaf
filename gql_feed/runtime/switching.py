"""How soon a worker thread gets the GIL back from a busy event loop.

The loop and its worker threads (the SQLite writer, image checks, password hashes) take
turns holding the GIL. A thread that gives it up for I/O or C work and wants it back
while the loop runs waits for CPython's switch interval, 5 ms by default, before the
loop is asked to let go. A createPost's transaction on the writer's thread does that
several times, and beside busy readers each time cost the full 5 ms: the transaction took
five times as long as alone, and every write queued behind it for the one writer
thread. At 0.1 ms (`GQL_FEED_SWITCH_INTERVAL_SECONDS`) the loop lets go sooner; it costs
nothing while no thread wants the GIL (bench/README.md, "Writes first").

The interval belongs to the process: every app in it holds the same one
(`runtime.process_wide`), set by the first to start and put back by the last to stop.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from gql_feed.runtime.process_wide import ProcessWide, Restore

SWITCH_INTERVAL_SECONDS = 0.0001


def _apply(seconds: float) -> Restore:
    before = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    return lambda: sys.setswitchinterval(before)


SWITCH_INTERVAL: ProcessWide[float] = ProcessWide("the GIL switch interval", _apply)


@contextmanager
def prompt_threads(seconds: float = SWITCH_INTERVAL_SECONDS) -> Iterator[None]:
    """While inside, threads wait at most `seconds` for the GIL."""
    with SWITCH_INTERVAL.held(seconds):
        yield
