"""How soon a worker thread gets the GIL back from a busy event loop.

The loop and its worker threads (the SQLite writer, image checks, password hashes) take
turns holding the GIL. A thread that gives it up for I/O or C work and wants it back
while the loop runs waits for CPython's switch interval, 5 ms by default, before the
loop is asked to let go. A createPost's transaction on the writer's thread does that
several times, and beside busy readers each time cost the full 5 ms: the transaction took
five times as long as alone, and every write queued behind it for the one writer
thread. At 0.1 ms the loop lets go sooner; it costs nothing while no thread wants the GIL
(bench/README.md, "Writes first").
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

SWITCH_INTERVAL_SECONDS = 0.0001


@contextmanager
def prompt_threads() -> Iterator[None]:
    """While inside, threads wait at most `SWITCH_INTERVAL_SECONDS` for the GIL."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    try:
        yield
    finally:
        sys.setswitchinterval(before)
