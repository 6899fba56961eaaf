"""The publish's trace context travels with the event over Redis and PostgreSQL NOTIFY,
inline and as an id, and adds nothing to the message when tracing is off."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import get_current_span

from gql_feed.events import payload, trace_context
from gql_feed.events.backends import RedisBackend
from gql_feed.events.bus import bus_message
from gql_feed.events.hub import EventHub, HubEvent
from gql_feed.observability.tracing import TRACER
from gql_feed.storage import event_log
from gql_feed.storage.database import Database, migrate
from gql_feed.storage.event_log import LoggedEvent
from tests.helpers.server import LiveServer
from tests.helpers.services import (
    fresh_postgres_database,
    postgres_notify_url,
    redis_url,
    unique_channel,
)
from tests.helpers.spans import spans

__all__ = ["spans"]


class Arrivals:
    """A hub's sink that can be waited on, event by event."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[HubEvent] = asyncio.Queue()

    async def deliver(self, event: HubEvent) -> None:
        self.events.put_nowait(event)

    async def next(self) -> HubEvent:
        return await asyncio.wait_for(self.events.get(), 10)


@dataclass
class Buses:
    """Two processes' hubs on one log and one bus: what reaches `receiver` came over the
    bus (or, for an event sent as its id, from the log it named)."""

    db: Database
    sender: EventHub
    receiver: EventHub
    arrivals: Arrivals


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def bus_and_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "redis":
        yield redis_url(), f"sqlite+aiosqlite:///{tmp_path / 'feed.db'}"
        return
    with fresh_postgres_database() as url:
        yield postgres_notify_url(url), url


@pytest.fixture
async def buses(bus_and_database: tuple[str, str]) -> AsyncIterator[Buses]:
    bus_url, database_url = bus_and_database
    db = Database.open(database_url)
    await migrate(db.engine)
    channel = unique_channel()
    sender = EventHub(db, bus_url, channel, poll_seconds=60)
    receiver = EventHub(db, bus_url, channel, poll_seconds=60)
    arrivals = Arrivals()
    receiver.add_sink(arrivals)
    await sender.start()
    await receiver.start()
    try:
        async with asyncio.timeout(10):
            await sender.bus.connected.wait()
            await receiver.bus.connected.wait()
        # The receiver reads the log once connected; once a first event has reached it,
        # that is done, and what comes next comes over the bus.
        await sender.publish(await log(db, "first"))
        await arrivals.next()
        yield Buses(db, sender, receiver, arrivals)
    finally:
        await sender.stop()
        await receiver.stop()
        await db.close()


async def log(db: Database, content: str) -> LoggedEvent:
    now = datetime.now(UTC)
    async with db.write() as session, session.begin():
        return await event_log.append(
            session,
            action="CREATED",
            post_id=1,
            occurred_at=now,
            body={
                "v": 1,
                "action": "CREATED",
                "occurredAt": now.isoformat(),
                "post": {"id": 1, "title": "A title", "content": content},
            },
        )


@pytest.mark.parametrize(
    "content", [pytest.param("inline", id="inline"), pytest.param("a" * 8_400, id="as its id")]
)
async def test_the_publish_context_reaches_the_other_process(
    spans: InMemorySpanExporter, buses: Buses, content: str
) -> None:
    with TRACER.start_as_current_span("createPost") as mutation:
        event = await log(buses.db, content)
        await buses.sender.publish(event)
    arrived = await buses.arrivals.next()

    assert arrived.id == event.id
    assert arrived.payload == event.payload  # the log's text, the context cut off
    assert arrived.trace is not None
    carried = get_current_span(arrived.trace).get_span_context()
    trace_id = mutation.get_span_context().trace_id
    (publish,) = [
        span
        for span in spans.get_finished_spans()
        if span.name.startswith("publish") and span.context and span.context.trace_id == trace_id
    ]
    assert publish.context is not None
    assert carried.is_remote
    assert carried.trace_id == mutation.get_span_context().trace_id
    assert carried.span_id == publish.context.span_id


@pytest.mark.redis
async def test_no_bytes_are_added_when_tracing_is_off(
    live_server_factory: Any, tmp_path: Path
) -> None:
    """A server that traces nothing (no OTEL_* variables) publishes the log's text as is."""
    channel = unique_channel()
    listener = RedisBackend(redis_url())
    await listener.connect()
    await listener.subscribe(channel)
    try:
        server: LiveServer = await asyncio.to_thread(
            live_server_factory,
            GQL_FEED_BROADCAST_URL=redis_url(),
            GQL_FEED_BROADCAST_CHANNEL=channel,
        )
        token, _ = await asyncio.to_thread(server.signup_and_login)
        await asyncio.to_thread(server.create_post, token, "Untraced")
        async with asyncio.timeout(10):
            while (message := (await listener.next_published()).message) == "hb":
                pass
    finally:
        await listener.disconnect()
    db = Database.open(server.env["GQL_FEED_DATABASE_URL"])
    try:
        async with db.read() as session:
            (stored,) = await event_log.read_after(session, 0, 10)
    finally:
        await db.close()
    assert message == stored.payload
    assert "otel" not in message


# Messages as a tracing publisher sends them, byte for byte: a reader of an older deploy
# (which knows nothing of the context) must still read them, and a reader of this one
# must hand on exactly the text the log stores.
STORED = (
    '{"id":4,"v":1,"action":"DELETED","occurredAt":"2024-05-01T10:00:00+00:00",'
    '"post":{"id":3,"title":"T","content":"C","imageName":"i.png",'
    '"createdAt":"2024-05-01T09:00:00+00:00","updatedAt":"2024-05-01T09:00:00+00:00",'
    '"creator":{"id":1,"name":"Ann","status":"I am new!","createdAt":"2024-05-01T08:00:00+00:00"}}}'
)
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
INLINE = STORED[:-1] + ',"otel":{"traceparent":"' + TRACEPARENT + '"}}'
BY_ID = '{"id":4,"otel":{"traceparent":"' + TRACEPARENT + '"}}'


def test_a_message_with_a_context_is_what_the_publisher_sends() -> None:
    event = LoggedEvent(4, STORED)
    assert bus_message(event) == STORED
    assert bus_message(event, {"traceparent": TRACEPARENT}) == INLINE
    assert bus_message(LoggedEvent(4, "x" * 7_000), {"traceparent": TRACEPARENT}) == BY_ID


def test_an_older_reader_reads_a_message_with_a_context() -> None:
    assert payload.read(INLINE)["post"]["creator"]["name"] == "Ann"
    assert payload.event_id(BY_ID) == 4  # it then reads event 4 from the log


def test_this_reader_cuts_the_context_off() -> None:
    assert trace_context.detach(INLINE)[0] == STORED
    assert trace_context.detach(BY_ID)[0] == "#4"
    assert trace_context.detach(STORED) == (STORED, None)
    assert trace_context.detach("#4") == ("#4", None)
