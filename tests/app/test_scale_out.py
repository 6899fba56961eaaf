"""Several server processes, one PostgreSQL database, one bus: every subscriber, wherever
it is connected, receives every event exactly once, in commit (id) order.

Each test starts real `gql-feed serve` processes on ports of their own, sharing a fresh
PostgreSQL database and a bus channel of their own (Redis, or PostgreSQL LISTEN/NOTIFY).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tests.helpers.live import IDS_ONLY, SUBPROTOCOLS, TRANSPORT_WS, raw_client, signup
from tests.helpers.live import wait_for_subscriptions as wait_for_subscribers
from tests.helpers.live import wait_for_values as wait_for_gauges
from tests.helpers.metrics import metric_samples
from tests.helpers.node_clients import clients, node_client
from tests.helpers.redis_server import OwnRedis
from tests.helpers.server import LiveServer
from tests.helpers.services import (
    fresh_postgres_database,
    postgres_notify_url,
    redis_url,
    unique_channel,
)
from tests.helpers.streams import code_of, result_of, single
from tests.helpers.watchers import (
    Watcher,
    assert_exactly_once_in_order,
    assert_per_post_order,
    children,
    established_sockets,
    open_watchers,
    ready,
    wait_until_all_have,
    wait_until_ready_is,
    watching,
)

pytestmark = pytest.mark.postgres
__all__ = ["clients"]

Factory = Callable[..., LiveServer]


@pytest.fixture
def database_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


def shared(database_url: str, bus_url: str, **more: str) -> dict[str, str]:
    """Settings for processes sharing one database and one bus channel.

    The log poll (the safety net for events the bus lost) is slowed down to a minute,
    so that what these tests see travelled over the bus, or came from a catch-up after
    a reconnect, never from the poll.
    """
    return {
        "GQL_FEED_DATABASE_URL": database_url,
        "GQL_FEED_BROADCAST_URL": bus_url,
        "GQL_FEED_BROADCAST_CHANNEL": unique_channel(),
        "GQL_FEED_EVENT_POLL_SECONDS": "60",
        **more,
    }


def two_servers(factory: Factory, env: dict[str, str]) -> tuple[LiveServer, LiveServer]:
    # One after the other: the first one migrates the fresh database.
    return factory(**env), factory(**env)


async def create(server: LiveServer, token: str, title: str) -> str:
    post = await asyncio.to_thread(server.create_post, token, title)
    post_id: str = post["id"]
    return post_id


async def write_concurrently(
    servers: list[LiveServer], token: str, writers_per_server: int, posts_each: int
) -> int:
    """Writers racing through every server (a create, then an edit of it); events made."""

    async def writer(server: LiveServer, name: str) -> None:
        for n in range(posts_each):
            post_id = await create(server, token, f"{name} {n}")
            await asyncio.to_thread(server.update_post, token, post_id, f"{name} {n} edited")

    await asyncio.gather(
        *(
            writer(server, f"writer {s}.{w}")
            for s, server in enumerate(servers)
            for w in range(writers_per_server)
        )
    )
    return len(servers) * writers_per_server * posts_each * 2


async def every_subscriber_gets_everything(a: LiveServer, b: LiveServer) -> None:
    token, _ = await signup(a)
    places = [(server, protocol) for server in (a, b) for protocol in SUBPROTOCOLS * 2]
    async with AsyncExitStack() as stack:
        watchers = await open_watchers(stack, places, token)
        await wait_for_subscribers(a, 4)
        await wait_for_subscribers(b, 4)

        # One at a time, alternating servers: a post made on one reaches the other's too.
        made = 0
        for n in range(6):
            server = (a, b)[n % 2]
            post_id = await create(server, token, f"Alternating {n}")
            made += 1
            if n % 3 == 2:
                await asyncio.to_thread(server.delete_post, token, post_id)
                made += 1
            await wait_until_all_have(watchers, made)
        # One at a time, each event travelled over the bus: none had to be read from the log.
        for server in (a, b):
            assert metric_samples(server)["gql_feed_events_caught_up_total"] == 0
        # Then all at once: two writers per server, creating and editing.
        made += await write_concurrently([a, b], token, writers_per_server=2, posts_each=5)

        await wait_until_all_have(watchers, made)
        assert_exactly_once_in_order(watchers, 1, made)
        for watcher in watchers:
            assert_per_post_order(watcher)
        assert all(watcher.events == watchers[0].events for watcher in watchers)


@pytest.mark.redis
async def test_two_servers_on_a_redis_bus(database_url: str, live_server_factory: Factory) -> None:
    a, b = two_servers(live_server_factory, shared(database_url, redis_url()))
    await every_subscriber_gets_everything(a, b)


async def test_two_servers_on_postgres_listen_notify(
    database_url: str, live_server_factory: Factory
) -> None:
    a, b = two_servers(live_server_factory, shared(database_url, postgres_notify_url(database_url)))
    await every_subscriber_gets_everything(a, b)


@pytest.mark.redis
async def test_workers_of_one_server_share_events(
    database_url: str, live_server_factory: Factory
) -> None:
    """`gql-feed serve --workers 2`: subscribers on both workers get every event."""
    env = shared(database_url, redis_url(), GQL_FEED_WORKERS="2", GQL_FEED_LOG_LEVEL="info")
    server = live_server_factory(**env)
    assert server.process is not None
    # /health answered as soon as one worker was up: wait for the other one too.
    deadline = time.monotonic() + 30
    while server.log().count("Application startup complete") < 2:
        assert time.monotonic() < deadline, server.log()
        await asyncio.sleep(0.05)
    workers = children(server.process.pid)
    token, _ = await signup(server)
    async with AsyncExitStack() as stack:
        # Open sockets until the kernel has handed some to each worker.
        watchers: list[Watcher] = []
        while True:
            places = [(server, protocol) for protocol in SUBPROTOCOLS * 2]
            watchers += await open_watchers(stack, places, token)
            held = {pid: established_sockets(pid, server.port) for pid in workers}
            if sum(1 for count in held.values() if count) >= 2:
                break
            assert len(watchers) < 80, f"every socket went to one worker: {held}"

        # There is no way to see every worker's gauges through one port, so a marker
        # post is made (again, if need be) until every subscriber has one: from then on,
        # each must get every event.
        marker = 0
        for attempt in range(50):
            await create(server, token, f"Marker {attempt}")
            marker += 1
            try:
                await wait_until_all_have(watchers, 1, timeout=0.5)
                break
            except AssertionError:
                continue
        else:
            raise AssertionError(f"some subscribers never got a marker: {watchers}")
        made = marker + await write_concurrently([server], token, 3, 4)
        await wait_until_all_have(watchers, made)
    for watcher in watchers:
        first = watcher.ids[0]
        assert first <= marker
        assert_exactly_once_in_order([watcher], first, made)


@pytest.mark.redis
async def test_redis_restart_mid_stream_loses_nothing(
    database_url: str, live_server_factory: Factory
) -> None:
    """Redis goes away and comes back while two servers take writes: no event lost or doubled.

    The hubs notice, reconnect with backoff and fill from the log what they missed (here
    with the log poll slowed down, so the reconnect's catch-up alone must do it);
    meanwhile queries and mutations go on.
    """
    redis = OwnRedis()
    try:
        a, b = two_servers(live_server_factory, shared(database_url, redis.url))
        token, _ = await signup(a)
        places = [(server, protocol) for server in (a, b) for protocol in SUBPROTOCOLS]
        async with AsyncExitStack() as stack:
            watchers = await open_watchers(stack, places, token)
            await wait_for_subscribers(a, 2)
            await wait_for_subscribers(b, 2)

            stop_writing = asyncio.Event()
            made = 0

            async def writer(server: LiveServer, name: str) -> None:
                nonlocal made
                n = 0
                while not stop_writing.is_set():
                    await create(server, token, f"Written by {name}, {n}")
                    made += 1
                    n += 1

            writers = [asyncio.create_task(writer(s, f"w{i}")) for i, s in enumerate((a, b))]
            await wait_until_all_have(watchers, 5, alongside=writers)

            await asyncio.to_thread(redis.stop)
            await wait_until_ready_is(a, 503)
            await wait_until_ready_is(b, 503)
            # The broker is down: both servers still answer queries and take mutations.
            for server in (a, b):
                during = await create(server, token, "Made while the broker is down")
                query = await asyncio.to_thread(
                    server.graphql,
                    "query($id: ID!) { post(id: $id) { title } }",
                    {"id": during},
                    token,
                )
                assert query["data"]["post"]["title"] == "Made while the broker is down"
                made += 1
            assert [ready(server)[1]["down"] for server in (a, b)] == [["bus"], ["bus"]]

            await asyncio.to_thread(redis.start)
            await wait_until_ready_is(a, 200)
            await wait_until_ready_is(b, 200)
            stop_writing.set()
            await asyncio.gather(*writers)
            await create(a, token, "After the restart")
            made += 1

            await wait_until_all_have(watchers, made)
        assert_exactly_once_in_order(watchers, 1, made)
    finally:
        redis.stop()


# Resuming on another server than the one that was dropped.


async def test_resume_on_another_server(database_url: str, live_server_factory: Factory) -> None:
    a, b = two_servers(live_server_factory, shared(database_url, postgres_notify_url(database_url)))
    token, _ = await signup(a)
    for subprotocol in SUBPROTOCOLS:
        async with watching(a, token, subprotocol) as before:
            await wait_for_subscribers(a, 1)
            first = await create(a, token, "Seen on A")
            await wait_until_all_have([before], 1)
        last_seen = before.last_id
        # Dropped: events happen through both servers meanwhile.
        for n in range(4):
            post_id = await create((a, b)[n % 2], token, f"While away {n}")
        await asyncio.to_thread(b.update_post, token, first, "Edited while away")
        async with watching(b, token, subprotocol, after=last_seen) as after:
            await wait_until_all_have([after], last_seen + 5)
            await asyncio.to_thread(a.delete_post, token, post_id)
            await wait_until_all_have([after], last_seen + 6)
            await create(b, token, "Sentinel")
            await wait_until_all_have([after], last_seen + 7)
        assert_exactly_once_in_order([after], last_seen + 1, last_seen + 7)
        assert [e.action for e in after.events] == ["CREATED"] * 4 + [
            "UPDATED",
            "DELETED",
            "CREATED",
        ]


@pytest.mark.redis
async def test_resume_on_a_server_that_lags_behind(
    database_url: str, live_server_factory: Factory
) -> None:
    """The subscriber saw event N on A before B did (the broker is down, B polls slowly).

    Resuming on B with `after: N`, it must get what follows N only: B catches up to N
    first, so the events up to N never reach it twice when B's hub gets to them.
    """
    redis = OwnRedis()
    try:
        a, b = two_servers(live_server_factory, shared(database_url, redis.url))
        redis.stop()
        token, _ = await signup(a)
        async with watching(a, token, TRANSPORT_WS) as on_a:
            await wait_for_subscribers(a, 1)
            for n in range(3):
                await create(a, token, f"Only A knows {n}")
            await wait_until_all_have([on_a], 3)
        async with watching(b, token, TRANSPORT_WS, after=on_a.last_id) as on_b:
            await wait_for_subscribers(b, 1)
            # B's hub meets events 1-3 only now, catching up from the log for event 4.
            await create(b, token, "Made on B")
            await wait_until_all_have([on_b], 4)
            await create(b, token, "Sentinel")
            await wait_until_all_have([on_b], 5)
        assert on_b.ids == [4, 5]
    finally:
        redis.stop()


@pytest.mark.redis
@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
async def test_resume_across_servers_races_concurrent_writers(
    database_url: str, live_server_factory: Factory, subprotocol: str
) -> None:
    """A reader keeps dropping and resuming, on A then B then A…, while writers hammer both."""
    a, b = two_servers(live_server_factory, shared(database_url, redis_url()))
    token, _ = await signup(a)
    seed = await create(a, token, "The seed post")
    writes_each = 12

    async def writer(server: LiveServer, name: str) -> None:
        for n in range(writes_each):
            if n % 3 == 0:
                await create(server, token, f"Race {name} {n}")
            else:
                await asyncio.to_thread(server.update_post, token, seed, f"Race {name} {n}")

    end = 1 + 4 * writes_each
    writers = asyncio.gather(*(writer(s, f"{s.port}.{w}") for s in (a, b) for w in range(2)))
    seen: list[int] = []
    rng = random.Random(11)
    resumes = 0
    while not seen or seen[-1] < end:
        server = (a, b)[resumes % 2]
        resumes += 1
        async with raw_client(server, subprotocol) as client:
            await client.init(token)
            await client.subscribe("race", IDS_ONLY, {"after": str(seen[-1] if seen else 0)})
            for _ in range(rng.randint(1, 5)):
                try:
                    message = await client.receive(timeout=20)
                except TimeoutError:
                    break
                assert message["type"] in ("next", "data"), message
                seen.append(int(message["payload"]["data"]["postEvents"]["id"]))
                if seen[-1] >= end:
                    break
    await writers
    assert resumes > 4
    assert seen == list(range(1, end + 1))


@pytest.mark.redis
async def test_sse_single_connection_across_servers(
    database_url: str, live_server_factory: Factory, clients: Path
) -> None:
    """graphql-sse's client in single-connection mode behind a "load balancer" that sends
    the reservation and the stream to server A and the operations (POST, DELETE) to B."""
    a, b = two_servers(live_server_factory, shared(database_url, redis_url()))
    reader, _ = await signup(a)
    writer, _ = await signup(b)
    env = {
        "GQL_FEED_URL": a.graphql_url,
        "GQL_FEED_OPERATIONS_URL": b.graphql_url,
        "FEED_TOKEN": reader,
        "FEED_EXIT_AFTER": "2",
    }
    async with node_client(clients, "sse-single", **env) as client:
        await wait_for_gauges(a, subscriptions=1)
        posts = [await create(server, writer, f"Across {n}") for n, server in enumerate((b, a))]
        events = await client.events(2)
        assert [event["post"]["id"] for event in events] == posts
        assert await client.exit_status() == 0
    assert client.requests() == [
        ("PUT", a.graphql_url, 201),
        ("GET", a.graphql_url, 200),
        ("POST", b.graphql_url, 202),
        ("DELETE", b.graphql_url, 200),
    ]
    assert (await wait_for_gauges(b, subscriptions=0))["gql_feed_live_connections"] == 0


@pytest.mark.redis
async def test_sse_single_connection_delete_on_another_server_stops_one(
    database_url: str, live_server_factory: Factory
) -> None:
    """Raw requests: two operations started through B on A's stream, one stopped through
    B; a token A never issued is refused by both."""
    a, b = two_servers(live_server_factory, shared(database_url, redis_url()))
    reader, _ = await signup(a)
    writer, _ = await signup(b)
    async with single(reader) as client:
        assert (await client.reserve(a)).status_code == 201
        async with client.stream(a) as stream:
            assert stream.response.status_code == 200
            assert (await client.start(b, "one")).status_code == 202
            assert (await client.start(b, "two")).status_code == 202
            await wait_for_gauges(a, subscriptions=2)
            taken = await client.start(a, "two")
            assert (taken.status_code, code_of(taken)) == (409, "BAD_REQUEST")
            first = await create(b, writer, "For both")
            results = dict([result_of(await stream.next()), result_of(await stream.next())])
            assert {key: value["post"]["id"] for key, value in results.items()} == {
                "one": first,
                "two": first,
            }
            assert (await client.stop(b, "one")).status_code == 200
            complete = await stream.next()
            assert (complete.event, complete.json()) == ("complete", {"id": "one"})
            await wait_for_gauges(a, subscriptions=1)
            second = await create(a, writer, "Only two")
            operation_id, event = result_of(await stream.next())
            assert (operation_id, event["post"]["id"]) == ("two", second)
        client.stream_token = "never-issued"
        for server in (a, b):
            refused = await client.start(server, "three")
            assert (refused.status_code, code_of(refused)) == (404, "NOT_FOUND")
