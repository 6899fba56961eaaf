"""Readers that never read, on SSE and multipart: their backlog is bounded in bytes.

Each stream subscribes with 30 aliases of a post's `content` (about 150 kB per event)
and reads nothing; posts are updated meanwhile. The frame count alone
(`GQL_FEED_WS_SEND_BACKLOG`, 500) would let each stream hold 75 MB; the byte bound
(`GQL_FEED_WS_SEND_BACKLOG_BYTES`, 1 MiB by default) ends each as a slow consumer after a
few events. Meanwhile a cheap query from another client is answered, and the server's
memory stays within a generous bound.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.helpers.live import signup, wait_for_values
from tests.helpers.metrics import gauges
from tests.helpers.server import TLS, LiveServer
from tests.helpers.streams import MULTIPART, SSE

ALIASES = " ".join(f"c{n}: content" for n in range(30))
UPDATES = 120
# Generous sanity bounds, not measurements: four stalled streams without the byte bound
# grow the server by about 70 MB over these updates; with it, by a few MB.
MAX_RSS_GROWTH = 35 * 1024 * 1024
CHEAP_QUERY_SECONDS = 5.0


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def stalled_stream(server: LiveServer, token: str, accept: str, name: str) -> socket.socket:
    """A subscription request on a socket that will never be read (a tiny receive buffer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    body = json.dumps({"query": f"subscription {name} {{ postEvents {{ post {{ {ALIASES} }} }} }}"})
    request = (
        f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    )
    sock.sendall(request.encode())
    return sock


def cheap_query_seconds(server: LiveServer) -> float:
    started = time.monotonic()
    response = httpx.post(
        server.graphql_url, json={"query": "{ __typename }"}, timeout=30, verify=TLS
    )
    assert response.json() == {"data": {"__typename": "Query"}}
    return time.monotonic() - started


async def test_stalled_sse_and_multipart_readers_are_dropped_by_bytes(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory()
    assert server.process is not None
    reader, _ = await signup(server)
    writer, _ = await signup(server)
    post = await asyncio.to_thread(server.create_post, writer, "Big post", "Some content")
    streams = [
        stalled_stream(server, reader, accept, f"S{n}")
        for n, accept in enumerate((SSE, SSE, MULTIPART, MULTIPART))
    ]
    try:
        await wait_for_values(server, subscriptions=4, groups=4)
        before = rss(server.process.pid)
        slowest = 0.0
        for n in range(UPDATES):
            content = f"{n:05d}" + "y" * 4_895
            answer = await asyncio.to_thread(
                server.graphql,
                "mutation($id: ID!, $c: String!) { updatePost(id: $id, input: {content: $c}) { id } }",
                {"id": post["id"], "c": content},
                writer,
            )
            assert "errors" not in answer, answer
            if n % 10 == 0:
                slowest = max(slowest, await asyncio.to_thread(cheap_query_seconds, server))
        grown = rss(server.process.pid) - before
        values = await asyncio.to_thread(gauges, server)
    finally:
        for sock in streams:
            sock.close()
    assert values["gql_feed_live_slow_consumers_total"] >= 4, values
    assert values["gql_feed_live_subscriptions"] == 0, values
    assert grown < MAX_RSS_GROWTH, f"the server grew by {grown / 1e6:.1f} MB"
    assert slowest < CHEAP_QUERY_SECONDS, slowest
