"""Coalesced direct writes: frames that wait for one socket leave in one transport write.

Through real servers and real clients: each frame still arrives whole, in order, under
its own subscription id; a socket that cannot keep up is still closed with 1013 while
the others keep receiving; and where pre-built frames would be wrong (per-message
deflate) or out of reach (uvicorn's `websockets` implementation), the ordinary ASGI send
carries them instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
from websockets.frames import Frame, Opcode

from gql_feed.live.connection import SLOW_CONSUMER_REASON
from gql_feed.live.frames import Flusher, OutFrame, text_frame
from tests.helpers.live import (
    IDS_ONLY,
    POST_EVENTS,
    SUBPROTOCOLS,
    TRANSPORT_WS,
    create_post,
    flood_until_one_subscription_is_left,
    raw_client,
    read_until_closed,
    signup,
    stalled_client,
    wait_for_values,
)
from tests.helpers.metrics import gauges
from tests.helpers.server import LiveServer

both = pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)


def event_id(message: dict[str, Any]) -> int:
    return int(message["payload"]["data"]["postEvents"]["id"])


def direct(server: LiveServer) -> tuple[float, float]:
    """(frames written straight to transports, transport writes carrying them)."""
    values = gauges(server)
    return (
        values.get("gql_feed_live_direct_frames_total", 0.0),
        values.get("gql_feed_live_direct_writes_total", 0.0),
    )


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65_535, 65_536, 70_000])
def test_a_prebuilt_frame_is_the_frame_websockets_would_write(length: int) -> None:
    data = ("é" * length).encode()[:length]
    expected = Frame(Opcode.TEXT, data).serialize(mask=False, extensions=[])
    assert text_frame(data) == expected
    text = "x" * length
    assert OutFrame(text).wire == Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


async def test_a_flush_waits_after_the_previous_one_as_long_as_it_took() -> None:
    """Writing never takes more than half the loop: what arrives meanwhile waits and
    leaves with the next flush (a lower bound on the loop's clock, not a timing)."""
    loop = asyncio.get_running_loop()
    flusher = Flusher(loop)
    started: list[float] = []
    second_flushed = loop.create_future()

    class Busy:
        def flush(self) -> tuple[int, int]:
            started.append(loop.time())
            until = time.perf_counter() + 0.05
            while time.perf_counter() < until:
                pass
            if len(started) == 2:
                second_flushed.set_result(None)
            return 3, 1

    flusher.add(Busy())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(started) == 1
    flusher.add(Busy())
    await asyncio.wait_for(second_flushed, 10)
    assert started[1] - started[0] >= 0.099


@both
async def test_subscriptions_sharing_a_socket_get_separate_frames_in_order(
    live_server: LiveServer, subprotocol: str
) -> None:
    """Three subscriptions on one socket, two of them in the same group: each event's
    three frames leave in one write, yet each arrives as its own message, under its own
    id and in id order, and nothing else is in them.

    This also fails if a default server stops writing directly (an uvicorn whose
    internals `gql_feed.live.frames` relies on have changed): the counters stay put.
    """
    token, _ = await signup(live_server)
    frames_before, writes_before = await asyncio.to_thread(direct, live_server)
    async with raw_client(live_server, subprotocol) as client:
        await client.init(token)
        await client.subscribe("a", POST_EVENTS)
        await client.subscribe("b", IDS_ONLY)
        await client.subscribe("c", POST_EVENTS)
        await wait_for_values(live_server, subscriptions=3)
        for n in range(8):
            await create_post(live_server, token, f"Coalesced {n}")
        messages = await client.events(24)
    frames_after, writes_after = await asyncio.to_thread(direct, live_server)

    by_id: dict[str, list[dict[str, Any]]] = {"a": [], "b": [], "c": []}
    for message in messages:
        by_id[message["id"]].append(message)
    first = event_id(by_id["a"][0])
    for op_id, received in by_id.items():
        assert [event_id(m) for m in received] == list(range(first, first + 8)), op_id
        assert all(
            m["type"] == ("next" if subprotocol == TRANSPORT_WS else "data") for m in received
        )
        assert all(set(m) == {"id", "type", "payload"} for m in received)
    titles = [m["payload"]["data"]["postEvents"]["post"]["title"] for m in by_id["a"]]
    assert titles == [f"Coalesced {n}" for n in range(8)]
    assert by_id["a"] == [{**m, "id": "a"} for m in by_id["c"]]
    assert set(by_id["b"][0]["payload"]["data"]["postEvents"]["post"]) == {"id"}

    written, writes = frames_after - frames_before, writes_after - writes_before
    assert written >= 24, "a default server no longer writes frames directly"
    assert writes < written, "frames waiting for one socket did not share a write"


@both
async def test_a_stream_reaches_every_socket_complete_and_in_order(
    live_server: LiveServer, subprotocol: str
) -> None:
    """Posts created back to back from several writers at once, read by a few sockets."""
    token, _ = await signup(live_server)
    clients = 5
    per_writer, writers = 6, 3
    async with AsyncExitStack() as stack:
        readers = [
            await stack.enter_async_context(raw_client(live_server, subprotocol))
            for _ in range(clients)
        ]
        for n, reader in enumerate(readers):
            await reader.init(token)
            await reader.subscribe(f"s{n}", IDS_ONLY)
        await wait_for_values(live_server, subscriptions=clients)

        async def writer(name: str) -> None:
            for n in range(per_writer):
                await create_post(live_server, token, f"Stream {name} {n}")

        await asyncio.gather(*(writer(str(w)) for w in range(writers)))
        got = await asyncio.gather(*(r.events(per_writer * writers) for r in readers))
    start = event_id(got[0][0])
    for n, messages in enumerate(got):
        assert [m["id"] for m in messages] == [f"s{n}"] * len(messages)
        assert [event_id(m) for m in messages] == list(range(start, start + len(messages)))


async def test_a_slow_socket_is_still_closed_1013_while_others_keep_up(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    """The direct path hands a backed-up socket to the ordinary one, which closes it."""
    server = live_server_factory(GQL_FEED_WS_SEND_BACKLOG="5")
    token, _ = await signup(server)
    async with (
        raw_client(server) as fast,
        stalled_client(server) as slow,
    ):
        await fast.init(token)
        await fast.subscribe("fast", IDS_ONLY)
        await slow.init(token)
        for n in range(50):
            await slow.subscribe(f"s{n}", POST_EVENTS)
        await wait_for_values(server, subscriptions=51)

        events = await flood_until_one_subscription_is_left(server, token)
        received = await fast.events(events)
        start = event_id(received[0])
        assert [event_id(m) for m in received] == list(range(start, start + events))
        frames, writes = await asyncio.to_thread(direct, server)
        assert frames > 0
        assert writes > 0
        assert gauges(server)["gql_feed_live_slow_consumers_total"] == 1
        _, code, reason = await read_until_closed(slow, "s49", start - 1)
    assert (code, reason) == (1013, SLOW_CONSUMER_REASON)


@pytest.mark.parametrize(
    "env",
    [
        {"GQL_FEED_WS_PER_MESSAGE_DEFLATE": "true"},
        {"GQL_FEED_WS_IMPLEMENTATION": "websockets"},
    ],
    ids=["per-message-deflate", "websockets-implementation"],
)
async def test_where_frames_cannot_be_prebuilt_the_ordinary_send_carries_them(
    live_server_factory: Callable[..., LiveServer], env: dict[str, str]
) -> None:
    server = live_server_factory(**env)
    token, _ = await signup(server)
    async with raw_client(server, compression="deflate") as client:
        await client.init(token)
        await client.subscribe("a", IDS_ONLY)
        await client.subscribe("b", IDS_ONLY)
        await wait_for_values(server, subscriptions=2)
        for n in range(3):
            await create_post(server, token, f"Ordinary {n}")
        messages = await client.events(6)
    assert [m["id"] for m in messages] == ["a", "b"] * 3
    ids = [event_id(m) for m in messages]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    assert await asyncio.to_thread(direct, server) == (0.0, 0.0)
