"""Events too large for a PostgreSQL NOTIFY travel as their id, through a real NOTIFY.

PostgreSQL refuses a NOTIFY payload of 8,000 bytes or more, and a post's content alone may
reach 20 KB in UTF-8 (5,000 four-byte characters). The sizes here are fixed figures, not
taken from the code's own constant: an event of about 8,500 bytes, one of about 20 KB,
and one of about 6,900 bytes that still goes inline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest

from gql_feed.events import trace_context
from gql_feed.events.backends import PostgresBackend
from gql_feed.events.bus import bus_message
from gql_feed.events.hub import EventHub, HubEvent
from gql_feed.storage import event_log
from gql_feed.storage.database import Database, migrate
from gql_feed.storage.event_log import LoggedEvent
from tests.helpers.services import fresh_postgres_database, postgres_notify_url, unique_channel

pytestmark = pytest.mark.postgres


class Sink:
    def __init__(self) -> None:
        self.events: list[HubEvent] = []

    async def deliver(self, event: HubEvent) -> None:
        self.events.append(event)


class Scene:
    """Two hubs on one PostgreSQL database and NOTIFY channel, and a raw listener on it.

    The hubs poll the log once a minute only, so what reaches the second one within
    seconds came over the bus.
    """

    def __init__(self, db: Database, bus_url: str) -> None:
        channel = unique_channel()
        self.db = db
        self.sender = EventHub(db, bus_url, channel, poll_seconds=60)
        self.receiver = EventHub(db, bus_url, channel, poll_seconds=60)
        self.received = Sink()
        self.receiver.add_sink(self.received)
        self.listener = PostgresBackend(bus_url)
        self.channel = channel

    async def log(self, content: str) -> LoggedEvent:
        now = datetime.now(UTC)
        async with self.db.write() as session, session.begin():
            return await event_log.append(
                session,
                action="CREATED",
                post_id=1,
                occurred_at=now,
                body={
                    "action": "CREATED",
                    "occurredAt": now.isoformat(),
                    "post": {"id": "1", "title": "A title", "content": content},
                },
            )

    async def heard(self) -> str:
        """The next message on the channel that is not a heartbeat, without the trace
        context it carries when this process traces (tests/observability)."""
        async with asyncio.timeout(10):
            while True:
                message = (await self.listener.next_published()).message
                if message != "hb":
                    return trace_context.detach(str(message))[0]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
async def scene(postgres_url: str) -> AsyncIterator[Scene]:
    db = Database.open(postgres_url)
    await migrate(db.engine)
    scene = Scene(db, postgres_notify_url(postgres_url))
    await scene.listener.connect()
    await scene.listener.subscribe(scene.channel)
    await scene.sender.start()
    await scene.receiver.start()
    try:
        async with asyncio.timeout(10):
            await scene.sender.bus.connected.wait()
            await scene.receiver.bus.connected.wait()
        yield scene
    finally:
        await scene.sender.stop()
        await scene.receiver.stop()
        await scene.listener.disconnect()
        await db.close()


@pytest.mark.parametrize(
    ("content", "smallest"),
    [
        pytest.param("a" * 8_400, 8_500, id="8.5 KB"),
        pytest.param("\U0001f600" * 5_000, 20_000, id="20 KB of four-byte characters"),
    ],
)
async def test_a_large_event_travels_as_its_id(scene: Scene, content: str, smallest: int) -> None:
    event = await scene.log(content)
    assert len(event.payload.encode()) >= smallest
    # Sent whole, the NOTIFY would fail: the publish would report False, and the bus
    # would end its connection and announce the id only after reconnecting.
    assert await scene.sender.bus.publish(event) is True
    assert await scene.heard() == f"#{event.id}"
    async with asyncio.timeout(10):
        while not scene.received.events:
            await asyncio.sleep(0.02)
    [delivered] = scene.received.events
    assert delivered.id == event.id
    assert delivered.data["post"]["content"] == content  # read whole from the log


async def test_an_event_under_7000_bytes_travels_inline(scene: Scene) -> None:
    event = await scene.log("b" * 6_750)
    assert 6_800 <= len(event.payload.encode()) <= 7_000
    assert await scene.sender.bus.publish(event) is True
    assert await scene.heard() == event.payload
    async with asyncio.timeout(10):
        while not scene.received.events:
            await asyncio.sleep(0.02)
    assert [delivered.id for delivered in scene.received.events] == [event.id]


def test_exactly_7000_bytes_still_go_inline() -> None:
    """README: events *over* 7,000 bytes travel as their id."""
    assert bus_message(LoggedEvent(3, "é" * 3_500)) == "é" * 3_500  # 7,000 bytes
    assert bus_message(LoggedEvent(4, "é" * 3_500 + "x")) == "#4"
