"""One supervised subscription per process, and publishing onto it.

The bus drives a broadcaster backend (events/backends.py) itself rather than through
`broadcaster.Broadcast`, whose listener task dies silently when the backend fails, and
whose subscriber queue is unbounded. A backend's `next_published` raises when its
connection is lost; on top of that the supervisor proves the subscription is alive by
publishing a tiny heartbeat on the channel and expecting to hear *something* back within
a few seconds. When it does not, or when publishing or receiving fails, it tears the
connection down and reconnects with backoff. After every (re)connect the hub is told to
fill its gap from the event log, which is the truth: the bus is only the fast path
(Redis pub/sub is at-most-once).

A failed publish of an event also ends the connection: what was published meanwhile may
be gone, and only a fresh subscription is followed by a catch-up from the log. The hub
then announces the newest event it could not publish (`#<id>`) once the bus is back, so
the other processes read it from the log at once instead of at their next poll.

When tracing is on, each event's publish is a PRODUCER span (the messaging conventions'
`send`), a child of whatever span is current (the mutation's), and the message carries
that span's context to every process (`events.trace_context`).

Publishes (events and heartbeats) take turns on one connection: PostgreSQL's NOTIFY goes
over the one connection that also listens, and asyncpg refuses a second operation while
one is in flight. Two overlapping publishes, likelier the slower the machine, once lost
an event for every other process until its next poll of the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

from broadcaster import BroadcastBackend
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, StatusCode, set_span_in_context

from gql_feed.events import trace_context
from gql_feed.events.backends import backend_for
from gql_feed.events.metrics import BUS_RECONNECTS, EVENTS_PUBLISHED, PUBLISH_FAILURES
from gql_feed.observability.tracing import TRACER, tracing_on
from gql_feed.storage.event_log import LoggedEvent

logger = logging.getLogger(__name__)

HEARTBEAT = "hb"
# PostgreSQL NOTIFY payloads must stay under 8,000 bytes; larger events go by id only.
MAX_INLINE_BYTES = 7_000
STOP_SECONDS = 5.0
PUBLISH_SECONDS = 2.0


# `messaging.system` by the bus URL's scheme (the conventions name no value for these).
MESSAGING_SYSTEMS = {"memory": "memory", "redis": "redis", "postgres": "postgresql"}


def bus_message(event: LoggedEvent, carrier: Mapping[str, str] | None = None) -> str:
    """The event's JSON text, or just its id when it is too large to travel inline.

    With a trace context (`carrier`) the id goes as `{"id":N,"otel":{…}}`, without one as
    `#<id>`; the context counts towards the inline limit (see `trace_context`).
    """
    message = trace_context.attach(event.payload, carrier)
    if len(message.encode()) <= MAX_INLINE_BYTES:
        return message
    if carrier:
        return trace_context.attach(f'{{"id":{event.id}}}', carrier)
    return f"#{event.id}"


class Sent(NamedTuple):
    """A publish's outcome, and its span's context for this process's own fan-out."""

    ok: bool
    trace: Context | None


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
        backend_for(url)  # refuses an unsupported URL now, not at every reconnect
        self.url = url
        self.channel = channel
        self._on_message = on_message
        self._on_connected = on_connected
        self._heartbeat_seconds = heartbeat_seconds
        self._silence_seconds = silence_seconds
        self._connection: BroadcastBackend | None = None
        self._publishing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
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
        return (await self.send(event)).ok

    async def send(self, event: LoggedEvent) -> Sent:
        """`publish`, traced when tracing is on: the span's context goes with the message."""
        if not tracing_on():
            return Sent(await self._publish(bus_message(event), event.id), None)
        attributes = {
            "messaging.system": MESSAGING_SYSTEMS.get(urlsplit(self.url).scheme, "other"),
            "messaging.operation.type": "send",
            "messaging.operation.name": "publish",
            "messaging.destination.name": self.channel,
            "messaging.message.id": str(event.id),
        }
        with TRACER.start_as_current_span(
            f"publish {self.channel}", kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            message = bus_message(event, trace_context.current_carrier())
            span.set_attribute("messaging.message.body.size", len(message.encode()))
            ok = await self._publish(message, event.id)
            if not ok:
                span.set_status(StatusCode.ERROR, "publish failed; the event stays in the log")
            return Sent(ok, set_span_in_context(span))

    async def _publish(self, message: str, event_id: int) -> bool:
        EVENTS_PUBLISHED.inc()
        if await self._send(message):
            return True
        PUBLISH_FAILURES.inc()
        logger.warning("Publishing event %s failed; it stays in the log", event_id)
        return False

    async def announce(self, event_id: int) -> bool:
        """Tell every process that events up to `event_id` are in the log (`#<id>`)."""
        return await self._send(f"#{event_id}")

    async def _send(self, message: str) -> bool:
        backend, turns = self._connection, self._publishing
        if backend is None or not self.connected.is_set():
            return False
        try:
            # Bounded, so that a broker cut off without a reset never holds up a mutation.
            async with asyncio.timeout(PUBLISH_SECONDS), turns:
                await backend.publish(self.channel, message)
        except Exception:
            if self._connection is backend:  # not a connection already replaced
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
        backend = backend_for(self.url)
        heartbeat: asyncio.Task[None] | None = None
        try:
            await backend.connect()
            await backend.subscribe(self.channel)
            # A lock per connection: a heartbeat stuck in a dead one must not hold up the next.
            self._publishing = asyncio.Lock()
            self._connection = backend
            self.connected.set()
            await self._on_connected()
            heartbeat = asyncio.create_task(self._heartbeat(backend))
            heartbeat.add_done_callback(_retrieve)
            while True:
                # Any message, ours or another process's, proves we are subscribed.
                try:
                    async with asyncio.timeout(self._silence_seconds):
                        message = await backend.next_published()
                except TimeoutError:
                    raise BusSilent(f"nothing heard for {self._silence_seconds:g}s") from None
                if heartbeat.done():
                    heartbeat.result()
                if not self.connected.is_set():
                    raise BusSilent("publishing failed")
                if message.message != HEARTBEAT:
                    await self._on_message(message.message)
        finally:
            self._connection = None
            self.connected.clear()
            if heartbeat is not None:
                # Not awaited: a client library may swallow the cancellation in the
                # middle of a publish; the loop then ends by itself (see _heartbeat).
                heartbeat.cancel()
            # Bounded: a broker that does not answer must not hold up the reconnect.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await backend.disconnect()

    async def _heartbeat(self, backend: BroadcastBackend) -> None:
        turns = self._publishing
        while self._connection is backend:
            try:
                async with turns:
                    await backend.publish(self.channel, HEARTBEAT)
            except Exception:
                if self._connection is backend:
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
