"""The per-process hub: every event once, in id order, whatever the bus does."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from opentelemetry.context import Context
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession

from gql_feed.events.bus import Sent, bus_message
from gql_feed.events.hub import EventHub, HubEvent
from gql_feed.storage import event_log
from gql_feed.storage.database import Database, migrate
from gql_feed.storage.event_log import LoggedEvent
from tests.helpers.events import Collector, log_event
from tests.helpers.services import unique_channel

POLL_TASK = "gql_feed event log poll"


@pytest.fixture
async def db(database_url: str) -> Database:
    database = Database.open(database_url)
    await migrate(database.engine)
    yield database  # type: ignore[misc]
    await database.close()


async def started_hub(db: Database, poll_seconds: float = 60.0) -> tuple[EventHub, Collector]:
    hub = EventHub(db, "memory://", unique_channel(), poll_seconds=poll_seconds)
    sink = Collector()
    hub.add_sink(sink)
    await hub.start()
    # The bus's connection runs a catch-up of its own (counted like any other): the
    # tests' events come after it has ended. It holds the hub's lock from the moment the
    # connection is made, so taking the lock waits for its end.
    await asyncio.wait_for(hub.bus.connected.wait(), 10)
    async with hub._lock:
        pass
    return hub, sink


async def test_ids_are_gapless_and_ordered_under_concurrent_writers(db: Database) -> None:
    events = await asyncio.gather(*(log_event(db, n) for n in range(30)))
    assert sorted(e.id for e in events) == list(range(1, 31))


async def test_payload_is_the_body_with_its_own_id(db: Database) -> None:
    """Replay sends the stored payload, so it is what `append` returned, and names its id."""
    now = datetime.now(UTC)
    bodies: list[dict[str, object]] = [
        {"action": "CREATED", "post": {"id": 3, "title": 'Quotes " and ünïcödé \u2028'}},
        {},
    ]
    appended = []
    for body in bodies:
        async with db.write() as session, session.begin():
            appended.append(
                await event_log.append(
                    session, action="CREATED", post_id=3, occurred_at=now, body=body
                )
            )
    async with db.read() as session:
        assert list(await event_log.read_after(session, 0, 10)) == appended
    for event, body in zip(appended, bodies, strict=True):
        assert event.payload == orjson.dumps({"id": event.id, **body}).decode()
    async with db.write() as session, session.begin():
        with pytest.raises(ValueError, match="id"):
            await event_log.append(
                session, action="CREATED", post_id=3, occurred_at=now, body={"id": 9}
            )


def counted(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_out_of_order_and_duplicate_messages(db: Database) -> None:
    hub, sink = await started_hub(db)
    try:
        first, second, third = [await log_event(db, n) for n in range(3)]
        caught_up = counted("gql_feed_events_caught_up_total")
        received = counted("gql_feed_events_received_total")
        # The bus brings 3 first: 1 and 2 are committed (gapless ids), so they are read first.
        await hub._on_bus_message(third.payload)
        await hub._on_bus_message(first.payload)
        await hub._on_bus_message(second.payload)
        await hub._on_bus_message(third.payload)
        assert sink.ids == [first.id, second.id, third.id]
        assert counted("gql_feed_events_caught_up_total") == caught_up + 3
        assert counted("gql_feed_events_received_total") == received + 3
        # The next one, in order: handed on as the bus brought it, without reading the log.
        fourth = await log_event(db, 4)
        await hub._on_bus_message(fourth.payload)
        assert sink.ids[-1] == fourth.id
        assert counted("gql_feed_events_caught_up_total") == caught_up + 3
        # One ahead: the one in between is read first.
        fifth, sixth = await log_event(db, 5), await log_event(db, 6)
        await hub._on_bus_message(sixth.payload)
        assert sink.ids[-2:] == [fifth.id, sixth.id]
    finally:
        await hub.stop()


async def test_a_row_whose_payload_names_another_event_is_skipped(db: Database) -> None:
    first, second = await log_event(db, 1), await log_event(db, 2)
    assert HubEvent.read(LoggedEvent(first.id, first.payload)) is not None
    assert HubEvent.read(LoggedEvent(first.id, second.payload)) is None
    assert HubEvent.read(LoggedEvent(second.id, first.payload)) is None


async def test_an_event_stamped_ahead_of_this_clock_counts_as_no_lag(db: Database) -> None:
    """Another process's clock may run ahead: its events arrive "before" they happened."""
    hub, sink = await started_hub(db)
    ahead = datetime.now(UTC) + timedelta(hours=1)
    async with db.write() as session, session.begin():
        event = await event_log.append(
            session,
            action="CREATED",
            post_id=1,
            occurred_at=ahead,
            body={"action": "CREATED", "occurredAt": ahead.isoformat(), "post": {"id": 1}},
        )
    lag = "gql_feed_event_delivery_lag_seconds"
    before = counted(f"{lag}_sum"), counted(f"{lag}_count")
    try:
        await hub._on_bus_message(event.payload)
        assert sink.ids == [event.id]
        assert (counted(f"{lag}_sum"), counted(f"{lag}_count")) == (before[0], before[1] + 1)
    finally:
        await hub.stop()


async def test_large_events_travel_by_id(db: Database) -> None:
    hub, sink = await started_hub(db)
    try:
        big = await log_event(db, 1, content="y" * 8_500)
        message = bus_message(big)
        assert message == f"#{big.id}"
        await hub._on_bus_message(message)
        assert sink.ids == [big.id]
    finally:
        await hub.stop()


async def test_poll_catches_events_the_bus_never_brought(db: Database) -> None:
    hub, sink = await started_hub(db, poll_seconds=0.05)
    try:
        lost = [await log_event(db, n) for n in range(3)]
        for _ in range(100):
            if len(sink.ids) == 3:
                break
            await asyncio.sleep(0.05)
        assert sink.ids == [e.id for e in lost]
    finally:
        await hub.stop()


async def test_publish_reaches_local_sinks_once(db: Database) -> None:
    hub, sink = await started_hub(db)
    try:
        await asyncio.wait_for(hub.bus.connected.wait(), 5)
        event = await log_event(db, 7)
        await hub.publish(event)
        # A marker that comes over the bus only, after the echo of the first: once it is
        # delivered, the echo has been handled too (the bus keeps order).
        marker = await log_event(db, 8)
        assert await hub.bus.publish(marker)
        async with asyncio.timeout(10):
            while marker.id not in sink.ids:
                await asyncio.sleep(0.01)
        assert sink.ids == [event.id, marker.id]  # the echo was dropped as a duplicate
    finally:
        await hub.stop()


async def test_catch_up_to_hands_on_what_the_log_holds_up_to_an_id(db: Database) -> None:
    """A subscriber resuming after an event it saw through another process: the hub reads
    the events up to it from the log at once, and never hands any on twice."""
    hub, sink = await started_hub(db)
    try:
        logged = [await log_event(db, n) for n in range(3)]  # their bus messages are late
        await hub.catch_up_to(logged[1].id)
        assert sink.ids == [logged[0].id, logged[1].id]
        await hub.catch_up_to(logged[0].id)
        await hub.catch_up_to(logged[1].id)
        assert sink.ids == [logged[0].id, logged[1].id]
        await hub._on_bus_message(logged[1].payload)  # the late bus message: a duplicate
        await hub.catch_up_to(logged[2].id)
        assert sink.ids == [event.id for event in logged]
    finally:
        await hub.stop()


async def test_a_duplicate_does_not_wait_for_a_catch_up_in_progress(db: Database) -> None:
    """The bus reader is not held up by a message it has seen already, nor a subscriber
    that resumes after an event the hub has passed: neither waits for the hub's lock."""
    hub, sink = await started_hub(db)
    try:
        first, second = await log_event(db, 1), await log_event(db, 2)
        for event in (first, second):
            await hub._on_bus_message(event.payload)
        async with hub._lock:  # a catch-up in progress, as on a reconnect
            for event in (second, first):  # the newest seen, and an older one
                await asyncio.wait_for(hub._on_bus_message(event.payload), 5)
                await asyncio.wait_for(hub.catch_up_to(event.id), 5)
        assert sink.ids == [first.id, second.id]
    finally:
        await hub.stop()


async def test_what_a_catch_up_delivers_while_others_wait_for_it_is_not_delivered_again(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Bus messages and a resuming subscriber's catch-up, all waiting for the lock while a
    catch-up that holds it delivers their events: each event reaches the sinks once, and
    those that waited find nothing left to do (nor report anything amiss)."""
    hub, sink = await started_hub(db)
    try:
        logged = [await log_event(db, n) for n in range(3)]
        with caplog.at_level(logging.ERROR, logger="gql_feed.events.hub"):
            async with hub._lock:  # a catch-up in progress, as on a reconnect
                waiting = [
                    asyncio.create_task(hub._on_bus_message(logged[0].payload)),
                    asyncio.create_task(hub.catch_up_to(logged[1].id)),
                    asyncio.create_task(hub._on_bus_message(logged[2].payload)),
                ]
                for _ in range(5):  # turns of the loop: each reaches the lock
                    await asyncio.sleep(0)
                assert not any(task.done() for task in waiting)
                await hub._catch_up(logged[2].id)  # what that catch-up does
            await asyncio.gather(*waiting)
        assert sink.ids == [event.id for event in logged]
        assert [record.getMessage() for record in caplog.records] == []
    finally:
        await hub.stop()


async def test_a_message_naming_only_its_id_lends_its_trace_to_that_event_alone(
    db: Database,
) -> None:
    """The events read from the log before it (a gap the bus left) were published by other
    spans, which that message says nothing of."""
    hub, sink = await started_hub(db)
    try:
        logged = [await log_event(db, n) for n in range(3)]
        published = Context({"publish": "of the third event"})
        await hub._accept(logged[2].id, None, published)  # a `#3` message, with a context
        assert sink.ids == [event.id for event in logged]
        assert [event.trace for event in sink.events[:2]] == [None, None]
        assert sink.events[2].trace is published
    finally:
        await hub.stop()


class Tampering:
    async def deliver(self, event: HubEvent) -> None:
        event.id = 0  # type: ignore[misc]


async def test_no_sink_can_change_the_event_the_next_one_gets(db: Database) -> None:
    """Every sink is handed the same decoded event: it is frozen, so a sink that tries to
    change it fails (and is logged) and the next sink gets the event as it was."""
    hub = EventHub(db, "memory://", unique_channel(), poll_seconds=60.0)
    sink = Collector()
    hub.add_sink(Tampering())
    hub.add_sink(sink)
    await hub.start()
    try:
        event = await log_event(db, 1)
        await hub._on_bus_message(event.payload)
        assert sink.ids == [event.id]
    finally:
        await hub.stop()


async def test_a_stopped_hub_leaves_no_poll_running(db: Database) -> None:
    never_started = EventHub(db, "memory://", unique_channel())
    await never_started.stop()  # a start-up that failed early still shuts down
    hub, _ = await started_hub(db)
    await hub.stop()
    polls = [task for task in asyncio.all_tasks() if task.get_name() == POLL_TASK]
    assert all(task.done() for task in polls)


async def test_the_poll_trims_the_log_to_its_retention(db: Database) -> None:
    """Every few hundred polls (a fraction of a second at a millisecond apart)."""
    hub = EventHub(db, "memory://", unique_channel(), poll_seconds=0.001, retention=1)
    await hub.start()
    try:
        for _ in range(2):  # and again, a few hundred polls later
            logged = [await log_event(db, n) for n in range(3)]
            newest_only = (logged[-1].id, logged[-1].id)
            async with asyncio.timeout(30):  # fails here if the log is not trimmed
                while (bounds := await hub.log_bounds()) != newest_only:
                    await asyncio.sleep(0.01)
            assert bounds == newest_only
    finally:
        await hub.stop()


async def test_the_log_is_trimmed_every_300_polls_before_that_polls_read(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trimming to the retention is a write, so it is rarer than each poll's read: on the
    300th poll, the 600th… (every 5 minutes at the default second, docs/settings.md)."""
    calls: list[str] = []
    enough = asyncio.Event()
    bounds, prune = event_log.bounds, event_log.prune

    async def noting_bounds(session: AsyncSession) -> tuple[int, int]:
        calls.append("read")
        if calls.count("read") == 601:
            enough.set()
        return await bounds(session)

    async def noting_prune(session: AsyncSession, keep: int) -> int:
        calls.append("trim")
        return await prune(session, keep)

    monkeypatch.setattr(event_log, "bounds", noting_bounds)
    monkeypatch.setattr(event_log, "prune", noting_prune)
    hub = EventHub(db, "memory://", unique_channel(), poll_seconds=0.0, retention=1)
    poll = asyncio.create_task(hub._poll())  # the poll alone: no bus, no read at start-up
    try:
        await asyncio.wait_for(enough.wait(), 60)
    finally:
        poll.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poll
    trims = [at for at, call in enumerate(calls) if call == "trim"]
    # The poll each trim belongs to: the reads before it, and its own after it.
    assert [calls[:at].count("read") + 1 for at in trims][:2] == [300, 600]
    assert all(calls[at + 1] == "read" for at in trims[:2])


class DownThenBackBus:
    """The hub's bus, reduced to what the announcing of unpublished events needs."""

    def __init__(self) -> None:
        self.up = False
        self.announced: list[int] = []
        self.while_announcing: Callable[[], Awaitable[None]] | None = None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, event: LoggedEvent) -> Sent:
        return Sent(self.up, None)

    async def announce(self, event_id: int) -> bool:
        if self.while_announcing is not None:
            await self.while_announcing()
        if self.up:
            self.announced.append(event_id)
        return self.up


class Failing:
    async def deliver(self, event: HubEvent) -> None:
        raise RuntimeError("this sink is broken")


async def test_a_failing_sink_keeps_no_other_from_the_event(db: Database) -> None:
    hub = EventHub(db, "memory://", unique_channel(), poll_seconds=60.0)
    sink = Collector()
    hub.add_sink(Failing())
    hub.add_sink(sink)
    await hub.start()
    try:
        logged = [await log_event(db, n) for n in range(2)]
        for event in logged:
            await hub._on_bus_message(event.payload)
        assert sink.ids == [event.id for event in logged]
    finally:
        await hub.stop()


async def test_the_poll_goes_on_after_a_failed_read(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that fails for a moment must not end the safety net for good."""
    failures = []
    bounds = event_log.bounds

    async def fails_once(session: AsyncSession) -> tuple[int, int]:
        if not failures:
            failures.append(1)
            raise ConnectionError("the database went away for a moment")
        return await bounds(session)

    hub = EventHub(db, "memory://", unique_channel(), poll_seconds=0.01)
    hub.bus = DownThenBackBus()  # type: ignore[assignment]  # only the poll reads the log
    sink = Collector()
    hub.add_sink(sink)
    await hub.start()
    try:
        monkeypatch.setattr(event_log, "bounds", fails_once)
        lost = await log_event(db, 1)  # never on the bus
        async with asyncio.timeout(10):
            while lost.id not in sink.ids:
                await asyncio.sleep(0.01)
        assert failures == [1]
        assert sink.ids == [lost.id]
    finally:
        await hub.stop()


async def test_events_not_published_are_announced_once_the_bus_is_back(db: Database) -> None:
    hub = EventHub(db, "memory://", unique_channel(), poll_seconds=60.0)
    bus = DownThenBackBus()
    hub.bus = bus  # type: ignore[assignment]
    sink = Collector()
    hub.add_sink(sink)
    await hub.start()
    try:
        bus.up = True
        await hub._on_bus_connected()
        assert bus.announced == []  # nothing failed: nothing to announce
        bus.up = False
        first, second = await log_event(db, 1), await log_event(db, 2)
        await hub.publish(first)  # the broker is down
        await hub.publish(second)
        await hub._on_bus_connected()  # still down: the announcement fails, and waits
        assert bus.announced == []
        bus.up = True
        await hub._on_bus_connected()
        assert bus.announced == [second.id]  # the newest says the older ones too
        await hub._on_bus_connected()  # a later reconnect has nothing to announce
        assert bus.announced == [second.id]

        # A newer event that fails while the announcement goes out is announced next time.
        bus.up = False
        third = await log_event(db, 3)
        await hub.publish(third)

        async def fails_meanwhile() -> None:
            bus.up = False
            await hub.publish(fourth)
            bus.up = True

        fourth = await log_event(db, 4)
        bus.while_announcing = fails_meanwhile
        bus.up = True
        await hub._on_bus_connected()
        bus.while_announcing = None
        assert bus.announced == [second.id, third.id]
        await hub._on_bus_connected()
        assert bus.announced == [second.id, third.id, fourth.id]
        await hub._on_bus_connected()
        assert bus.announced == [second.id, third.id, fourth.id]
        assert sorted(sink.ids) == [first.id, second.id, third.id, fourth.id]
    finally:
        await hub.stop()


async def test_prune_keeps_the_newest(db: Database) -> None:
    for n in range(5):
        await log_event(db, n)
    async with db.write() as session, session.begin():
        removed = await event_log.prune(session, keep=2)
    async with db.read() as session:
        assert await event_log.bounds(session) == (4, 5)
    assert removed == 3


@pytest.mark.redis
async def test_redis_restart_loses_nothing(db: Database) -> None:
    """Events committed while the broker is down arrive once it is back, in order, once."""
    from tests.helpers.redis_server import OwnRedis

    redis = OwnRedis()
    hub = EventHub(db, redis.url, unique_channel(), poll_seconds=30.0)
    sink = Collector()
    hub.add_sink(sink)
    await hub.start()
    try:
        await asyncio.wait_for(hub.bus.connected.wait(), 10)
        published = []
        for n in range(3):
            published.append(await log_event(db, n))
            await hub.publish(published[-1])
        await asyncio.to_thread(redis.stop)
        # Another process commits while the broker is down: its publish is lost, and
        # only the reconnect's catch-up from the log (the poll is slow here) brings them.
        for n in range(3, 6):
            published.append(await log_event(db, n))
        assert sink.ids == [e.id for e in published[:3]]
        await asyncio.to_thread(redis.start)
        await asyncio.wait_for(hub.bus.connected.wait(), 20)
        # A marker over the bus only: the bus keeps order and the hub hands events on in
        # id order, so once the marker is delivered, so is everything before it, and any
        # duplicate (a catch-up's and a bus message's) would be in the list.
        marker = await log_event(db, 6)
        assert await hub.bus.publish(marker)
        async with asyncio.timeout(20):
            await sink.wait_for(marker.id)
        assert sink.ids == [e.id for e in [*published, marker]]
    finally:
        await hub.stop()
        redis.stop()
