"""Pings are answered at once, whatever a subscribe on the same socket is waiting for."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.helpers.live import IDS_ONLY, LEGACY_WS, SUBPROTOCOLS, raw_client, signup
from tests.helpers.redis_server import OwnRedis
from tests.helpers.server import LiveServer
from tests.helpers.services import unique_channel

PAUSE_MS = 1500


@pytest.fixture(scope="module")
def redis() -> Iterator[OwnRedis]:
    """A Redis of this module's own: its tests pause it (CLIENT PAUSE), one at a time."""
    server = OwnRedis()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def apq_server(redis: OwnRedis, shared_server_factory: Callable[..., LiveServer]) -> LiveServer:
    """A server whose APQ store is that Redis (the bus's), for every test of the module:
    each registers queries of its own (named by the time) and waits out its pause."""
    return shared_server_factory(
        GQL_FEED_BROADCAST_URL=redis.url, GQL_FEED_BROADCAST_CHANNEL=unique_channel()
    )


def persisted_payload(query: str) -> dict[str, Any]:
    return {"extensions": persisted(query)}


def persisted(query: str) -> dict[str, Any]:
    digest = hashlib.sha256(query.encode()).hexdigest()
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


@pytest.mark.redis
async def test_a_ping_overtakes_a_subscribe_waiting_on_its_apq_lookup(
    apq_server: LiveServer, redis: OwnRedis
) -> None:
    """The APQ store is Redis (the bus's); Redis stops answering for 1.5 s (CLIENT PAUSE)
    while a subscribe by hash waits for its lookup, and a ping sent after it is answered
    first."""
    server = apq_server
    token, _ = await signup(server)
    unknown = f"subscription Unknown{time.time_ns()} {{ postEvents {{ id }} }}"
    control = Redis.from_url(redis.url)
    try:
        async with raw_client(server) as client:
            assert (await client.init(token))["type"] == "connection_ack"
            await control.execute_command("CLIENT", "PAUSE", PAUSE_MS, "ALL")
            paused_at = time.monotonic()
            await client.send(
                {"id": "slow", "type": "subscribe", "payload": {"extensions": persisted(unknown)}}
            )
            await client.send({"type": "ping", "payload": {"n": 1}})
            first = client.decode(await asyncio.wait_for(client.socket.recv(), 10))
            answered_after = time.monotonic() - paused_at
            second = client.decode(await asyncio.wait_for(client.socket.recv(), 10))
    finally:
        await control.aclose()
    assert first == {"type": "pong", "payload": {"n": 1}}
    assert answered_after < PAUSE_MS / 1000  # not held behind the paused lookup
    assert second["id"] == "slow"
    assert second["type"] == "error"
    assert [e["extensions"]["code"] for e in second["payload"]] == ["PERSISTED_QUERY_NOT_FOUND"]


@pytest.mark.redis
async def test_complete_cancels_a_subscribe_still_waiting(
    apq_server: LiveServer, redis: OwnRedis
) -> None:
    """A subscribe still being prepared is an active operation: `complete` ends it before
    it ever answers."""
    server = apq_server
    token, _ = await signup(server)
    query = f"subscription Later{time.time_ns()} {{ postEvents {{ id }} }}"
    control = Redis.from_url(redis.url)
    try:
        async with raw_client(server) as client:
            await client.init(token)
            await control.execute_command("CLIENT", "PAUSE", PAUSE_MS, "ALL")
            payload = {"extensions": persisted(query)}
            await client.send({"id": "x", "type": "subscribe", "payload": payload})
            await client.complete("x")
            await client.send({"type": "ping"})
            assert json.loads(await client.socket.recv()) == {"type": "pong"}
            # Redis answers the paused clients in order: once it answers this one, it has
            # answered the lookup for "x" too. A marker subscribe by an unknown hash, sent
            # now, answers after whatever "x" would have: nothing for "x" comes before it.
            await control.ping()
            other = f"subscription Marker{time.time_ns()} {{ postEvents {{ id }} }}"
            await client.send({"id": "y", "type": "subscribe", "payload": persisted_payload(other)})
            message = json.loads(await asyncio.wait_for(client.socket.recv(), 10))
            assert message["id"] == "y", message
            assert message["type"] == "error", message
            assert [e["extensions"]["code"] for e in message["payload"]] == [
                "PERSISTED_QUERY_NOT_FOUND"
            ]
    finally:
        await control.aclose()


async def test_an_unsolicited_pong_is_accepted(live_server: LiveServer) -> None:
    """PROTOCOL.md allows a pong without a ping, as a one-way heartbeat."""
    token, _ = await signup(live_server)
    async with raw_client(live_server) as client:
        await client.init(token)
        await client.send({"type": "pong"})
        await client.send({"type": "pong", "payload": {"beat": 1}})
        await client.send({"type": "ping"})
        assert json.loads(await client.socket.recv()) == {"type": "pong"}


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
async def test_subscribe_right_behind_connection_init_is_served(
    live_server: LiveServer, subprotocol: str
) -> None:
    """The init is handled before the next message is read, so a client that does not wait
    for the ack is authenticated by then; 4401 is only for a subscribe with no init."""
    token, _ = await signup(live_server)
    async with raw_client(live_server, subprotocol) as client:
        start = "start" if subprotocol == LEGACY_WS else "subscribe"
        await client.send(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        )
        await client.send({"id": "1", "type": start, "payload": {"query": IDS_ONLY}})
        assert (await client.receive())["type"] == "connection_ack"
        created = await asyncio.to_thread(live_server.create_post, token, "Pipelined")
        [message] = await client.events(1)
        assert message["id"] == "1"
        assert message["payload"]["data"]["postEvents"]["post"]["id"] == created["id"]


@pytest.mark.redis
async def test_completing_an_operation_queued_behind_another_leaves_that_one_alone(
    apq_server: LiveServer, redis: OwnRedis
) -> None:
    """Documents are looked up in the order their messages came: `b` waits for `a`'s
    lookup. `complete b` ends `b` alone; `a` still answers and the socket stays open
    (cancelling `b` once cancelled what it waited on, and the server closed with 4500)."""
    server = apq_server
    token, _ = await signup(server)
    first = f"subscription First{time.time_ns()} {{ postEvents {{ id }} }}"
    second = f"subscription Second{time.time_ns()} {{ postEvents {{ id }} }}"
    control = Redis.from_url(redis.url)
    try:
        async with raw_client(server) as client:
            await client.init(token)
            await control.execute_command("CLIENT", "PAUSE", PAUSE_MS, "ALL")
            await client.send({"id": "a", "type": "subscribe", "payload": persisted_payload(first)})
            await client.send(
                {"id": "b", "type": "subscribe", "payload": persisted_payload(second)}
            )
            await client.complete("b")
            message = json.loads(await asyncio.wait_for(client.socket.recv(), 10))
            assert (message["id"], message["type"]) == ("a", "error"), message
            assert [e["extensions"]["code"] for e in message["payload"]] == [
                "PERSISTED_QUERY_NOT_FOUND"
            ]
            await client.send({"type": "ping"})
            assert json.loads(await asyncio.wait_for(client.socket.recv(), 10)) == {"type": "pong"}
    finally:
        await control.aclose()
