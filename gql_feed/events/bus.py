"""One supervised broadcaster subscription per process, and publishing onto it.

broadcaster's own listener task dies silently when its backend connection drops, and
its subscriber queue then simply stops yielding. So the supervisor proves the
subscription is alive by publishing a tiny heartbeat on the channel and expecting to
hear *something* back within a few seconds; when it does not, or when publishing or
receiving fails, it tears the connection down and reconnects with backoff. After every
(re)connect the hub is told to fill its gap from the event log, which is the truth:
the bus is only the fast path (Redis pub/sub is at-most-once).
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
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="gql_feed event bus")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def publish(self, event: LoggedEvent) -> None:
        """Best effort: a failure is logged, and every process recovers the event from the log."""
        broadcast = self._broadcast
        EVENTS_PUBLISHED.inc()
        if broadcast is None or not self.connected.is_set():
            PUBLISH_FAILURES.inc()
            logger.warning("Event bus down: event %s stays in the log for catch-up", event.id)
            return
        try:
            await broadcast.publish(self.channel, bus_message(event))
        except Exception:
            PUBLISH_FAILURES.inc()
            logger.warning("Publishing event %s failed; it stays in the log", event.id)
            self.connected.clear()

    async def _supervise(self) -> None:
        delay = 0.2
        while True:
            try:
                await self._run_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning(
                    "Event bus connection lost (%s); reconnecting in %.1fs", error, delay
                )
            self.connected.clear()
            BUS_RECONNECTS.inc()
            await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter only
            delay = min(delay * 2, 5.0)

    async def _run_once(self) -> None:
        broadcast = Broadcast(self.url)
        try:
            await broadcast.connect()
            async with broadcast.subscribe(self.channel) as subscriber:
                self._broadcast = broadcast
                self.connected.set()
                await self._on_connected()
                heartbeat = asyncio.create_task(self._heartbeat(broadcast))
                try:
                    while True:
                        # Any message, ours or another process's, proves we are subscribed.
                        async with asyncio.timeout(self._silence_seconds):
                            message = await subscriber.get()
                        if heartbeat.done():
                            heartbeat.result()
                        if message.message != HEARTBEAT:
                            await self._on_message(message.message)
                finally:
                    heartbeat.cancel()
        finally:
            self._broadcast = None
            self.connected.clear()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await broadcast.disconnect()

    async def _heartbeat(self, broadcast: Broadcast) -> None:
        while True:
            await broadcast.publish(self.channel, HEARTBEAT)
            await asyncio.sleep(self._heartbeat_seconds)
