"""The post event log: append in the change's transaction, read back for replay.

Why ids are assigned as `max(id) + 1` under a lock instead of by a sequence: sequence
values are taken at insert time but become visible at commit time, so on PostgreSQL
event 11 can commit before event 10, and a reader that resumed after 11 would skip 10
forever. Taking a transaction-scoped advisory lock right before the insert serializes
the tail of writing transactions, so ids are gapless and commit in order; SQLite
serializes writers by itself. A reader that has seen event N therefore knows that every
event up to N is committed, and a gap (N+2 arriving before N+1) always means "fetch N+1
from the log", never "wait and hope".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gql_feed.storage.models import PostEventRow

# Any constant works; it names "the event log writer lock" among advisory locks.
EVENT_LOG_LOCK_KEY = 0x6766_6565_64


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One event as stored and as sent on the bus: its id and its JSON text."""

    id: int
    payload: str


async def append(
    session: AsyncSession, *, action: str, post_id: int, occurred_at: datetime, body: dict[str, Any]
) -> LoggedEvent:
    """Insert the event as the last write of the caller's transaction and return it encoded."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENT_LOG_LOCK_KEY}
        )
    newest = await session.scalar(select(func.max(PostEventRow.id)))
    event_id = (newest or 0) + 1
    payload = orjson.dumps({"id": event_id, **body}).decode()
    session.add(
        PostEventRow(
            id=event_id, action=action, post_id=post_id, payload=payload, occurred_at=occurred_at
        )
    )
    await session.flush()
    return LoggedEvent(event_id, payload)


async def read_after(session: AsyncSession, after: int, limit: int) -> Sequence[LoggedEvent]:
    rows = await session.execute(
        select(PostEventRow.id, PostEventRow.payload)
        .where(PostEventRow.id > after)
        .order_by(PostEventRow.id)
        .limit(limit)
    )
    return [LoggedEvent(row.id, row.payload) for row in rows]


async def read_range(session: AsyncSession, after: int, upto: int) -> Sequence[LoggedEvent]:
    """Events with after < id <= upto, in order."""
    rows = await session.execute(
        select(PostEventRow.id, PostEventRow.payload)
        .where(PostEventRow.id > after, PostEventRow.id <= upto)
        .order_by(PostEventRow.id)
    )
    return [LoggedEvent(row.id, row.payload) for row in rows]


async def bounds(session: AsyncSession) -> tuple[int, int]:
    """(oldest id kept, newest id), both 0 for an empty log."""
    row = (
        await session.execute(select(func.min(PostEventRow.id), func.max(PostEventRow.id)))
    ).one()
    return (row[0] or 0, row[1] or 0)


async def prune(session: AsyncSession, keep: int) -> int:
    """Drop all but the newest `keep` events; returns how many were removed."""
    newest = await session.scalar(select(func.max(PostEventRow.id)))
    if newest is None or newest <= keep:
        return 0
    result = await session.execute(delete(PostEventRow).where(PostEventRow.id <= newest - keep))
    return int(getattr(result, "rowcount", 0) or 0)
