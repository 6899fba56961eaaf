"""The bus proves its subscription alive (README, "Scaling out"): it publishes a heartbeat
on its channel every 2 s, and when nothing comes back for 6 s it drops the connection and
subscribes again, then asks the hub to catch up from the log.

The broker here is the in-process one, made deaf on its first connection: it takes every
publish and delivers nothing, as a broker that silently lost a subscription would. The
bus runs at a quarter of its default timings (the same ratio, so the test takes some
1.5 s rather than 6); `test_the_defaults_are_the_readmes` holds the defaults to the README.
A bus on a broker that does deliver keeps its connection past those 1.5 s.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import itertools
import logging
import time
from typing import Any

import pytest
from broadcaster import BroadcastBackend, Event
from prometheus_client import REGISTRY

from gql_feed.events import bus as bus_module
from gql_feed.events.backends import MemoryBackend
from gql_feed.events.bus import HEARTBEAT, EventBus
from gql_feed.storage.event_log import LoggedEvent
from tests.helpers.services import unique_channel


class DeafBackend(MemoryBackend):
    """Accepts every publish (noting when) and never delivers one."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.published: list[tuple[float, Any]] = []

    async def publish(self, channel: str, message: Any) -> None:
        self.published.append((time.monotonic(), message))


HEARTBEAT_SECONDS = 0.5
SILENCE_SECONDS = 1.5


def test_the_defaults_are_the_readmes() -> None:
    """What the hub builds its bus with (it passes no timings): 2 s and 6 s."""
    defaults = inspect.signature(EventBus).parameters
    assert defaults["heartbeat_seconds"].default == 2.0
    assert defaults["silence_seconds"].default == 6.0


@pytest.mark.timeout(60)
async def test_silence_makes_the_bus_reconnect(monkeypatch: pytest.MonkeyPatch) -> None:
    deaf = DeafBackend("memory://")
    made: list[BroadcastBackend] = []

    def backend_for(url: str) -> BroadcastBackend:
        backend = deaf if not made else MemoryBackend(url)
        made.append(backend)
        return backend

    connects: list[float] = []

    async def on_connected() -> None:
        connects.append(time.monotonic())

    async def on_message(message: str) -> None:
        return None

    bus = EventBus(
        "memory://",
        unique_channel(),
        on_message,
        on_connected,
        heartbeat_seconds=HEARTBEAT_SECONDS,
        silence_seconds=SILENCE_SECONDS,
    )
    monkeypatch.setattr(bus_module, "backend_for", backend_for)  # for its connections
    await bus.start()
    try:
        # About 1.5 s are expected; the bound is generous for a busy machine, yet short of
        # the default 6 s, so a bus that ignored its setting would fail here.
        async with asyncio.timeout(4 * SILENCE_SECONDS):
            while len(connects) < 2 or not bus.connected.is_set():
                await asyncio.sleep(0.05)
    finally:
        await bus.stop()
    assert not bus.connected.is_set()  # stopped: no connection left
    silence = connects[1] - connects[0]
    assert silence >= SILENCE_SECONDS - 0.01, f"reconnected after {silence:.2f}s of silence"
    beats = [at for at, message in deaf.published if message == HEARTBEAT]
    assert len(beats) >= 3, deaf.published  # at 0, 0.5 and 1 s at least
    gaps = [later - earlier for earlier, later in itertools.pairwise(beats)]
    # Every heartbeat period (generous above, for a busy machine).
    assert all(HEARTBEAT_SECONDS - 0.01 <= gap <= 2 * HEARTBEAT_SECONDS for gap in gaps), gaps


class Heard(MemoryBackend):
    """Delivers as the in-process broker does, and sets `long_enough` once a heartbeat is
    heard `past` seconds or more after the first connection."""

    def __init__(
        self, url: str, connects: list[float], past: float, long_enough: asyncio.Event
    ) -> None:
        super().__init__(url)
        self.connects = connects
        self.past = past
        self.long_enough = long_enough

    async def next_published(self) -> Event:
        message = await super().next_published()
        if message.message == HEARTBEAT and time.monotonic() - self.connects[0] >= self.past:
            self.long_enough.set()
        return message


@pytest.mark.timeout(60)
async def test_a_bus_that_hears_its_heartbeats_stays_connected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Silence is counted from the last message heard, not from the connect: a bus whose
    heartbeats come back keeps its one connection for twice the silence time and more."""
    connects: list[float] = []
    made: list[Heard] = []
    long_enough = asyncio.Event()

    def backend_for(url: str) -> BroadcastBackend:
        backend = Heard(url, connects, 2 * SILENCE_SECONDS, long_enough)
        made.append(backend)
        return backend

    async def on_connected() -> None:
        connects.append(time.monotonic())

    bus = EventBus(
        "memory://",
        unique_channel(),
        _nothing,
        on_connected,
        heartbeat_seconds=HEARTBEAT_SECONDS,
        silence_seconds=SILENCE_SECONDS,
    )
    monkeypatch.setattr(bus_module, "backend_for", backend_for)
    await bus.start()
    try:
        # Some 3 s. Had the bus reconnected (after 1.5 s), the new connection's heartbeats
        # would be heard too, so the wait ends either way and the assertions below tell.
        async with asyncio.timeout(20 * SILENCE_SECONDS):
            await long_enough.wait()
        assert bus.connected.is_set()
        assert len(connects) == 1, f"reconnected {len(connects) - 1} time(s) while heard"
        assert len(made) == 1
    finally:
        await bus.stop()


class Unreachable(MemoryBackend):
    async def connect(self) -> None:
        raise ConnectionRefusedError("no broker here")


class RecordedSleeps:
    """asyncio, as the bus module sees it, whose sleeps are noted and not waited out."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.enough = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if len(self.sleeps) >= 7:
            self.enough.set()
        await asyncio.sleep(0)


class Middle:
    """random.random() at the middle of its range: the jitter factor is then exactly 1."""

    @staticmethod
    def random() -> float:
        return 0.5


async def test_reconnects_back_off_from_a_fifth_of_a_second_doubling_to_five(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """README: the bus reconnects with backoff, 0.2 s doubling up to 5 s (jittered)."""
    recorded = RecordedSleeps()
    bus = EventBus("memory://", unique_channel(), _nothing, _nothing)
    monkeypatch.setattr(bus_module, "backend_for", Unreachable)
    monkeypatch.setattr(bus_module, "asyncio", recorded)
    monkeypatch.setattr(bus_module, "random", Middle)
    await bus.start()
    try:
        with caplog.at_level(logging.WARNING, logger="gql_feed.events.bus"):
            async with asyncio.timeout(10):
                await recorded.enough.wait()
    finally:
        monkeypatch.undo()
        await bus.stop()
    assert [round(delay, 6) for delay in recorded.sleeps[:7]] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert not bus.connected.is_set()
    # Each attempt logs why it failed: the broker's own error.
    assert caplog.records[0].getMessage() == (
        "Event bus connection lost (ConnectionRefusedError: no broker here); reconnecting in 0.2s"
    )


async def _nothing(*_: object) -> None:
    return None


class RefusesEvents(MemoryBackend):
    """A broker that takes heartbeats but fails every other publish."""

    async def publish(self, channel: str, message: Any) -> None:
        if message != HEARTBEAT:
            raise ConnectionResetError("gone mid-publish")
        await super().publish(channel, message)


def publish_failures() -> float:
    return REGISTRY.get_sample_value("gql_feed_bus_publish_failures_total") or 0.0


async def test_a_publish_that_does_not_go_out_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    event = LoggedEvent(1, '{"id":1}')
    bus = EventBus("memory://", unique_channel(), _nothing, _nothing)
    before = publish_failures()
    assert await bus.publish(event) is False  # not connected (yet)
    assert publish_failures() == before + 1
    monkeypatch.setattr(bus_module, "backend_for", RefusesEvents)
    await bus.start()
    try:
        async with asyncio.timeout(10):
            await bus.connected.wait()
        assert await bus.publish(event) is False  # the broker failed it
        assert publish_failures() == before + 2
        assert not bus.connected.is_set()  # and the connection is given up, to be remade
    finally:
        await bus.stop()


async def test_a_connection_found_broken_takes_no_publish(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a publish or heartbeat failed, the connection is not used again: what it took
    might be lost, and only the next connection is followed by a catch-up."""
    bus = EventBus("memory://", unique_channel(), _nothing, _nothing)
    await bus.start()
    try:
        async with asyncio.timeout(10):
            await bus.connected.wait()
        assert await bus.publish(LoggedEvent(1, '{"id":1}')) is True
        bus.connected.clear()  # as a failed heartbeat leaves it, before the reconnect
        assert await bus.publish(LoggedEvent(2, '{"id":2}')) is False
    finally:
        await bus.stop()


class HeartbeatsFail(MemoryBackend):
    async def publish(self, channel: str, message: Any) -> None:
        if message == HEARTBEAT:
            raise ConnectionResetError("gone mid-heartbeat")
        await super().publish(channel, message)


async def test_a_failed_heartbeat_shows_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """/ready and publishers know of a failed heartbeat at once, not after the silence.

    The silence here is an hour, so the connection can only be given up for the failed
    heartbeat itself (the timeout is a guard against hanging, not a measure)."""
    bus = EventBus(
        "memory://",
        unique_channel(),
        _nothing,
        _nothing,
        heartbeat_seconds=0.2,
        silence_seconds=3600,
    )
    monkeypatch.setattr(bus_module, "backend_for", HeartbeatsFail)
    await bus.start()
    try:
        async with asyncio.timeout(10):
            await bus.connected.wait()
        async with asyncio.timeout(30):
            while bus.connected.is_set():
                await asyncio.sleep(0.01)
    finally:
        await bus.stop()


async def test_a_bus_that_stops_leaves_the_loop_nothing_to_report(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its heartbeat is cancelled with the connection, and that is no error for asyncio's
    exception handler (which logs "Exception in callback" or "never retrieved"); nor is a
    stop that went as it should worth a warning."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        bus = EventBus("memory://", unique_channel(), _nothing, _nothing)
        await bus.start()
        async with asyncio.timeout(10):
            await bus.connected.wait()
        with caplog.at_level(logging.WARNING, logger="gql_feed.events.bus"):
            await bus.stop()
        assert caplog.records == []
        for _ in range(5):  # the cancelled heartbeat's callbacks run on the next turns
            await asyncio.sleep(0)
        gc.collect()
    finally:
        loop.set_exception_handler(None)
    assert reported == []
