"""One login cannot fill the process's live caps: per-user caps on streams, subscriptions
and groups, counted across every transport (`live.quotas`).

The server here has small caps so the tests stay quick: 12 groups per process, and per
user 4 groups, 6 streams and 8 subscriptions. Another user is served while one login
sits on its caps, and a cheap query is answered within a generous bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AsyncExitStack

import httpx
import pytest

from tests.helpers.live import create_post, raw_client, signup, wait_for_values
from tests.helpers.server import TLS, LiveServer
from tests.helpers.streams import MULTIPART, SSE, code_of, multipart, single, sse

CAPS = {
    "GQL_FEED_LIVE_MAX_GROUPS": "12",
    "GQL_FEED_LIVE_MAX_GROUPS_PER_USER": "4",
    "GQL_FEED_LIVE_MAX_STREAMS_PER_USER": "6",
    "GQL_FEED_LIVE_MAX_SUBSCRIPTIONS_PER_USER": "8",
}
CHEAP_QUERY_SECONDS = 5.0  # a generous sanity bound, not a measurement


def named(name: str) -> str:
    return f"subscription {name} {{ postEvents {{ id post {{ title }} }} }}"


async def cheap_query_seconds(server: LiveServer) -> float:
    started = time.monotonic()
    async with httpx.AsyncClient(verify=TLS) as http:
        response = await http.post(server.graphql_url, json={"query": "{ __typename }"})
    assert response.json() == {"data": {"__typename": "Query"}}
    return time.monotonic() - started


@pytest.fixture
async def server(shared_server_factory: Callable[..., LiveServer]) -> LiveServer:
    """The module's server, with nothing left open by the test before."""
    shared = shared_server_factory(**CAPS)
    await wait_for_values(shared, subscriptions=0, groups=0, connections=0)
    return shared


async def test_one_login_cannot_take_every_group(server: LiveServer) -> None:
    attacker, _ = await signup(server)
    victim, _ = await signup(server)
    writer, _ = await signup(server)
    async with AsyncExitStack() as stack:
        streams = []
        # Twelve distinct subscriptions would fill the process; the fifth is refused.
        for n in range(12):
            stream = await stack.enter_async_context(
                sse(server, named(f"A{n}"), token=attacker, method="POST")
            )
            assert stream.response.status_code == 200
            streams.append(stream)
            if n < 4:
                await wait_for_values(server, groups=n + 1)
            else:
                refused = await stream.next()
                assert refused.event == "next"
                assert refused.json()["errors"][0]["extensions"]["code"] == "TOO_MANY_GROUPS"
                assert (await stream.next()).event == "complete"
        await wait_for_values(server, groups=4, subscriptions=4)
        assert await cheap_query_seconds(server) < CHEAP_QUERY_SECONDS

        # Another user's new subscription still gets a group, and its events.
        mine = await stack.enter_async_context(
            sse(server, named("Victim"), token=victim, method="POST")
        )
        await wait_for_values(server, groups=5, subscriptions=5)
        post = await create_post(server, writer, "For the victim")
        event = (await mine.next()).json()["data"]["postEvents"]
        assert event["post"] == {"title": post["title"]}


async def test_one_login_cannot_open_streams_without_end(server: LiveServer) -> None:
    attacker, _ = await signup(server)
    victim, _ = await signup(server)
    query = named("Idle")
    async with AsyncExitStack() as stack:
        # Six streams across the transports: the cap.
        for _ in range(3):
            stream = await stack.enter_async_context(
                sse(server, query, token=attacker, method="POST")
            )
            assert stream.response.status_code == 200
        for _ in range(2):
            parts = await stack.enter_async_context(multipart(server, attacker, query))
            assert parts.response.status_code == 200
        ws = await stack.enter_async_context(raw_client(server))
        assert (await ws.init(attacker))["type"] == "connection_ack"
        await wait_for_values(server, subscriptions=5)

        # A seventh, by any transport, is refused.
        async with httpx.AsyncClient(timeout=30, verify=TLS) as http:
            headers = {"authorization": f"Bearer {attacker}", "accept": SSE}
            refused = await http.post(server.graphql_url, json={"query": query}, headers=headers)
            assert refused.status_code == 429
            assert code_of(refused) == "TOO_MANY_STREAMS"
            headers["accept"] = MULTIPART
            refused = await http.post(server.graphql_url, json={"query": query}, headers=headers)
            assert refused.status_code == 429
            assert code_of(refused) == "TOO_MANY_STREAMS"
        async with raw_client(server) as seventh:
            await seventh.send(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {attacker}"}}
            )
            code, reason = await seventh.closed()
            assert code == 4403
            assert "streams" in reason
        async with single(attacker) as one:
            assert (await one.reserve(server)).status_code == 201
            async with one.stream(server) as held:
                assert held.response.status_code == 429
                await held.response.aread()
                assert code_of(held.response) == "TOO_MANY_STREAMS"
        assert await cheap_query_seconds(server) < CHEAP_QUERY_SECONDS

        # Someone else is served as usual.
        async with sse(server, query, token=victim, method="POST") as theirs:
            assert theirs.response.status_code == 200
            await wait_for_values(server, subscriptions=6)

    # Streams that end give their places back.
    await wait_for_values(server, subscriptions=0, connections=0)
    async with sse(server, query, token=attacker, method="POST") as again:
        assert again.response.status_code == 200


async def test_one_login_cannot_hold_subscriptions_without_end(server: LiveServer) -> None:
    attacker, _ = await signup(server)
    query = named("Many")
    async with raw_client(server) as first, raw_client(server) as second:
        await first.init(attacker)
        await second.init(attacker)
        for n in range(5):
            await first.subscribe(f"a{n}", query)
        for n in range(3):
            await second.subscribe(f"b{n}", query)
        await wait_for_values(server, subscriptions=8)
        await second.subscribe("over", query)
        refused = await second.receive()
        assert refused["type"] == "error"
        assert refused["id"] == "over"
        assert refused["payload"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
        await first.complete("a0")
        await wait_for_values(server, subscriptions=7)
        await second.subscribe("again", query)
        await wait_for_values(server, subscriptions=8)
    await wait_for_values(server, subscriptions=0)
