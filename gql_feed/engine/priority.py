"""Writes first: while a mutation is under way, queries start a few per turn of the loop.

A read of a page runs start to finish in one turn of the event loop (SQLite is read
right there, `storage.database`), and a busy reader keeps several in every turn. A
createPost is many short steps with waits between them (the upload, the image check on
a thread, the write on the writer's thread, the publish), and each step, once ready,
waits for the rest of its turn: behind every read that arrived meanwhile. With eight
readers at full speed that cut createPost to a third of its pace.

So while any write is in flight, reads start at `reads_per_turn` per turn of the loop
(0.25: one every fourth turn), in arrival order; the others wait. A write's next step then
waits behind at most that many reads, and a turn without a read to run is short: when
the writes are only waiting (for a thread, for the database), turns follow each other
quickly and reads flow. When no write is in flight, reads start at once and nothing is
counted. Reads are never refused and never starved.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from graphql import FieldNode, OperationType

from gql_feed.engine.analysis import DocumentAnalysis
from gql_feed.services.tokens import Claims


class WritesFirst:
    def __init__(self, reads_per_turn: float) -> None:
        if not reads_per_turn > 0:
            raise ValueError("reads_per_turn must be more than 0")
        self.reads_per_turn = reads_per_turn
        # Reads that may start now; each turn adds `reads_per_turn`, up to a turn's worth
        # (or one, for a fraction).
        self._most = max(reads_per_turn, 1.0)
        self._credit = self._most
        self.writes = 0
        self._turn_scheduled = False
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
                self._credit = self._most
                self._release_all()

    async def read(self) -> None:
        """Return when a read may start."""
        if not self.writes and not self._waiting:
            return
        if not self._waiting and self._credit >= 1:
            self._credit -= 1
            self._next_turn_soon()
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        self._next_turn_soon()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Let through just as it was cancelled: its place goes to the next one.
                self._credit += 1
                self._next_turn_soon()
            elif waiter in self._waiting:
                self._waiting.remove(waiter)
            raise

    def _next_turn_soon(self) -> None:
        """Run `_next_turn` at the start of the next turn (callbacks scheduled now run then)."""
        if not self._turn_scheduled:
            self._turn_scheduled = True
            asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._turn_scheduled = False
        if not self.writes:
            self._credit = self._most
            self._release_all()
            return
        self._credit = min(self._credit + self.reads_per_turn, self._most)
        while self._waiting and self._credit >= 1:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._credit -= 1
        if self._waiting or self._credit < self._most:
            self._next_turn_soon()

    def _release_all(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)


# Mutations that store nothing of the feed's: not paced as writes (`is_paced_write`).
NOT_WRITES = frozenset({"login", "signup", "streamTicket", "__typename"})


def is_paced_write(
    document: DocumentAnalysis | None, operation_name: str | None, claims: Claims | None
) -> bool:
    """Whether reads should make way for this request (`WritesFirst`): a mutation
    whose body is in (the caller has it), whose document parses and whose sender's login
    verified, that writes something. False when the document does not parse or names no
    such operation (execution says why), for anyone without a login (their mutation
    fails, or signs up or logs in), and for mutations that only log in or hand out a
    stream ticket: none of those may slow everyone's reads."""
    if claims is None or document is None:
        return False
    operation = document.operation(operation_name)
    if operation is None or operation.kind is not OperationType.MUTATION:
        return False
    return any(
        not isinstance(selection, FieldNode) or selection.name.value not in NOT_WRITES
        for selection in operation.definition.selection_set.selections
    )
