"""The graphql-sse recipe (examples/graphql-sse) against a real server, in both of the
client's modes, across a dropped connection: the server restarts, another user posts
while the client is away, and the client receives every event once, in order."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from tests.helpers.live import create_post, wait_for_values
from tests.helpers.node_clients import npm_installed
from tests.helpers.recipes import EXAMPLES, PASSWORD, recipe
from tests.helpers.server import LiveServer


@pytest.fixture(scope="module")
def example() -> Path:
    return npm_installed(EXAMPLES / "graphql-sse", "the graphql-sse example")


@pytest.mark.parametrize("mode", ["distinct", "single"])
async def test_no_event_lost_or_repeated_across_a_restart(
    example: Path, live_server: LiveServer, mode: str
) -> None:
    # Both modes on the module's server: each has users of its own, and the restart
    # the first mode makes leaves the second a server like any other.
    server = live_server
    email = f"sse-{uuid.uuid4().hex[:10]}@example.com"
    await asyncio.to_thread(server.signup_and_login, email, "Reader")
    writer, _ = await asyncio.to_thread(server.signup_and_login, None, "Writer")
    env = {
        "GQL_FEED_URL": server.graphql_url,
        "FEED_EMAIL": email,
        "FEED_PASSWORD": PASSWORD,
        "FEED_MODE": mode,
        "FEED_EXIT_AFTER": "5",
    }
    async with recipe(example, "feed.mjs", **env) as run:
        await run.next("logged-in")
        await wait_for_values(server, subscriptions=1)
        before = [await create_post(server, writer, f"Before {n}") for n in range(2)]
        received = await run.events(2)

        await asyncio.to_thread(server.restart)  # every stream drops
        gap = [await create_post(server, writer, f"While away {n}") for n in range(3)]
        received += await run.events(3, timeout=60)
        assert await asyncio.wait_for(run.process.wait(), 20) == 0

    assert [e["post"]["id"] for e in received] == [p["id"] for p in before + gap]
    ids = [int(e["id"]) for e in received]
    assert ids == list(range(ids[0], ids[0] + 5)), ids  # none lost, none twice
    assert any(line.get("reconnected") for line in run.of("connected")) or mode == "distinct"
