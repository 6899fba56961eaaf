"""The Relay recipe (examples/relay) against a real server: relay-runtime with its default
getDataID, which keys every record by `id` alone. On a fresh server the first post and the
first event share the number 1; with global ids they stay two records. The subscription
(graphql-ws) resumes across a restart with no event lost or repeated."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from gql_feed.schema.ids import number_of
from tests.helpers.live import create_post, wait_for_values
from tests.helpers.node_clients import npm_installed
from tests.helpers.recipes import EXAMPLES, PASSWORD, recipe
from tests.helpers.server import LiveServer


@pytest.fixture(scope="module")
def example() -> Path:
    return npm_installed(EXAMPLES / "relay", "the Relay example")


async def test_relay_store_keeps_posts_and_events_apart(
    example: Path, live_server_factory: Callable[..., LiveServer]
) -> None:
    server = live_server_factory()
    email = f"relay-{uuid.uuid4().hex[:10]}@example.com"
    await asyncio.to_thread(server.signup_and_login, email, "Rita")
    writer, _ = await asyncio.to_thread(server.signup_and_login, None, "Writer")
    env = {
        "GQL_FEED_URL": server.graphql_url,
        "FEED_EMAIL": email,
        "FEED_PASSWORD": PASSWORD,
        "FEED_STATUS": "Relaying",
        "FEED_EXIT_AFTER": "3",
    }
    async with recipe(example, "feed.mjs", **env) as run:
        user = (await run.next("logged-in"))["user"]
        assert user["name"] == "Rita"
        ready = await run.next("ready")
        assert ready["page"]["totalPosts"] == 0
        wrote = await run.next("wrote")
        assert wrote["record"] == {"typename": "User", "title": None, "name": "Rita"}
        node = await run.next("node")
        assert node["node"] == {"__typename": "User", "id": user["id"], "name": "Rita"}
        await run.next("subscribed")
        await wait_for_values(server, subscriptions=1)

        first = await create_post(server, writer, "Number one")
        event = (await run.events(1))[0]
        assert event["id"] == "1"
        assert number_of(first["id"]) == 1  # the same number...
        assert event["eventRecord"]["typename"] == "PostEvent"  # ...two records
        assert event["postRecord"] == {"typename": "Post", "title": "Number one", "name": None}

        await asyncio.to_thread(server.restart)  # the WebSocket drops
        gap = [await create_post(server, writer, f"While away {n}") for n in range(2)]
        later = await run.events(2, timeout=60)
        assert await asyncio.wait_for(run.process.wait(), 20) == 0

    assert [e["post"]["id"] for e in later] == [p["id"] for p in gap]
    assert [e["id"] for e in later] == ["2", "3"]  # none lost, none twice
    assert all(e["postRecord"]["typename"] == "Post" for e in later)
