"""The bus's backends: in memory, Redis pub/sub, PostgreSQL LISTEN/NOTIFY.

Each implements broadcaster's public `BroadcastBackend` interface (so each also works
under `broadcaster.Broadcast(backend=...)`), and differs from broadcaster's built-in ones
(0.3) where the bus needs it:

- A lost connection surfaces: `next_published` raises, and the bus's supervisor makes a
  new connection and fills the gap from the event log. broadcaster's Redis backend lets
  redis-py reconnect behind its back (what was published meanwhile is gone, unnoticed),
  and its PostgreSQL backend never notices that its connection closed.
- Nothing queues without bound. Redis messages are read off the socket only as the bus
  takes them (and Redis itself drops a subscriber that falls too far behind, see its
  `client-output-buffer-limit pubsub`). PostgreSQL hands notifications to a callback, so
  they wait in a bounded inbox; an overflow ends the connection like a loss would.
- No listener task to die silently, and no race in which a subscription hears nothing.

redis-py and asyncpg are imported by their backends when one is made, not with this
module: a server on the memory bus (the default, and most test servers) starts without
loading either.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from broadcaster import BroadcastBackend, Event

if TYPE_CHECKING:
    import asyncpg
    from redis.asyncio.client import PubSub

# Messages received but not yet taken by the bus, per connection, before it gives up on
# the connection (the event log holds them all anyway).
MAX_QUEUED = 10_000
CONNECT_SECONDS = 10.0


class BusOverflow(ConnectionError):
    """More messages arrived than the bus took: the connection is no longer trusted."""


def backend_for(url: str, max_queued: int = MAX_QUEUED) -> BroadcastBackend:
    """A new, unconnected backend for a `GQL_FEED_BROADCAST_URL`."""
    scheme = urlparse(url).scheme
    if scheme == "memory":
        return MemoryBackend(url, max_queued)
    if scheme in ("redis", "rediss"):
        return RedisBackend(url)
    if scheme in ("postgres", "postgresql"):
        return PostgresBackend(url, max_queued)
    raise ValueError(
        f"Unsupported event bus URL scheme {scheme!r}: use memory://, redis://, rediss:// "
        "or postgres://"
    )


class Inbox:
    """Events waiting to be taken, at most `limit`; or the reason the connection ended."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._events: deque[Event] = deque()
        self._failure: ConnectionError | None = None
        self._changed = asyncio.Event()

    def put(self, event: Event) -> None:
        if self._failure is not None:
            return
        if len(self._events) >= self._limit:
            self.fail(BusOverflow(f"more than {self._limit} messages waiting"))
            return
        self._events.append(event)
        self._changed.set()

    def fail(self, error: ConnectionError) -> None:
        """End the stream: the next `get` raises `error`, whatever is still waiting."""
        if self._failure is None:
            self._failure = error
            self._events.clear()
            self._changed.set()

    async def get(self) -> Event:
        while True:
            if self._failure is not None:
                raise self._failure
            if self._events:
                return self._events.popleft()
            self._changed.clear()
            await self._changed.wait()


class MemoryBackend(BroadcastBackend):
    """One process: what is published is heard by this backend's own subscription."""

    def __init__(self, url: str, max_queued: int = MAX_QUEUED) -> None:
        self._channels: set[str] = set()
        self._inbox = Inbox(max_queued)

    async def connect(self) -> None:
        return None

    async def disconnect(self) -> None:
        self._inbox.fail(ConnectionError("disconnected"))

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def publish(self, channel: str, message: Any) -> None:
        if channel in self._channels:
            self._inbox.put(Event(channel=channel, message=message))

    async def next_published(self) -> Event:
        return await self._inbox.get()


class RedisBackend(BroadcastBackend):
    """Redis pub/sub, with redis-py's reconnect-and-resubscribe turned off.

    One client publishes; a pub/sub connection listens. Neither retries: a failure is
    the supervisor's to handle, since only a fresh subscription is followed by a catch-up.
    """

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self._client = Redis.from_url(
            url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=CONNECT_SECONDS
        )
        self._pubsub: PubSub = self._client.pubsub(ignore_subscribe_messages=True)
        # broadcaster's Broadcast asks for messages before its first subscribe.
        self._subscribed = asyncio.Event()

    async def connect(self) -> None:
        await self._client.ping()

    async def disconnect(self) -> None:
        try:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
        finally:
            await self._client.aclose()

    async def subscribe(self, channel: str) -> None:
        await self._pubsub.subscribe(channel)
        self._subscribed.set()

    async def unsubscribe(self, channel: str) -> None:
        await self._pubsub.unsubscribe(channel)

    async def publish(self, channel: str, message: Any) -> None:
        await self._client.publish(channel, message)

    async def next_published(self) -> Event:
        await self._subscribed.wait()
        while True:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            if message is not None and message["type"] == "message":
                return Event(
                    channel=_text(message["channel"]),
                    message=_text(message["data"]),
                )


class PostgresBackend(BroadcastBackend):
    """LISTEN/NOTIFY on one asyncpg connection, which both listens and publishes.

    An asyncpg connection runs one statement at a time, so publishes take turns.
    """

    def __init__(self, url: str, max_queued: int = MAX_QUEUED) -> None:
        self._url = url
        self._inbox = Inbox(max_queued)
        self._connection: asyncpg.Connection | None = None
        self._publishing = asyncio.Lock()

    async def connect(self) -> None:
        import asyncpg

        connection = await asyncpg.connect(self._url, timeout=CONNECT_SECONDS)
        connection.add_termination_listener(self._terminated)
        self._connection = connection

    async def disconnect(self) -> None:
        connection, self._connection = self._connection, None
        self._inbox.fail(ConnectionError("disconnected"))
        if connection is not None:
            await connection.close(timeout=CONNECT_SECONDS)

    async def subscribe(self, channel: str) -> None:
        await self._connected().add_listener(channel, self._notified)

    async def unsubscribe(self, channel: str) -> None:
        await self._connected().remove_listener(channel, self._notified)

    async def publish(self, channel: str, message: Any) -> None:
        async with self._publishing:
            await self._connected().execute("SELECT pg_notify($1, $2)", channel, message)

    async def next_published(self) -> Event:
        return await self._inbox.get()

    def _connected(self) -> asyncpg.Connection:
        if self._connection is None:
            raise ConnectionError("not connected")
        return self._connection

    def _notified(self, connection: object, pid: int, channel: str, payload: str) -> None:
        self._inbox.put(Event(channel=channel, message=payload))

    def _terminated(self, connection: object) -> None:
        self._inbox.fail(ConnectionError("the PostgreSQL connection was closed"))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
