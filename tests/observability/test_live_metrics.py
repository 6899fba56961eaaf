"""Each metric beside the live ones moves when its cause happens, as a real server's
/metrics shows it: operations by type and outcome and their durations, subscriptions and
groups by transport, events delivered, and subscriptions ended by reason."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gql_feed.config import Settings
from gql_feed.live.close_codes import CloseCode
from gql_feed.live.connection import SLOW_CONSUMER_REASON
from gql_feed.live.groups import Subscriber
from tests.helpers.asgi import Upload
from tests.helpers.inprocess import InProcessServer, in_process_server
from tests.helpers.live import IDS_ONLY, LEGACY_WS, TRANSPORT_WS, RawClient, raw_client
from tests.helpers.metrics import Samples, scrape
from tests.helpers.server import TEST_SECRET, png_bytes
from tests.helpers.streams import EVENTS, SSE

OPERATIONS = "gql_feed_operations_total"
DURATIONS = "gql_feed_operation_duration_seconds_count"
ENDED = "gql_feed_live_subscriptions_ended_total"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[InProcessServer]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'feed.db'}",
        upload_dir=tmp_path / "uploads",
        jwt_secret=TEST_SECRET,  # type: ignore[arg-type]
        gc_freeze=False,
        _env_file=None,  # type: ignore[call-arg]
    )
    async with in_process_server(settings) as running:
        yield running


async def post_graphql(server: InProcessServer, query: str, token: str | None = None) -> None:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(server.graphql_url, json={"query": query}, headers=headers)
    assert response.status_code == 200, response.text


async def subscribed(socket: RawClient, op_id: str) -> None:
    """Subscribe, and know it is in its group: a query sent behind it is answered only
    once the subscription before it was prepared, and joining follows at once."""
    await socket.subscribe(op_id, IDS_ONLY)
    await socket.subscribe(f"{op_id}-behind", "{ __typename }")
    assert (await socket.receive())["type"] in ("next", "data")
    assert (await socket.receive())["type"] == "complete"


def server_side(server: InProcessServer) -> list[Subscriber]:
    """The server's subscribers, as its groups hold them."""
    return [member for group in server.app.state.live.operations.groups for member in group.members]


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return after(name, **labels) - before(name, **labels)


async def test_operations_are_counted_by_type_and_outcome(server: InProcessServer) -> None:
    token, _ = await server.user()  # signup and login: two mutations
    before = await scrape(server.url)
    await post_graphql(server, "{ posts { totalPosts } }", token)
    await post_graphql(server, "{ posts(page: -1) { totalPosts } }", token)  # BAD_USER_INPUT
    async with raw_client(server, TRANSPORT_WS) as socket:
        assert (await socket.init(token))["type"] == "connection_ack"
        await subscribed(socket, "1")  # a subscription, and a query over the WebSocket
    after = await scrape(server.url)

    assert moved(before, after, OPERATIONS, type="query", outcome="ok") == 2
    assert moved(before, after, OPERATIONS, type="query", outcome="error") == 1
    assert moved(before, after, OPERATIONS, type="subscription", outcome="ok") == 1
    assert moved(before, after, OPERATIONS, type="mutation", outcome="ok") == 0
    assert moved(before, after, DURATIONS, type="query") == 3
    assert moved(before, after, DURATIONS, type="subscription") == 1


async def test_a_mutation_is_counted_with_its_duration(server: InProcessServer) -> None:
    before = await scrape(server.url)
    await server.user()  # signup and login
    after = await scrape(server.url)
    assert moved(before, after, OPERATIONS, type="mutation", outcome="ok") == 2
    assert moved(before, after, DURATIONS, type="mutation") == 2
    assert moved(before, after, "gql_feed_operation_duration_seconds_sum", type="mutation") > 0


async def test_subscriptions_and_groups_by_transport(server: InProcessServer) -> None:
    token, _ = await server.user()
    headers = {"accept": SSE, "authorization": f"Bearer {token}"}
    async with (
        raw_client(server, TRANSPORT_WS) as first,
        raw_client(server, LEGACY_WS) as second,
        httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as http,
        http.stream("GET", server.graphql_url, params={"query": EVENTS}, headers=headers) as sse,
    ):
        assert (await first.init(token))["type"] == "connection_ack"
        assert (await second.init(token))["type"] == "connection_ack"
        await subscribed(first, "1")
        await subscribed(second, "1")  # the same operation: the same group
        await anext(sse.aiter_bytes())  # the stream's opening: it subscribed before that
        during = await scrape(server.url)
    subscriptions = "gql_feed_live_transport_subscriptions"
    groups = "gql_feed_live_transport_groups"
    assert during(subscriptions, transport="websocket") == 2
    assert during(subscriptions, transport="sse") == 1
    assert during(subscriptions, transport="multipart") == 0
    assert during(groups, transport="websocket") == 1
    assert during(groups, transport="sse") == 1
    assert during("gql_feed_live_groups") == 2


async def test_events_delivered_are_counted(server: InProcessServer) -> None:
    token, user_id = await server.user()
    async with raw_client(server, TRANSPORT_WS) as socket:
        assert (await socket.init(token))["type"] == "connection_ack"
        await subscribed(socket, "1")
        before = await scrape(server.url)
        await server.services.posts.create(user_id, "Counted", "Delivered", Upload(png_bytes()))
        await socket.events(1)
        after = await scrape(server.url)
    assert moved(before, after, "gql_feed_live_events_total") == 1
    assert moved(before, after, "gql_feed_live_frames_total") == 1
    assert moved(before, after, "gql_feed_events_received_total") == 1


async def test_subscriptions_ended_by_the_client(server: InProcessServer) -> None:
    token, _ = await server.user()
    before = await scrape(server.url)
    async with raw_client(server, TRANSPORT_WS) as socket:
        assert (await socket.init(token))["type"] == "connection_ack"
        await subscribed(socket, "1")
        await subscribed(socket, "2")
        await socket.complete("1")
        await socket.subscribe("after-complete", "{ __typename }")  # answered after it
        assert (await socket.receive())["type"] == "next"
        completed = await scrape(server.url)
    assert moved(before, completed, ENDED, reason="client") == 1


@pytest.mark.parametrize(
    ("code", "reason", "counted"),
    [
        # What the ticker does when a connection's token expires…
        (CloseCode.TOKEN_EXPIRED, "Token expired", "auth_expiry"),
        # …and what a connection does when its backlog outgrows its bounds.
        (CloseCode.TRY_AGAIN_LATER, SLOW_CONSUMER_REASON, "slow_consumer"),
        (CloseCode.INTERNAL_SERVER_ERROR, "Internal server error", "error"),
    ],
)
async def test_subscriptions_ended_by_the_server(
    server: InProcessServer, code: CloseCode, reason: str, counted: str
) -> None:
    token, _ = await server.user()
    before = await scrape(server.url)
    async with raw_client(server, TRANSPORT_WS) as socket:
        assert (await socket.init(token))["type"] == "connection_ack"
        await subscribed(socket, "1")
        (subscriber,) = server_side(server)
        subscriber.connection.close(code, reason)
        assert (await socket.closed())[0] == code
    after = await scrape(server.url)
    assert moved(before, after, ENDED, reason=counted) == 1
    assert sum(moved(before, after, ENDED, reason=other) for other in ("client", "shutdown")) == 0


async def test_subscriptions_ended_by_shutdown(server: InProcessServer) -> None:
    token, _ = await server.user()
    before = await scrape(server.url)
    async with raw_client(server, TRANSPORT_WS) as socket:
        assert (await socket.init(token))["type"] == "connection_ack"
        await subscribed(socket, "1")
        # What a SIGTERM starts (runtime.shutdown): every live socket closed with 1001.
        await server.app.state.live.close_all(CloseCode.GOING_AWAY, "Server shutting down")
        assert (await socket.closed())[0] == CloseCode.GOING_AWAY
    after = await scrape(server.url)
    assert moved(before, after, ENDED, reason="shutdown") == 1
