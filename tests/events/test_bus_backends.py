"""The bus's own broadcaster backends, against real Redis and PostgreSQL.

Each is used through broadcaster's `Broadcast(backend=...)` once, to show it stays a
broadcaster backend; the other tests drive it the way events/bus.py does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import asyncpg
import pytest
from broadcaster import Broadcast, BroadcastBackend, Event
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from gql_feed.events.backends import (
    BusOverflow,
    Inbox,
    MemoryBackend,
    PostgresBackend,
    RedisBackend,
    backend_for,
)
from gql_feed.events.bus import EventBus
from tests.helpers.services import (
    fresh_postgres_database,
    postgres_notify_url,
    redis_url,
    unique_channel,
)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield postgres_notify_url(url)


def with_name(url: str, key: str) -> tuple[str, str]:
    """The URL with a connection name of its own, so a test can find and cut just it."""
    name = f"gql_feed_bus_test_{uuid.uuid4().hex[:12]}"
    return f"{url}?{key}={name}", name


async def connected(backend: BroadcastBackend, channel: str) -> BroadcastBackend:
    await backend.connect()
    await backend.subscribe(channel)
    return backend


async def next_message(backend: BroadcastBackend) -> str:
    async with asyncio.timeout(5):
        event = await backend.next_published()
    return event.message


BACKENDS = [
    "memory",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def bus_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "redis":
        return redis_url()
    return str(request.getfixturevalue("postgres_url"))


async def test_a_broadcaster_backend_under_broadcast(bus_url: str) -> None:
    channel = unique_channel()
    broadcast = Broadcast(backend=backend_for(bus_url))
    async with broadcast, broadcast.subscribe(channel) as subscriber:
        await broadcast.publish(channel, "hello")
        async with asyncio.timeout(5):
            event = await subscriber.get()
    assert event == Event(channel, "hello")


async def test_messages_arrive_in_order(bus_url: str) -> None:
    channel = unique_channel()
    backend = await connected(backend_for(bus_url), channel)
    try:
        for number in range(20):
            await backend.publish(channel, f"m{number}")
        assert [await next_message(backend) for _ in range(20)] == [f"m{n}" for n in range(20)]
    finally:
        await backend.disconnect()


def test_unknown_schemes_are_refused() -> None:
    with pytest.raises(ValueError, match="kafka"):
        backend_for("kafka://localhost:9092")
    with pytest.raises(ValueError, match="redis-stream"):
        EventBus("redis-stream://localhost", "c", on_message=_nothing, on_connected=_nothing)


async def _nothing(*_: object) -> None:
    return None


async def test_the_inbox_is_bounded() -> None:
    inbox = Inbox(limit=3)
    for number in range(3):
        inbox.put(Event("c", str(number)))
    assert (await inbox.get()).message == "0"
    inbox.put(Event("c", "3"))
    inbox.put(Event("c", "4"))  # a fourth one waiting: too many
    with pytest.raises(BusOverflow):
        await inbox.get()
    inbox.put(Event("c", "5"))  # ignored: the stream has ended
    with pytest.raises(BusOverflow):
        await inbox.get()


async def test_a_failure_wakes_a_waiting_reader() -> None:
    inbox = Inbox(limit=3)
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    inbox.fail(ConnectionError("gone"))
    with pytest.raises(ConnectionError, match="gone"):
        await asyncio.wait_for(reader, 5)


async def test_a_memory_backend_that_falls_behind_ends() -> None:
    channel = unique_channel()
    backend = await connected(MemoryBackend("memory://", max_queued=5), channel)
    for number in range(6):
        await backend.publish(channel, str(number))
    with pytest.raises(BusOverflow):
        await backend.next_published()


@pytest.mark.redis
async def test_a_lost_redis_connection_surfaces() -> None:
    """redis-py would reconnect and resubscribe by itself, losing what was sent meanwhile."""
    url, name = with_name(redis_url(), "client_name")
    channel = unique_channel()
    backend = await connected(RedisBackend(url), channel)
    admin = Redis.from_url(redis_url())
    try:
        await backend.publish(channel, "before")
        assert await next_message(backend) == "before"
        clients = await admin.client_list()
        killed = [client["id"] for client in clients if client.get("name") == name]
        assert killed
        for client_id in killed:
            await admin.client_kill_filter(_id=client_id)
        with pytest.raises(RedisConnectionError):
            await next_message(backend)
    finally:
        await admin.aclose()
        await backend.disconnect()


@pytest.mark.postgres
async def test_a_lost_postgres_connection_surfaces(postgres_url: str) -> None:
    url, name = with_name(postgres_url, "application_name")
    channel = unique_channel()
    backend = await connected(PostgresBackend(url), channel)
    admin = await asyncpg.connect(postgres_url)
    try:
        await backend.publish(channel, "before")
        assert await next_message(backend) == "before"
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            name,
        )
        with pytest.raises(ConnectionError):
            await next_message(backend)
    finally:
        await admin.close()
        await backend.disconnect()


@pytest.mark.postgres
async def test_concurrent_postgres_publishes_take_turns(postgres_url: str) -> None:
    """One asyncpg connection runs one statement at a time: the heartbeat and events share it."""
    channel = unique_channel()
    backend = await connected(PostgresBackend(postgres_url), channel)
    try:
        await asyncio.gather(*(backend.publish(channel, str(n)) for n in range(20)))
        received = {await next_message(backend) for _ in range(20)}
        assert received == {str(n) for n in range(20)}
    finally:
        await backend.disconnect()


class Recorder:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.connects = 0

    async def on_message(self, message: str) -> None:
        self.messages.append(message)

    async def on_connected(self) -> None:
        self.connects += 1


async def eventually(check: Callable[[], bool], seconds: float = 15.0) -> None:
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.05)


@pytest.fixture
async def redis_bus() -> AsyncIterator[tuple[EventBus, Recorder, str, Redis]]:
    url, name = with_name(redis_url(), "client_name")
    recorder = Recorder()
    bus = EventBus(
        url,
        unique_channel(),
        recorder.on_message,
        recorder.on_connected,
        heartbeat_seconds=0.2,
        silence_seconds=2.0,
    )
    admin = Redis.from_url(redis_url())
    await bus.start()
    try:
        yield bus, recorder, name, admin
    finally:
        await bus.stop()
        await admin.aclose()


@pytest.mark.redis
async def test_the_bus_reconnects_and_asks_for_a_catch_up(
    redis_bus: tuple[EventBus, Recorder, str, Redis],
) -> None:
    bus, recorder, name, admin = redis_bus
    await eventually(lambda: bus.connected.is_set() and recorder.connects == 1)
    for client in await admin.client_list():
        if client.get("name") == name:
            await admin.client_kill_filter(_id=client["id"])
    # A new subscription, and the hub told to fill its gap from the log.
    await eventually(lambda: recorder.connects == 2 and bus.connected.is_set())
    await admin.publish(bus.channel, "after the cut")
    await eventually(lambda: "after the cut" in recorder.messages)
