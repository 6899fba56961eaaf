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
    ReservationLimits,
    Reservations,
)
from tests.helpers.clock import SkippingClock
from tests.helpers.services import redis_url, unique_channel


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


# Small bounds, so that the tests reach them (the settings' defaults are larger).
LIMITS = ReservationLimits(seconds=1, per_user=3, inbox_commands=4, inbox_bytes=100)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def registry(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Reservations, Delivered]]:
    chosen: Reservations
    if request.param == "memory":
        chosen = LocalReservations(LIMITS)
    else:
        chosen = RedisReservations(redis_url(), unique_channel() + ":sse:", LIMITS)
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
    await reservations.close(token, 7)
    assert await reservations.submit(token, 7, "d", b"x", 2) is Outcome.UNKNOWN


async def test_a_reservation_nobody_opens_expires(
    registry: tuple[Reservations, Delivered],
) -> None:
    """README: a reservation not opened within GQL_FEED_SSE_RESERVATION_SECONDS is
    forgotten. In this process the time passes on a test clock; in Redis, whose keys expire
    on Redis's own clock, it is cut to 1 s and waited for."""
    reservations, _ = registry
    if isinstance(reservations, LocalReservations):
        clock = SkippingClock()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(module, "time", clock)
            token = await reservations.reserve(7)
            other = await reservations.reserve(7)
            assert token is not None
            assert other is not None
            clock.advance(LIMITS.seconds - 0.5)
            assert (await reservations.open(other, 7, 60))[0] is Outcome.DONE  # not yet
            clock.advance(1)
            assert await reservations.open(token, 7, 60) == (Outcome.UNKNOWN, [])
        return
    token = await reservations.reserve(7)
    assert token is not None
    await asyncio.sleep(LIMITS.seconds + 0.2)  # Redis's own clock: the key's life runs out
    assert await reservations.open(token, 7, 60) == (Outcome.UNKNOWN, [])


async def test_a_user_holds_a_bounded_number_of_reservations(
    registry: tuple[Reservations, Delivered],
) -> None:
    reservations, _ = registry
    tokens = [await reservations.reserve(7) for _ in range(3)]
    assert None not in tokens
    assert await reservations.reserve(7) is None
    assert await reservations.reserve(8) is not None  # another user's are their own
    # An opened one still counts; a closed one, or one that expired, no longer does.
    assert (await reservations.open(str(tokens[0]), 7, 60))[0] is Outcome.DONE
    assert await reservations.reserve(7) is None
    await reservations.close(str(tokens[0]), 7)
    assert await reservations.reserve(7) is not None
    await asyncio.sleep(1.2)
    assert [await reservations.reserve(7) for _ in range(3)].count(None) == 0


async def test_an_unopened_inbox_is_bounded_in_commands_and_bytes(
    registry: tuple[Reservations, Delivered],
) -> None:
    reservations, delivered = registry
    token = await reservations.reserve(7)
    assert token is not None
    for n in range(4):
        assert await reservations.submit(token, 7, f"o{n}", b"start", 10) is Outcome.DONE
    assert await reservations.submit(token, 7, "o4", b"start", 10) is Outcome.CROWDED
    assert await reservations.cancel(token, 7, "o0", b"stop") is Outcome.CROWDED
    other = await reservations.reserve(7)
    assert other is not None
    assert await reservations.submit(other, 7, "big", b"x" * 90, 10) is Outcome.DONE
    assert await reservations.submit(other, 7, "more", b"x" * 20, 10) is Outcome.CROWDED
    assert await reservations.submit(other, 7, "less", b"x" * 10, 10) is Outcome.DONE
    # Opening takes what waited and makes room again.
    outcome, waiting = await reservations.open(token, 7, 60)
    assert (outcome, len(waiting)) == (Outcome.DONE, 4)
    for n in range(5, 12):
        assert await reservations.submit(token, 7, f"o{n}", b"start", 20) is Outcome.DONE
        await delivered.next()


@pytest.mark.redis
async def test_a_redis_reservation_expires_from_the_moment_it_is_made() -> None:
    """The hash and its expiry come in one command: no key without one, even for a moment."""
    prefix = unique_channel() + ":sse:"
    reservations = RedisReservations(redis_url(), prefix, LIMITS)
    try:
        token = await reservations.reserve(7)
        assert token is not None
        assert 0 < await reservations.redis.pttl(prefix + token) <= 1000
        assert 0 < await reservations.redis.pttl(f"{prefix}user:7") <= 1000
    finally:
        await reservations.stop()
