"""The newest committed event id: the version of all the data, read by many at the price of one.

Every change commits one event id, gapless and in commit order (`storage.event_log`), so
the log's newest id names the version of everything a read can see. A cache that wants
to know "has anything changed since I computed this?" asks here. Concurrent callers share
one query, but a caller only ever joins a query that *begins after it asked*: the answer
then covers every commit that finished before the caller asked, which is what lets a
cached read be as fresh as a read of the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import Connection, func, select

from gql_feed.storage.database import Database
from gql_feed.storage.models import PostEventRow

_NEWEST = select(func.max(PostEventRow.id))


def newest_event_id(connection: Connection) -> int:
    return int(connection.scalar(_NEWEST) or 0)


class LogVersion:
    """`await newest()`: the log's newest id, as of some moment after the call began."""

    def __init__(self, read: Callable[[], Awaitable[int]]) -> None:
        self._read = read
        self._next: asyncio.Future[int] | None = None
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    def of(cls, db: Database) -> LogVersion:
        return cls(lambda: db.run_read(newest_event_id))

    async def newest(self) -> int:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        waiting = self._next
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_for_waiters())
        return await asyncio.shield(waiting)

    async def _read_for_waiters(self) -> None:
        """Answer everyone who asked before this read began; then the next batch, if any."""
        try:
            while self._next is not None:
                waiting, self._next = self._next, None
                try:
                    waiting.set_result(await self._read())
                except Exception as error:
                    waiting.set_exception(error)
                    # Nobody may be awaiting it any more; the error is theirs, not ours.
                    waiting.exception()
                except BaseException:
                    waiting.cancel()
                    raise
        finally:
            self._reader = None
            if self._next is not None:
                self._next.cancel()
                self._next = None
