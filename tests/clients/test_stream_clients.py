"""Real clients of the HTTP streaming transports (tests/clients), with Node: graphql-sse's
client over SSE in both of its modes and Apollo Client 4's HttpLink over multipart. Each
receives the postEvents of a post that another user creates."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.live import create_post, signup, wait_for_values, wait_until_idle
from tests.helpers.node_clients import clients, node_client
from tests.helpers.server import LiveServer

__all__ = ["clients"]


@pytest.mark.parametrize("transport", ["sse", "sse-single", "multipart"])
async def test_client_receives_another_users_posts(
    clients: Path, live_server: LiveServer, transport: str
) -> None:
    reader, _ = await signup(live_server)
    writer, _ = await signup(live_server)
    env = {"GQL_FEED_URL": live_server.graphql_url, "FEED_TOKEN": reader, "FEED_EXIT_AFTER": "2"}
    async with node_client(clients, transport, **env) as client:
        await wait_for_values(live_server, subscriptions=1)
        posts = [await create_post(live_server, writer, f"For {transport} {n}") for n in range(2)]
        lines = await client.events(2)
        assert [line["post"]["id"] for line in lines] == [post["id"] for post in posts]
        assert [line["action"] for line in lines] == ["CREATED", "CREATED"]
        assert lines[0]["post"]["creator"]["name"] == "Tester"
        assert int(lines[1]["id"]) == int(lines[0]["id"]) + 1
        assert await client.exit_status() == 0
    if transport == "sse-single":
        # Reserve, open the one stream, send the operation; after two events, stop it.
        url = live_server.graphql_url
        assert client.requests() == [
            ("PUT", url, 201),
            ("GET", url, 200),
            ("POST", url, 202),
            ("DELETE", url, 200),
        ]
    await wait_until_idle(live_server)
