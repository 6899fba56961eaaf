"""Apollo Client 4's multipart subscriptions across a dropped connection: the client
resubscribes with `postEvents(after:)` when the stream ends (the README's recipe), and
receives every event once, in order, including those of the gap."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from tests.helpers.live import create_post, signup, wait_for_values
from tests.helpers.node_clients import clients, node_client
from tests.helpers.server import LiveServer

__all__ = ["clients"]


async def test_apollo_multipart_resumes_with_after(
    clients: Path, live_server_factory: Callable[..., LiveServer]
) -> None:
    server = live_server_factory()
    reader, _ = await signup(server)
    writer, _ = await signup(server)
    env = {"GQL_FEED_URL": server.graphql_url, "FEED_TOKEN": reader, "FEED_EXIT_AFTER": "5"}
    async with node_client(clients, "multipart-resume", **env) as client:
        await wait_for_values(server, subscriptions=1)
        before = [await create_post(server, writer, f"Before {n}") for n in range(2)]
        received = await client.events(2)
        await asyncio.to_thread(server.restart)  # the stream ends: SHUTTING_DOWN
        gap = [await create_post(server, writer, f"While away {n}") for n in range(3)]
        received += await client.events(3, timeout=60)
        assert await client.exit_status() == 0
    assert [e["post"]["id"] for e in received] == [p["id"] for p in before + gap]
    ids = [int(e["id"]) for e in received]
    assert ids == list(range(ids[0], ids[0] + 5)), ids
    assert any(line["type"] == "ended" for line in client.lines)
