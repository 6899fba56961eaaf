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

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from opentelemetry.trace import Span
from sqlalchemy import (
    Connection,
    String,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from gql_feed.observability.tracing import TRACER, tracing_on
from gql_feed.storage.models import PostEventRow

# Any constant works; it names "the event log writer lock" among advisory locks.
EVENT_LOG_LOCK_KEY = 0x6766_6565_64
_LOCK = text("SELECT pg_advisory_xact_lock(:key)")

_EVENTS = PostEventRow.metadata.tables[PostEventRow.__tablename__]
_NEXT_ID = func.coalesce(func.max(_EVENTS.c.id), 0) + 1
# One statement picks the next id and inserts the row, so the id needs no round trip of
# its own. The payload must name that id, which only the statement knows: it is spliced
# in front of the rest of the event's JSON, which is bound as text (see `_after_id`).
_APPEND = (
    insert(_EVENTS)
    .from_select(
        ["id", "action", "post_id", "payload", "occurred_at"],
        select(
            _NEXT_ID,
            bindparam("action", type_=_EVENTS.c.action.type),
            bindparam("post_id", type_=_EVENTS.c.post_id.type),
            literal('{"id":', String())
            + cast(_NEXT_ID, String())
            + bindparam("after_id", type_=String()),
            bindparam("occurred_at", type_=_EVENTS.c.occurred_at.type),
        ),
    )
    .returning(_EVENTS.c.id, _EVENTS.c.payload)
)


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One event as stored and as sent on the bus: its id and its JSON text."""

    id: int
    payload: str


async def append(
    session: AsyncSession,
    *,
    action: str,
    post_id: int,
    occurred_at: datetime,
    body: Mapping[str, object],
) -> LoggedEvent:
    """Insert the event as the last write of the caller's transaction and return it encoded.

    The payload is `{"id": <event id>, **body}` encoded by orjson, exactly as stored;
    `body` is an `events.payload.EventBody` (this layer stores it without reading it). On
    PostgreSQL the lock is a statement of its own: under READ COMMITTED a statement sees
    what had committed when it began, so the insert that reads max(id) must begin only
    once the lock is held.
    """
    with _write_span(action, post_id) as span:
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(_LOCK, {"key": EVENT_LOG_LOCK_KEY})
        row = (
            await session.execute(_APPEND, _append_parameters(action, post_id, occurred_at, body))
        ).one()
        return _logged(row.id, row.payload, span)


def append_in(
    connection: Connection,
    *,
    action: str,
    post_id: int,
    occurred_at: datetime,
    body: Mapping[str, object],
) -> LoggedEvent:
    """`append` for a write transaction run on a plain connection (`Database.run_write`):
    the same lock, statement and payload, with no hop back to the event loop."""
    with _write_span(action, post_id) as span:
        if connection.dialect.name == "postgresql":
            connection.execute(_LOCK, {"key": EVENT_LOG_LOCK_KEY})
        parameters = _append_parameters(action, post_id, occurred_at, body)
        row = connection.execute(_APPEND, parameters).one()
        return _logged(row.id, row.payload, span)


@contextlib.contextmanager
def _write_span(action: str, post_id: int) -> Iterator[Span | None]:
    """The event's write as a span of its own, a child of the current one (the mutation's);
    nothing at all when tracing is off. Its lock and insert are the database's spans."""
    if not tracing_on():
        yield None
        return
    with TRACER.start_as_current_span(
        "event_log append",
        attributes={"gql_feed.event.action": action, "gql_feed.post.id": post_id},
    ) as span:
        yield span


def _logged(event_id: int, payload: str, span: Span | None) -> LoggedEvent:
    if span is not None:
        span.set_attribute("gql_feed.event.id", event_id)
    return LoggedEvent(event_id, payload)


def _append_parameters(
    action: str, post_id: int, occurred_at: datetime, body: Mapping[str, object]
) -> dict[str, object]:
    return {
        "action": action,
        "post_id": post_id,
        "after_id": _after_id(body),
        "occurred_at": occurred_at,
    }


def _after_id(body: Mapping[str, object]) -> str:
    """The JSON of `{"id": N, **body}` from just after N on: `,"action":...}`.

    orjson writes no whitespace, so `'{"id":' + str(N) + _after_id(body)` is byte for
    byte `orjson.dumps({"id": N, **body})`.
    """
    if "id" in body:
        raise ValueError("The event log assigns the event's id; the body must not carry one.")
    encoded = orjson.dumps(body).decode()
    return "," + encoded[1:] if body else "}"


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
    """Drop all but the newest `keep` events; returns how many were removed.

    The newest event always stays, whatever `keep` says: the next id is the newest
    plus one, so an emptied log would start again at 1, and every process, already past
    those ids, would drop the new events as seen.
    """
    keep = max(keep, 1)
    newest = await session.scalar(select(func.max(PostEventRow.id)))
    if newest is None or newest <= keep:
        return 0
    result = await session.execute(delete(PostEventRow).where(PostEventRow.id <= newest - keep))
    return int(getattr(result, "rowcount", 0) or 0)
