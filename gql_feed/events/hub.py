"""The per-process hub: puts events in id order, fills gaps from the log, hands them on.

Every event reaches this process's sinks exactly once and in id order, whatever the bus
did: a duplicate is dropped; an event that skips ids means the ones in between are
already committed (ids are gapless and commit-ordered, see `storage.event_log`), so they
are read from the log first. A cheap poll of the log's newest id (one query per process
per interval, never per subscriber) catches anything the bus lost altogether, such as
an event published while the broker was down.

An event this process could not publish (the broker down, a publish failed) is
announced as soon as the bus is back, as `#<id>`: every other process then reads it
from the log at once instead of at its next poll, which may be far off.

The log is read in short sessions that end before anything is delivered: fanning a
batch out may take seconds, and no transaction (nor pooled connection) is held
meanwhile.

An event carries the trace context of its publish (`trace`) when the publisher traced
it: from the bus message, from this process's own publish, and for an event read from
the log because its message named only its id, from that message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from opentelemetry.context import Context

from gql_feed.events import payload, trace_context
from gql_feed.events.bus import EventBus
from gql_feed.events.metrics import (
    DELIVERY_LAG,
    EVENTS_CAUGHT_UP,
    EVENTS_RECEIVED,
    EVENTS_UNREADABLE,
)
from gql_feed.events.payload import EventPayload, PayloadError
from gql_feed.storage import event_log
from gql_feed.storage.database import Database
from gql_feed.storage.event_log import LoggedEvent

logger = logging.getLogger(__name__)

CATCH_UP_BATCH = 500
# The log is trimmed to its retention every 300 polls (every 5 minutes at the default 1 s):
# trimming is a write, so it is rarer than the read each poll makes (docs/settings.md).
PRUNE_EVERY_POLLS = 300


@dataclass(frozen=True, slots=True)
class HubEvent:
    """An event decoded once per process: `data` is shared by every sink, never mutated.

    `trace` is the context of the span that published it, when it was traced.
    """

    id: int
    payload: str
    data: EventPayload
    received_at: float = field(default_factory=time.monotonic)
    trace: Context | None = None

    @classmethod
    def decode(cls, logged: LoggedEvent, trace: Context | None = None) -> HubEvent:
        """Raises PayloadError for a payload this version cannot read."""
        data = payload.read(logged.payload)
        if data["id"] != logged.id:
            raise PayloadError(f"the payload names event {data['id']}")
        return cls(logged.id, logged.payload, data, trace=trace)

    @classmethod
    def read(cls, logged: LoggedEvent, trace: Context | None = None) -> HubEvent | None:
        """The event, or None (logged) when this version cannot read it: skip it, go on."""
        try:
            return cls.decode(logged, trace)
        except PayloadError as error:
            logger.error("Skipping event %s: %s", logged.id, error)
            EVENTS_UNREADABLE.inc()
            return None


class EventSink(Protocol):
    """Something that takes every event in order: the live-subscription fan-out, metrics…"""

    async def deliver(self, event: HubEvent) -> None: ...


class EventHub:
    def __init__(
        self,
        db: Database,
        broadcast_url: str,
        channel: str,
        poll_seconds: float = 1.0,
        retention: int = 100_000,
    ) -> None:
        self.db = db
        self.retention = retention
        self.bus = EventBus(broadcast_url, channel, self._on_bus_message, self._on_bus_connected)
        self.poll_seconds = poll_seconds
        self.last_id = 0
        self._sinks: list[EventSink] = []
        self._lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None
        self._local: set[asyncio.Task[None]] = set()
        # The newest event of this process that no other process may have heard of.
        self._unannounced = 0

    def add_sink(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    async def start(self) -> None:
        """Begin at the log's newest event: this process has no subscribers yet."""
        async with self.db.read() as session:
            _, self.last_id = await event_log.bounds(session)
        await self.bus.start()
        self._poller = asyncio.create_task(self._poll(), name="gql_feed event log poll")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self.bus.stop()

    async def publish(self, event: LoggedEvent) -> None:
        """Publish a committed event: onto the bus, and straight to this process's sinks.

        The local fan-out runs as its own task, so the mutation that made the event
        answers its client without waiting for thousands of socket writes.
        """
        sent = await self.bus.send(event)
        if not sent.ok:
            self._unannounced = max(self._unannounced, event.id)
        task = asyncio.create_task(self._accept(event.id, HubEvent.read(event, sent.trace)))
        self._local.add(task)
        task.add_done_callback(self._local.discard)

    async def read_after(self, after: int, limit: int) -> Sequence[LoggedEvent]:
        """Events after `after` from the log, as stored; for subscribers that resume."""
        async with self.db.read() as session:
            return await event_log.read_after(session, after, limit)

    async def catch_up_to(self, event_id: int) -> None:
        """Hand every event up to `event_id` to the sinks now, reading the log if need be.

        A subscriber that resumes here with `after: N` may have seen N through another
        process, ahead of this one (its bus message still on the way, or lost while the
        broker is down, until the next poll). This hub must pass N before that subscriber
        goes live; otherwise the events up to N would reach it a second time, late.
        """
        if event_id <= self.last_id:
            return  # nothing to wait for: a catch-up in progress is not waited on
        async with self._lock:
            # Another catch-up may have passed `event_id` while this one waited for the
            # lock: `_catch_up` then reads nothing.
            await self._catch_up(event_id)

    async def log_bounds(self) -> tuple[int, int]:
        async with self.db.read() as session:
            return await event_log.bounds(session)

    async def _on_bus_message(self, message: str) -> None:
        """An event, or `#<id>` (too large to travel, or announced late): read from the log.

        A message this version cannot read still moves the hub on by its id: the catch-up
        reads it from the log, logs it, and goes on with the next event.
        """
        event: HubEvent | None = None
        message, trace = trace_context.detach(message)
        try:
            if message.startswith("#"):
                event_id = int(message[1:])
            else:
                try:
                    data = payload.read(message)  # decoded once, here, for every sink
                    event_id = data["id"]
                    event = HubEvent(event_id, message, data, trace=trace)
                except PayloadError:
                    event_id = payload.event_id(message)
        except ValueError:  # PayloadError too
            logger.error("Ignoring a bus message that names no event: %.100r", message)
            return
        await self._accept(event_id, event, trace)

    async def _on_bus_connected(self) -> None:
        async with self._lock:
            await self._catch_up(None)
        unannounced = self._unannounced
        announced = unannounced and await self.bus.announce(unannounced)
        if announced and self._unannounced == unannounced:  # no newer failure meanwhile
            self._unannounced = 0

    async def _accept(
        self, event_id: int, event: HubEvent | None, trace: Context | None = None
    ) -> None:
        """Hand on the event `event_id` (and, first, any the log holds before it).

        A duplicate is dropped at once, without waiting for a catch-up in progress: the
        bus reader is not held up by messages it has seen already. The check is made
        again under the lock, where it counts: a catch-up that held the lock meanwhile
        may have delivered this very id.
        """
        if event_id <= self.last_id:
            return
        async with self._lock:
            if event_id <= self.last_id:
                return
            if event_id > self.last_id + 1 or event is None:
                await self._catch_up(event_id, trace)
                return
            await self._deliver(event)

    async def _catch_up(self, upto: int | None, trace: Context | None = None) -> None:
        """Deliver every logged event after `last_id` (up to `upto`, or all of them).

        Called with the lock held. `upto` may be behind `last_id` by then (another
        catch-up passed it while the caller waited for the lock): nothing is read.

        Each batch is read in a session of its own, closed before the batch is delivered.
        `trace` is the context the message naming `upto` carried: that event's.
        """
        if upto is None:
            _, upto = await self.log_bounds()
        while self.last_id < upto:
            async with self.db.read() as session:
                batch = await event_log.read_range(
                    session, self.last_id, min(upto, self.last_id + CATCH_UP_BATCH)
                )
            if not batch:
                logger.error("Event log has no events after %s up to %s", self.last_id, upto)
                return
            EVENTS_CAUGHT_UP.inc(len(batch))
            for logged in batch:
                event = HubEvent.read(logged, trace if logged.id == upto else None)
                if event is None:
                    self.last_id = logged.id
                    continue
                await self._deliver(event)

    async def _deliver(self, event: HubEvent) -> None:
        self.last_id = event.id
        EVENTS_RECEIVED.inc()
        occurred_at = datetime.fromisoformat(event.data["occurredAt"])
        DELIVERY_LAG.observe(max(0.0, (datetime.now(UTC) - occurred_at).total_seconds()))
        for sink in self._sinks:
            try:
                await sink.deliver(event)
            except Exception:
                logger.exception("An event sink failed on event %s", event.id)

    async def _poll(self) -> None:
        """The safety net for events the bus never brought (lost publish, broker down).

        Every `PRUNE_EVERY_POLLS`th poll also trims the log to its retention, oldest
        events first, before it reads the newest id.
        """
        polls = 0
        while True:
            await asyncio.sleep(self.poll_seconds)
            polls += 1
            try:
                if polls % PRUNE_EVERY_POLLS == 0:
                    async with self.db.write() as session, session.begin():
                        await event_log.prune(session, self.retention)
                async with self.db.read() as session:
                    _, newest = await event_log.bounds(session)
                if newest > self.last_id:
                    async with self._lock:
                        await self._catch_up(newest)
            except Exception:
                logger.exception("Polling the event log failed")
