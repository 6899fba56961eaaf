"""The single-connection SSE registry, in memory and in Redis: both keep the same rules
(one stream per reservation, operation ids unique and bounded, owner-only, commands kept
until the stream opens, then handed over as they come)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gql_feed.transport.streams import reservations as module
from gql_feed.transport.streams.reservations import (
    LocalReservations,
    Outcome,
    RedisReservations,
    Reservations,
)
from tests.clock import SkippingClock
from tests.services import redis_url, unique_channel


class Delivered:
    def __init__(self) -> None:
        self.commands: list[tuple[str, list[bytes]]] = []
        self.arrived = asyncio.Event()

    def __call__(self, token: str, commands: list[bytes]) -> None:
        self.commands.append((token, commands))
        self.arrived.set()

    async def next(self) -> tuple[str, list[bytes]]:
        await asyncio.wait_for(self.arrived.wait(), 5)
        self.arrived.clear()
        return self.commands.pop(0)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def registry(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Reservations, Delivered]]:
    chosen: Reservations
    if request.param == "memory":
        chosen = LocalReservations()
    else:
        chosen = RedisReservations(redis_url(), unique_channel() + ":sse:")
    delivered = Delivered()
    await chosen.start(delivered)
    yield chosen, delivered
    await chosen.stop()


async def test_commands_wait_for_the_stream_then_arrive_as_sent(
    registry: tuple[Reservations, Delivered],
) -> None:
    reservations, delivered = registry
    token = await reservations.reserve(7)
    assert await reservations.submit(token, 7, "a", b"start a", 10) is Outcome.DONE
    assert await reservations.open(token, 7, 60) == (Outcome.DONE, [b"start a"])
    assert await reservations.open(token, 7, 60) == (Outcome.BUSY, [])
    assert await reservations.submit(token, 7, "b", b"start b", 10) is Outcome.DONE
    assert await delivered.next() == (token, [b"start b"])
    assert await reservations.cancel(token, 7, "a", b"stop a") is Outcome.DONE
    assert await delivered.next() == (token, [b"stop a"])
    # Stopping an id that runs nowhere sends nothing.
    assert await reservations.cancel(token, 7, "a", b"stop a") is Outcome.DONE
    assert await reservations.drain(token) == []


async def test_ids_are_unique_bounded_and_owned(registry: tuple[Reservations, Delivered]) -> None:
    reservations, _ = registry
    token = await reservations.reserve(7)
    assert await reservations.submit(token, 8, "a", b"x", 2) is Outcome.UNKNOWN
    assert await reservations.open(token, 8, 60) == (Outcome.UNKNOWN, [])
    assert await reservations.cancel(token, 8, "a", b"x") is Outcome.UNKNOWN
    assert await reservations.submit("no-such-token", 7, "a", b"x", 2) is Outcome.UNKNOWN
    assert await reservations.submit(token, 7, "a", b"x", 2) is Outcome.DONE
    assert await reservations.submit(token, 7, "a", b"x", 2) is Outcome.BUSY
    assert await reservations.submit(token, 7, "b", b"x", 2) is Outcome.DONE
    assert await reservations.submit(token, 7, "c", b"x", 2) is Outcome.FULL
    await reservations.finished(token, "b")
    assert await reservations.submit(token, 7, "c", b"x", 2) is Outcome.DONE
    await reservations.close(token)
    assert await reservations.submit(token, 7, "d", b"x", 2) is Outcome.UNKNOWN


async def test_a_reservation_nobody_opens_expires(
    registry: tuple[Reservations, Delivered], monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: a reservation not opened within 60 seconds is forgotten. In this process
    the 60 s pass on a test clock; in Redis, whose keys expire on Redis's own clock, the
    time is cut to 1 s and waited for."""
    reservations, _ = registry
    if isinstance(reservations, LocalReservations):
        clock = SkippingClock()
        monkeypatch.setattr(module, "time", clock)
        token = await reservations.reserve(7)
        other = await reservations.reserve(7)
        clock.advance(module.RESERVATION_SECONDS - 1)
        assert (await reservations.open(other, 7, 60))[0] is Outcome.DONE  # not yet
        clock.advance(2)
        assert await reservations.open(token, 7, 60) == (Outcome.UNKNOWN, [])
        return
    monkeypatch.setattr(module, "RESERVATION_SECONDS", 1)
    token = await reservations.reserve(7)
    await asyncio.sleep(1.2)  # Redis's own clock: its key's 1 s life runs out
    assert await reservations.open(token, 7, 60) == (Outcome.UNKNOWN, [])
