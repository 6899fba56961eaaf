"""Resuming with postEvents(after:) and slow consumers: nothing missing, nothing doubled."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest

from gql_feed.live.connection import SLOW_CONSUMER_REASON
from tests.helpers.live import (
    IDS_ONLY,
    POST_EVENTS,
    SUBPROTOCOLS,
    TRANSPORT_WS,
    create_post,
    event_ids,
    flood_until_one_subscription_is_left,
    raw_client,
    read_until_closed,
    signup,
    stalled_client,
    update_post,
    wait_for_values,
    wait_until_idle,
)
from tests.helpers.metrics import gauges
from tests.helpers.server import LiveServer

both = pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)


async def live_position(server: LiveServer, token: str) -> tuple[int, str]:
    """The id of a fresh event (everything up to it has happened), and its post."""
    async with raw_client(server) as client:
        await client.init(token)
        await client.subscribe("mark", IDS_ONLY)
        await wait_for_values(server, subscriptions=1)
        post = await create_post(server, token, "Position marker")
        [message] = await client.events(1)
    return event_ids([message])[0], post["id"]


async def resumed_events(
    server: LiveServer, token: str, subprotocol: str, after: int, count: int
) -> list[dict[str, Any]]:
    async with raw_client(server, subprotocol) as client:
        await client.init(token)
        await client.subscribe("r", IDS_ONLY, {"after": str(after)})
        return await client.events(count)


async def error_codes(server: LiveServer, token: str, subprotocol: str, after: object) -> list[str]:
    async with raw_client(server, subprotocol) as client:
        await client.init(token)
        await client.subscribe("r", IDS_ONLY, {"after": after})
        message = await client.receive()
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    return [error["extensions"]["code"] for error in errors]


@both
async def test_resume_after_a_drop_misses_nothing(
    live_server: LiveServer, subprotocol: str
) -> None:
    token, _ = await signup(live_server)
    last_seen, post_id = await live_position(live_server, token)
    # Dropped: three events happen meanwhile.
    for n in range(3):
        await update_post(live_server, token, post_id, f"Edited while away {n}")
    async with raw_client(live_server, subprotocol) as client:
        await client.init(token)
        await client.subscribe("again", IDS_ONLY, {"after": str(last_seen)})
        missed = await client.events(3)
        await update_post(live_server, token, post_id, "Edited once back")
        [live] = await client.events(1)
    assert event_ids([*missed, live]) == [last_seen + n for n in range(1, 5)]
    assert all(m["id"] == "again" for m in [*missed, live])
    assert [m["payload"]["data"]["postEvents"]["action"] for m in missed] == ["UPDATED"] * 3
    await wait_until_idle(live_server)


async def test_resume_with_the_full_selection_and_a_filter(live_server: LiveServer) -> None:
    """Replayed events are executed like live ones: same shape, same `actions` filter."""
    token, _ = await signup(live_server)
    last_seen, post_id = await live_position(live_server, token)
    await update_post(live_server, token, post_id, "Replayed title")
    second = await create_post(live_server, token, "Replayed creation")
    async with raw_client(live_server) as client:
        await client.init(token)
        variables = {"after": str(last_seen), "actions": ["CREATED"]}
        await client.subscribe("full", POST_EVENTS, variables)
        [replayed] = await client.events(1)
    event = replayed["payload"]["data"]["postEvents"]
    assert event["id"] == str(last_seen + 2)
    assert event["action"] == "CREATED"
    assert event["post"]["id"] == second["id"]
    assert event["post"]["title"] == "Replayed creation"
    assert set(event) == {"id", "action", "occurredAt", "post"}


@both
async def test_resume_races_concurrent_writers(live_server: LiveServer, subprotocol: str) -> None:
    """A reader that keeps dropping and resuming while two writers run gets every id once.

    Bounded by events, not time: each connection reads one to four events and drops. Up
    to `end` more are always coming, so a receive that times out is an event lost (not a
    cue to resume, which would fetch the lost event from the log and hide the loss)."""
    token, _ = await signup(live_server)
    start, post_id = await live_position(live_server, token)
    writes_each = 15

    async def writer(name: str) -> None:
        for n in range(writes_each):
            if n % 3 == 0:
                await create_post(live_server, token, f"Race {name} {n}")
            else:
                await update_post(live_server, token, post_id, f"Race {name} {n}")

    end = start + 2 * writes_each
    writers = asyncio.gather(writer("a"), writer("b"))
    seen: list[int] = []
    rng = random.Random(7)
    while not seen or seen[-1] < end:
        after = seen[-1] if seen else start
        async with raw_client(live_server, subprotocol) as client:
            await client.init(token)
            await client.subscribe("race", IDS_ONLY, {"after": str(after)})
            for _ in range(rng.randint(1, 4)):
                seen += event_ids([await client.receive()])
                if seen[-1] >= end:
                    break
    await writers
    assert seen == list(range(start + 1, end + 1))
    await wait_until_idle(live_server)


@both
async def test_resume_point_unknown_to_the_log_is_refused(
    live_server: LiveServer, subprotocol: str
) -> None:
    token, _ = await signup(live_server)
    assert await error_codes(live_server, token, subprotocol, str(10**12)) == ["EVENT_LOG_EXPIRED"]
    assert await error_codes(live_server, token, subprotocol, "yesterday") == ["BAD_USER_INPUT"]
    assert await error_codes(live_server, token, subprotocol, "-3") == ["BAD_USER_INPUT"]
    await wait_until_idle(live_server)


async def test_replay_is_capped(live_server_factory: Callable[..., LiveServer]) -> None:
    server = live_server_factory(GQL_FEED_REPLAY_MAX_EVENTS="3")
    token, _ = await signup(server)
    newest, post_id = await live_position(server, token)
    for n in range(3):
        await update_post(server, token, post_id, f"Capped {n}")
    newest += 3
    assert await error_codes(server, token, TRANSPORT_WS, "0") == ["EVENT_LOG_EXPIRED"]
    assert await error_codes(server, token, TRANSPORT_WS, str(newest - 4)) == ["EVENT_LOG_EXPIRED"]
    replayed = await resumed_events(server, token, TRANSPORT_WS, newest - 3, 3)
    assert event_ids(replayed) == [newest - 2, newest - 1, newest]


# Slow consumers.


async def test_slow_consumer_is_closed_with_1013_and_resumes_without_loss(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory(GQL_FEED_WS_SEND_BACKLOG="5")
    token, _ = await signup(server)
    start, _ = await live_position(server, token)
    async with (
        raw_client(server) as fast,
        stalled_client(server) as slow,
    ):
        await fast.init(token)
        await fast.subscribe("fast", IDS_ONLY)
        await slow.init(token)
        # Many subscriptions with big frames: the slow socket backs up quickly.
        for n in range(100):
            await slow.subscribe(f"s{n}", POST_EVENTS)
        await wait_for_values(server, subscriptions=101)

        # The slow client reads nothing while events are created (about 0.5 MB each for
        # it), until it is dropped: at once, its subscriptions gone before it reads.
        events = await flood_until_one_subscription_is_left(server, token)
        assert gauges(server)["gql_feed_live_slow_consumers_total"] >= 1
        received = await fast.events(events)
        assert event_ids(received) == list(range(start + 1, start + events + 1))

        # Now it reads: whatever was already sent, then the close with its reason. The
        # last subscription is written last in each fan-out: the one that was cut short.
        last_seen, code, reason = await read_until_closed(slow, "s99", start)
    assert code == 1013
    assert reason == SLOW_CONSUMER_REASON
    assert last_seen < start + events

    # It comes back with the last id it saw and gets the rest, nothing twice.
    missed = start + events - last_seen
    replayed = await resumed_events(server, token, TRANSPORT_WS, last_seen, missed)
    assert event_ids(replayed) == list(range(last_seen + 1, start + events + 1))
    assert gauges(server)["gql_feed_live_subscriptions"] == 0
