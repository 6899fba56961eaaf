"""Publishing onto the bus: overlapping publishes, and events whose publish failed.

Both lost an event for every other process until its next poll of the log (a minute in
the scale-out tests), which is how a resumed subscriber once never saw a delete made
through another server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import orjson
import pytest

from gql_feed.events import trace_context
from gql_feed.events.bus import EventBus
from gql_feed.events.hub import EventHub
from gql_feed.storage.database import Database, migrate
from gql_feed.storage.event_log import LoggedEvent
from tests.helpers.events import Collector, log_event
from tests.helpers.services import (
    fresh_postgres_database,
    postgres_notify_url,
    redis_url,
    unique_channel,
)


async def until(check: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:  # type: ignore[operator]
        await asyncio.sleep(0.02)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.mark.postgres
async def test_overlapping_publishes_on_postgres_notify_all_arrive(postgres_url: str) -> None:
    """LISTEN/NOTIFY publishes on the listening connection: they must take turns."""
    received: list[str] = []

    async def on_message(message: str) -> None:
        received.append(message)

    async def on_connected() -> None:
        return None

    bus = EventBus(postgres_notify_url(postgres_url), unique_channel(), on_message, on_connected)
    await bus.start()
    try:
        await asyncio.wait_for(bus.connected.wait(), 10)
        events = [
            LoggedEvent(n, orjson.dumps({"id": n, "action": "CREATED"}).decode())
            for n in range(1, 41)
        ]
        results = await asyncio.gather(*(bus.publish(event) for event in events))
        assert all(results)
        await until(lambda: len(received) >= len(events), 10)
        # Without the trace context a message carries when this process traces.
        texts = [trace_context.detach(message)[0] for message in received]
        assert sorted(texts) == sorted(event.payload for event in events)
        assert bus.connected.is_set()
    finally:
        await bus.stop()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database.open(database_url)
    await migrate(database.engine)
    yield database
    await database.close()


@pytest.mark.redis
async def test_an_event_that_could_not_be_published_is_announced_once_the_bus_is_back(
    db: Database,
) -> None:
    """Process A's bus is down as it publishes; B, still connected, hears of it from A."""
    url, channel = redis_url(), unique_channel()
    a = EventHub(db, url, channel, poll_seconds=60.0)
    b = EventHub(db, url, channel, poll_seconds=60.0)
    on_a, on_b = Collector(), Collector()
    a.add_sink(on_a)
    b.add_sink(on_b)
    await a.start()
    await b.start()
    try:
        await asyncio.wait_for(a.bus.connected.wait(), 10)
        await asyncio.wait_for(b.bus.connected.wait(), 10)
        a.bus.connected.clear()  # A's connection found broken, not yet replaced
        event = await log_event(db, 1)
        await a.publish(event)
        await until(lambda: on_a.ids == [event.id], 5)
        assert on_a.ids == [event.id]
        # A reconnects (its receive loop notices within a heartbeat) and announces `#1`;
        # B, whose poll is a minute away and whose bus never dropped, reads it from the log.
        await until(lambda: on_b.ids == [event.id], 15)
        assert on_b.ids == [event.id]
        # A forgets the event once its announce has returned, which may be just after B
        # has heard it.
        await until(lambda: a._unannounced == 0, 5)
        assert a._unannounced == 0
    finally:
        await a.stop()
        await b.stop()
