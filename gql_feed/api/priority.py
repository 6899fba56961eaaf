"""Writes first: while a mutation is under way, queries start a few per turn of the loop.

A read of a page runs start to finish in one turn of the event loop (SQLite is read
right there, `storage.database`), and a busy reader keeps several in every turn. A
createPost is many short steps with waits between them (the upload, the image check on
a thread, the write on the writer's thread, the publish), and each step, once ready,
waits for the rest of its turn: behind every read that arrived meanwhile. With eight
readers at full speed that cut createPost to half its pace.

So while any write is in flight, a read may start only if fewer than `reads_per_turn`
have started in this turn of the loop; the others wait, in arrival order, for the
following turns. A write's next step then waits behind at most that many reads. When no
write is in flight, reads start at once and nothing is counted. Reads are never refused
and never starved: every turn lets `reads_per_turn` of them go.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class WritesFirst:
    def __init__(self, reads_per_turn: int) -> None:
        if reads_per_turn < 1:
            raise ValueError("reads_per_turn must be at least 1")
        self.reads_per_turn = reads_per_turn
        self.writes = 0
        self._started_this_turn = 0
        self._turn_ends_scheduled = False
        self._waiting: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[None]:
        """Hold for the whole of a write: reads are paced meanwhile."""
        self.writes += 1
        try:
            yield
        finally:
            self.writes -= 1
            if not self.writes:
                self._release(len(self._waiting))

    async def read(self) -> None:
        """Return when a read may start."""
        if not self.writes and not self._waiting:
            return
        if not self._waiting and self._started_this_turn < self.reads_per_turn:
            self._started_this_turn += 1
            self._end_turn_soon()
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        self._end_turn_soon()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Let through just as it was cancelled: give the place to the next one.
                self._release(1)
            elif waiter in self._waiting:
                self._waiting.remove(waiter)
            raise

    def _end_turn_soon(self) -> None:
        """Reset the count at the start of the next turn (callbacks scheduled now run
        then), letting the next reads in line go."""
        if not self._turn_ends_scheduled:
            self._turn_ends_scheduled = True
            asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._turn_ends_scheduled = False
        self._started_this_turn = 0
        if self._waiting:
            self._release(self.reads_per_turn if self.writes else len(self._waiting))

    def _release(self, count: int) -> None:
        released = 0
        while self._waiting and released < count:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                released += 1
        if released:
            self._started_this_turn += released
            self._end_turn_soon()
