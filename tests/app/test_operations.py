"""Running it: /health, /ready, /metrics, and a graceful shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.helpers.live import IDS_ONLY, SUBPROTOCOLS, TRANSPORT_WS, raw_client, signup
from tests.helpers.live import wait_for_subscriptions as wait_for_subscribers
from tests.helpers.metrics import metric_samples
from tests.helpers.redis_server import OwnRedis
from tests.helpers.server import LiveServer, png_bytes
from tests.helpers.services import unique_channel
from tests.helpers.watchers import (
    ready,
    wait_until_all_have,
    wait_until_ready_is,
    watching,
)

Factory = Callable[..., LiveServer]

CREATE_POST = "mutation($i: CreatePostInput!) { createPost(input: $i) { id title } }"


@pytest.fixture
def redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    yield server
    server.stop()


@pytest.mark.redis
async def test_health_ready_and_metrics_follow_the_broker(
    live_server_factory: Factory, redis: OwnRedis
) -> None:
    server = live_server_factory(
        GQL_FEED_BROADCAST_URL=redis.url, GQL_FEED_BROADCAST_CHANNEL=unique_channel()
    )
    health = httpx.get(f"{server.url}/health", timeout=10)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    await wait_until_ready_is(server, 200)
    assert ready(server) == (200, {"status": "ready", "down": []})

    token, _ = await signup(server)
    async with watching(server, token, TRANSPORT_WS) as watcher:
        await wait_for_subscribers(server, 1)
        await asyncio.to_thread(server.create_post, token, "Counted once")
        await wait_until_all_have([watcher], 1)
        before = await asyncio.to_thread(metric_samples, server)
        assert before["gql_feed_live_connections"] == 1
        assert before["gql_feed_live_subscriptions"] == 1
        assert before["gql_feed_events_published_total"] >= 1
        assert before["gql_feed_events_received_total"] >= 1
        assert before["gql_feed_event_delivery_lag_seconds_count"] >= 1
        assert before["gql_feed_live_delivery_lag_seconds_count"] >= 1
        assert before["gql_feed_live_slow_consumers_total"] == 0
        assert "gql_feed_bus_publish_failures_total" in before
        assert "gql_feed_events_caught_up_total" in before

        # The broker goes away: not ready, but alive, and still taking posts.
        await asyncio.to_thread(redis.stop)
        await wait_until_ready_is(server, 503)
        assert ready(server) == (503, {"status": "unavailable", "down": ["bus"]})
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
        await asyncio.to_thread(server.create_post, token, "Made while the bus is down")
        await wait_until_all_have([watcher], 2)  # this process's subscribers still get it

        await asyncio.to_thread(redis.start)
        await wait_until_ready_is(server, 200)
        after = await asyncio.to_thread(metric_samples, server)
    assert after["gql_feed_bus_reconnects_total"] > before["gql_feed_bus_reconnects_total"]
    assert after["gql_feed_events_published_total"] == before["gql_feed_events_published_total"] + 1
    assert watcher.ids == [1, 2]


class PausedUpload:
    """A createPost whose body stops halfway until `finish()`: a mutation in flight."""

    def __init__(self, server: LiveServer, token: str, title: str) -> None:
        import json

        request = httpx.Request(
            "POST",
            server.graphql_url,
            data={
                "operations": json.dumps(
                    {"query": CREATE_POST, "variables": {"i": {"title": title, "content": title}}}
                ),
                "map": json.dumps({"0": ["variables.i.image"]}),
            },
            files={"0": ("slow.png", png_bytes((64, 64), "blue"), "image/png")},
        )
        body = request.read()
        self.headers = {
            "content-type": request.headers["content-type"],
            "content-length": str(len(body)),
            "authorization": f"Bearer {token}",
            "apollo-require-preflight": "true",
        }
        self.url = server.graphql_url
        self.parts = body[: len(body) // 2], body[len(body) // 2 :]
        self.half_sent = threading.Event()
        self.go_on = threading.Event()

    def _body(self) -> Iterator[bytes]:
        yield self.parts[0]
        self.half_sent.set()
        self.go_on.wait(30)
        yield self.parts[1]

    def send(self) -> httpx.Response:
        return httpx.post(self.url, content=self._body(), headers=self.headers, timeout=60)


def refuses_connections(server: LiveServer) -> bool:
    """True once the server takes no new request: refused, or dropped unanswered (a
    connection that reached the listening socket's backlog just as it closed: closed
    without a word, or reset)."""
    try:
        httpx.get(f"{server.url}/health", timeout=2)
    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError):
        return True
    return False


async def test_sigterm_closes_sockets_with_1001_and_finishes_the_mutation(
    live_server_factory: Factory,
) -> None:
    server = live_server_factory()
    token, _ = await signup(server)
    async with (
        watching(server, token, SUBPROTOCOLS[0]) as first,
        watching(server, token, SUBPROTOCOLS[1]) as second,
    ):
        await wait_for_subscribers(server, 2)
        await asyncio.to_thread(server.create_post, token, "Before the shutdown")
        await wait_until_all_have([first, second], 1)
        last_seen = first.last_id

        upload = PausedUpload(server, token, "Sent just before SIGTERM")
        sending = asyncio.create_task(asyncio.to_thread(upload.send))
        assert await asyncio.to_thread(upload.half_sent.wait, 10)
        await asyncio.sleep(0.2)  # let the server read the request's head
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)

        # Live sockets are told "going away" at once, so clients reconnect elsewhere …
        deadline = time.monotonic() + 10
        while first.close_code is None or second.close_code is None:
            assert time.monotonic() < deadline, (first, second)
            await asyncio.sleep(0.02)
        assert (first.close_code, second.close_code) == (1001, 1001)
        # … the server takes no new connection …
        deadline = time.monotonic() + 10
        while not await asyncio.to_thread(refuses_connections, server):
            assert time.monotonic() < deadline, "still accepting connections"
            await asyncio.sleep(0.05)
        # … and the mutation in flight finishes.
        upload.go_on.set()
        response = await sending
    assert response.status_code == 200, response.text
    post = response.json()["data"]["createPost"]
    assert post["title"] == "Sent just before SIGTERM"
    # uvicorn finishes its shutdown (lifespan included), then re-raises the signal it
    # caught, so that a supervisor sees "ended by SIGTERM".
    assert await asyncio.to_thread(server.process.wait, 20) in (0, -signal.SIGTERM)

    # Its event is in the log: a client resuming on the restarted server gets it.
    await asyncio.to_thread(server.restart)
    async with raw_client(server, TRANSPORT_WS) as client:
        await client.init(token)
        await client.subscribe("again", IDS_ONLY, {"after": str(last_seen)})
        [message] = await client.events(1)
    event = message["payload"]["data"]["postEvents"]
    assert event == {"id": str(last_seen + 1), "action": "CREATED", "post": {"id": post["id"]}}
