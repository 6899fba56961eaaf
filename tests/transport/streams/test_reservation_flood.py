"""Reservations nobody opens cannot be filled without bound (SSE single-connection mode).

The attack: one login reserves 20 streams, opens none, and POSTs 30 operations of 60 kB
to each. Before, all were kept (36 MB in the process on the memory bus, in Redis on the
Redis bus). Now a login holds at most `GQL_FEED_SSE_MAX_RESERVATIONS_PER_USER` (10)
reservations (429 `TOO_MANY_STREAMS`), and an inbox at most
`GQL_FEED_SSE_RESERVATION_INBOX_BYTES` (256 KiB) of commands (429 `TOO_MANY_REQUESTS`):
about 2.6 MB in all. The memory bounds below are generous sanity bounds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis.asyncio as redis

from tests.helpers.live import signup
from tests.helpers.server import TLS, LiveServer
from tests.helpers.services import redis_url, unique_channel
from tests.helpers.streams import TOKEN_HEADER, code_of

RESERVATIONS = 20
OPERATIONS = 30
QUERY = "subscription { postEvents { id } } #" + "x" * 60_000
MAX_RSS_GROWTH = 20 * 1024 * 1024
MAX_REDIS_BYTES = 8 * 1024 * 1024
CHEAP_QUERY_SECONDS = 5.0


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def flood(server: LiveServer, token: str) -> tuple[list[str], list[str], float]:
    """Reserve, then fill every reservation; the refusals' codes and the slowest cheap query."""
    auth = {"authorization": f"Bearer {token}"}
    refusals: list[str] = []
    slowest = 0.0
    async with httpx.AsyncClient(timeout=30, verify=TLS) as http:
        reserved = []
        for _ in range(RESERVATIONS):
            response = await http.put(server.graphql_url, headers=auth)
            if response.status_code == 201:
                reserved.append(response.text)
            else:
                assert response.status_code == 429
                refusals.append(code_of(response))

        async def submit(stream: str, n: int) -> None:
            body = {"query": QUERY, "extensions": {"operationId": f"op{n}"}}
            headers = {**auth, TOKEN_HEADER: stream}
            response = await http.post(server.graphql_url, json=body, headers=headers)
            if response.status_code != 202:
                assert response.status_code == 429, response.text
                refusals.append(code_of(response))

        for n in range(OPERATIONS):
            await asyncio.gather(*(submit(stream, n) for stream in reserved))
            started = time.monotonic()
            cheap = await http.post(server.graphql_url, json={"query": "{ __typename }"})
            assert cheap.json() == {"data": {"__typename": "Query"}}
            slowest = max(slowest, time.monotonic() - started)
    return reserved, refusals, slowest


def check_refusals(reserved: list[str], refusals: list[str]) -> None:
    assert len(reserved) == 10
    assert refusals.count("TOO_MANY_STREAMS") == RESERVATIONS - 10
    # 256 KiB holds four such commands per inbox; the rest wait for no one and are refused.
    assert refusals.count("TOO_MANY_REQUESTS") == 10 * (OPERATIONS - 4)


async def test_unopened_reservations_are_bounded_in_memory(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory()
    assert server.process is not None
    token, _ = await signup(server)
    before = rss(server.process.pid)
    reserved, refusals, slowest = await flood(server, token)
    grown = rss(server.process.pid) - before
    check_refusals(reserved, refusals)
    assert grown < MAX_RSS_GROWTH, f"the server grew by {grown / 1e6:.1f} MB"
    assert slowest < CHEAP_QUERY_SECONDS


@pytest.mark.redis
async def test_unopened_reservations_are_bounded_in_redis(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    channel = unique_channel()
    server = live_server_factory(
        GQL_FEED_BROADCAST_URL=redis_url(), GQL_FEED_BROADCAST_CHANNEL=channel
    )
    token, _ = await signup(server)
    reserved, refusals, slowest = await flood(server, token)
    check_refusals(reserved, refusals)
    client = redis.Redis.from_url(redis_url())
    try:
        held = 0
        async for key in client.scan_iter(match=f"{channel}:sse:*", count=1000):
            held += await client.memory_usage(key) or 0
            assert await client.pttl(key) > 0, key  # nothing is kept forever
    finally:
        await client.aclose()
    assert held < MAX_REDIS_BYTES, f"Redis holds {held / 1e6:.1f} MB for the reservations"
    assert slowest < CHEAP_QUERY_SECONDS
