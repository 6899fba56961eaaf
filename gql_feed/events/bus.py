"""One supervised broadcaster subscription per process, and publishing onto it.

broadcaster's own listener task dies silently when its backend connection drops, and
its subscriber queue then simply stops yielding. So the supervisor proves the
subscription is alive by publishing a tiny heartbeat on the channel and expecting to
hear *something* back within a few seconds; when it does not, or when publishing or
receiving fails, it tears the connection down and reconnects with backoff. After every
(re)connect the hub is told to fill its gap from the event log, which is the truth:
the bus is only the fast path (Redis pub/sub is at-most-once).

A failed publish of an event also ends the connection: the client library may well
reconnect by itself and carry on, but what was published meanwhile is gone, and only
a fresh subscription is followed by a catch-up from the log.

Publishes (events and heartbeats) take turns on one connection: broadcaster's
PostgreSQL backend sends NOTIFY on its one asyncpg connection, which refuses a second
operation while one is in flight ("another operation is in progress"). Two overlapping
publishes, likelier the slower the machine, lost an event for every other process
until their next poll of the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

from broadcaster import Broadcast

from gql_feed.events.metrics import BUS_RECONNECTS, EVENTS_PUBLISHED, PUBLISH_FAILURES
from gql_feed.storage.event_log import LoggedEvent

logger = logging.getLogger(__name__)

HEARTBEAT = "hb"
# PostgreSQL NOTIFY payloads must stay under 8,000 bytes; larger events go by id only.
MAX_INLINE_BYTES = 7_000
STOP_SECONDS = 5.0
PUBLISH_SECONDS = 2.0


def bus_message(event: LoggedEvent) -> str:
    """The event's JSON text, or just `#<id>` when it is too large to travel inline."""
    if len(event.payload.encode()) <= MAX_INLINE_BYTES:
        return event.payload
    return f"#{event.id}"


class EventBus:
    """Publishes events and feeds every message received to `on_message`.

    `on_connected` runs after each successful (re)subscription, before any message of
    that connection is handled, so the hub can fill what it missed while away.
    """

    def __init__(
        self,
        url: str,
        channel: str,
        on_message: Callable[[str], Awaitable[None]],
        on_connected: Callable[[], Awaitable[None]],
        heartbeat_seconds: float = 2.0,
        silence_seconds: float = 6.0,
    ) -> None:
        self.url = url
        self.channel = channel
        self._on_message = on_message
        self._on_connected = on_connected
        self._heartbeat_seconds = heartbeat_seconds
        self._silence_seconds = silence_seconds
        self._broadcast: Broadcast | None = None
        self._task: asyncio.Task[None] | None = None
        self._publishing = asyncio.Lock()
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="gql_feed event bus")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            # Bounded: a broker that does not answer must not hold up the shutdown.
            await asyncio.wait({self._task}, timeout=STOP_SECONDS)
            if not self._task.done():
                logger.warning("The event bus did not stop within %ss", STOP_SECONDS)

    async def publish(self, event: LoggedEvent) -> bool:
        """Best effort: False when it failed (logged); every process recovers it from the log."""
        EVENTS_PUBLISHED.inc()
        if await self._send(bus_message(event)):
            return True
        PUBLISH_FAILURES.inc()
        logger.warning("Publishing event %s failed; it stays in the log", event.id)
        return False

    async def announce(self, event_id: int) -> bool:
        """Tell every process that events up to `event_id` are in the log (`#<id>`)."""
        return await self._send(f"#{event_id}")

    async def _send(self, message: str) -> bool:
        broadcast, turns = self._broadcast, self._publishing
        if broadcast is None or not self.connected.is_set():
            return False
        try:
            # Bounded, so that a broker cut off without a reset never holds up a mutation.
            async with asyncio.timeout(PUBLISH_SECONDS), turns:
                await broadcast.publish(self.channel, message)
        except Exception:
            if self._broadcast is broadcast:  # not a connection already replaced
                self.connected.clear()
            return False
        return True

    async def _supervise(self) -> None:
        delay = 0.2
        while True:
            try:
                await self._run_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning(
                    "Event bus connection lost (%s); reconnecting in %.1fs", describe(error), delay
                )
            self.connected.clear()
            BUS_RECONNECTS.inc()
            await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter only
            delay = min(delay * 2, 5.0)

    async def _run_once(self) -> None:
        broadcast = Broadcast(self.url)
        subscription = contextlib.AsyncExitStack()
        heartbeat: asyncio.Task[None] | None = None
        try:
            await broadcast.connect()
            subscriber = await subscription.enter_async_context(broadcast.subscribe(self.channel))
            _wake_redis_listener(broadcast)
            # A lock per connection: a heartbeat stuck in a dead one must not hold up the next.
            self._publishing = asyncio.Lock()
            self._broadcast = broadcast
            self.connected.set()
            await self._on_connected()
            heartbeat = asyncio.create_task(self._heartbeat(broadcast))
            heartbeat.add_done_callback(_retrieve)
            while True:
                # Any message, ours or another process's, proves we are subscribed.
                try:
                    async with asyncio.timeout(self._silence_seconds):
                        message = await subscriber.get()
                except TimeoutError:
                    raise BusSilent(f"nothing heard for {self._silence_seconds:g}s") from None
                if heartbeat.done():
                    heartbeat.result()
                if not self.connected.is_set():
                    raise BusSilent("publishing failed")
                if message.message != HEARTBEAT:
                    await self._on_message(message.message)
        finally:
            self._broadcast = None
            self.connected.clear()
            if heartbeat is not None:
                # Not awaited: a client library may swallow the cancellation in the
                # middle of a publish; the loop then ends by itself (see _heartbeat).
                heartbeat.cancel()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await subscription.aclose()
            await _close(broadcast)

    async def _heartbeat(self, broadcast: Broadcast) -> None:
        turns = self._publishing
        while self._broadcast is broadcast:
            try:
                async with turns:
                    await broadcast.publish(self.channel, HEARTBEAT)
            except Exception:
                if self._broadcast is broadcast:
                    self.connected.clear()  # /ready and publishers know at once
                raise
            await asyncio.sleep(self._heartbeat_seconds)


class BusSilent(ConnectionError):
    """The subscription cannot be trusted any more: make a new one."""


def _retrieve(task: asyncio.Task[None]) -> None:
    """Mark a heartbeat's failure as seen: the receive loop reports it, or it no longer matters."""
    if not task.cancelled():
        task.exception()


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _wake_redis_listener(broadcast: Broadcast) -> None:
    """Work around a race in broadcaster's Redis backend (0.3), which would hear nothing.

    Its `subscribe` wakes the backend's listener task *before* redis-py records the
    channel (that happens after SUBSCRIBE is sent, across an await). A listener that runs
    in between finds no channel, so `listen()` ends at once; it then clears its wake-up
    event and waits for another `subscribe` that never comes. Waking it again now, with
    the channel recorded, makes it listen; when it was already listening this is a no-op.
    """
    ready = getattr(getattr(broadcast, "_backend", None), "_ready", None)
    if isinstance(ready, asyncio.Event):
        ready.set()


async def _close(broadcast: Broadcast) -> None:
    """Disconnect, whatever state a failed connect left things in.

    broadcaster's `disconnect` raises when `connect` failed halfway (before its listener
    task existed) or when that task died with an error, and then never disconnects the
    backend, whose own listener task (Redis) would be left pending: so do it by hand.
    """
    listener = getattr(broadcast, "_listener_task", None)
    if listener is not None:
        listener.cancel()
    backend = getattr(broadcast, "_backend", None)
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2):
            await backend.disconnect()  # type: ignore[union-attr]
    backend_listener = getattr(backend, "_listener", None)
    if isinstance(backend_listener, asyncio.Task):
        backend_listener.cancel()
