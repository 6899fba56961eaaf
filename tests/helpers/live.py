"""Helpers for the live (WebSocket) tests: a raw protocol client, gql clients, gauges."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import websockets
from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.websockets import WebsocketsTransport
from websockets.asyncio.client import ClientConnection

from tests.helpers.metrics import gauges
from tests.helpers.server import LiveServer

TRANSPORT_WS = WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL  # "graphql-transport-ws"
LEGACY_WS = WebsocketsTransport.APOLLO_SUBPROTOCOL  # "graphql-ws"
SUBPROTOCOLS = (TRANSPORT_WS, LEGACY_WS)

POST_EVENTS = """
subscription Feed($actions: [PostAction!], $after: ID) {
  postEvents(actions: $actions, after: $after) {
    id
    action
    occurredAt
    post { id title content imageUrl creator { id name } }
  }
}
"""

IDS_ONLY = """
subscription Ids($actions: [PostAction!], $after: ID) {
  postEvents(actions: $actions, after: $after) { id action post { id } }
}
"""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# The server, from a test's event loop (its helpers are synchronous HTTP calls).


async def create_post(
    server: LiveServer, token: str, title: str, content: str = "Some content"
) -> dict[str, Any]:
    return await asyncio.to_thread(server.create_post, token, title, content)


async def update_post(server: LiveServer, token: str, post_id: str, title: str) -> dict[str, Any]:
    return await asyncio.to_thread(server.update_post, token, post_id, title)


async def delete_post(server: LiveServer, token: str, post_id: str) -> None:
    await asyncio.to_thread(server.delete_post, token, post_id)


async def signup(server: LiveServer) -> tuple[str, str]:
    return await asyncio.to_thread(server.signup_and_login)


async def wait_for_gauges(
    server: LiveServer, check: Callable[[dict[str, float]], bool], timeout: float = 15.0
) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        values = await asyncio.to_thread(gauges, server)
        if check(values):
            return values
        if time.monotonic() > deadline:
            raise AssertionError(f"gauges never settled: {values}")
        await asyncio.sleep(0.05)


async def wait_for_subscriptions(server: LiveServer, count: int) -> dict[str, float]:
    return await wait_for_gauges(
        server, lambda values: values.get("gql_feed_live_subscriptions") == count
    )


async def wait_until_idle(server: LiveServer) -> dict[str, float]:
    """Nothing left behind: no connection, no subscription, no group."""
    return await wait_for_gauges(
        server,
        lambda values: (
            values.get("gql_feed_live_connections") == 0
            and values.get("gql_feed_live_subscriptions") == 0
            and values.get("gql_feed_live_groups") == 0
        ),
    )


# A raw protocol client, for exact messages and close codes.


class RawClient:
    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.socket.send(message if isinstance(message, str) else json.dumps(message))

    async def receive(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next message that is not a keep-alive."""
        while True:
            message = self.decode(await asyncio.wait_for(self.socket.recv(), timeout))
            if message.get("type") not in ("ka", "ping", "pong"):
                return message

    @staticmethod
    def decode(text: str | bytes) -> dict[str, Any]:
        if not isinstance(text, str):
            raise AssertionError(f"expected a text frame, got {text!r}")
        message: dict[str, Any] = json.loads(text)
        return message

    async def init(
        self, token: str | None, payload: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        await self.send(
            {
                "type": "connection_init",
                "payload": payload if payload is not None else bearer(token or ""),
            }
        )
        return await self.receive()

    async def subscribe(
        self, op_id: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        start = "subscribe" if self.socket.subprotocol == TRANSPORT_WS else "start"
        await self.send(
            {"id": op_id, "type": start, "payload": {"query": query, "variables": variables or {}}}
        )

    async def complete(self, op_id: str) -> None:
        stop = "complete" if self.socket.subprotocol == TRANSPORT_WS else "stop"
        await self.send({"id": op_id, "type": stop})

    async def events(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        """The next `count` result messages (next or data), in arrival order."""
        results = []
        while len(results) < count:
            message = await self.receive(timeout)
            if message["type"] not in ("next", "data"):
                raise AssertionError(f"expected a result, got {message}")
            results.append(message)
        return results

    async def closed(self, timeout: float = 10.0) -> tuple[int, str]:
        """Read until the server closes; its close code and reason."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.socket.recv()
        except websockets.ConnectionClosed as closed:
            if closed.rcvd is None:
                raise AssertionError("closed without a close frame") from closed
            return closed.rcvd.code, closed.rcvd.reason
        raise AssertionError("unreachable")


@asynccontextmanager
async def raw_client(
    server: LiveServer, subprotocol: str | None = TRANSPORT_WS, **options: Any
) -> AsyncIterator[RawClient]:
    """A client socket that reads whatever the server sends, however little the test reads.

    websockets stops reading the socket once `max_queue` messages wait unread, and its
    closing handshake then never sees the server's close frame: leaving the block after
    reading a few of many events would wait out `close_timeout` (10 s). A test that
    wants a client that does not read says so (`max_queue=1`, a stalled socket).
    """
    protocols = [subprotocol] if subprotocol else None
    options.setdefault("max_queue", None)
    async with websockets.connect(
        server.ws_url,
        subprotocols=protocols,  # type: ignore[arg-type]
        open_timeout=10,
        **options,
    ) as socket:
        yield RawClient(socket)


# gql, the Python client, with either subprotocol.


@asynccontextmanager
async def gql_session(
    server: LiveServer, token: str, subprotocol: str
) -> AsyncIterator[AsyncClientSession]:
    transport = WebsocketsTransport(
        url=server.ws_url, init_payload=bearer(token), subprotocols=[subprotocol]
    )
    async with Client(transport=transport) as session:
        yield session


def request(query: str, **variables: Any) -> GraphQLRequest:
    return GraphQLRequest(query, variable_values=variables or None)


async def collect(
    session: AsyncClientSession, query: str, count: int, **variables: Any
) -> list[dict[str, Any]]:
    """The first `count` postEvents of a gql subscription."""
    events: list[dict[str, Any]] = []
    async for result in session.subscribe(request(query, **variables)):
        events.append(result["postEvents"])
        if len(events) == count:
            break
    return events


# Scenarios that both subprotocols must pass.


async def two_users_see_every_change(server: LiveServer, subprotocol: str) -> None:
    """Both receive CREATED, UPDATED, DELETED in order, exactly once, with the right data.

    A fourth event (a sentinel post) ends the collection: had anything arrived twice,
    the fourth frame would be the duplicate instead of the sentinel.
    """
    await wait_until_idle(server)
    author_token, author_id = await signup(server)
    reader_token, _ = await signup(server)
    async with (
        gql_session(server, author_token, subprotocol) as author,
        gql_session(server, reader_token, subprotocol) as reader,
    ):
        watching = [asyncio.create_task(collect(s, POST_EVENTS, 4)) for s in (author, reader)]
        await wait_for_subscriptions(server, 2)
        post = await create_post(server, author_token, "A first post", "Hello, everyone")
        await update_post(server, author_token, post["id"], "An edited post")
        await delete_post(server, author_token, post["id"])
        sentinel = await create_post(server, author_token, "The sentinel", "Nothing after it")
        seen = await asyncio.wait_for(asyncio.gather(*watching), 30)
    for events in seen:
        assert [e["action"] for e in events] == ["CREATED", "UPDATED", "DELETED", "CREATED"]
        ids = [int(e["id"]) for e in events]
        assert ids == list(range(ids[0], ids[0] + 4))
        assert [e["post"]["id"] for e in events] == [post["id"]] * 3 + [sentinel["id"]]
        titles = [e["post"]["title"] for e in events]
        assert titles == ["A first post", "An edited post", "An edited post", "The sentinel"]
        assert all(e["post"]["creator"] == {"id": author_id, "name": "Tester"} for e in events)
        assert events[0]["post"]["content"] == "Hello, everyone"
        assert events[0]["post"]["imageUrl"].startswith(f"{server.url}/uploads/")
        assert events[0]["occurredAt"] <= events[1]["occurredAt"] <= events[2]["occurredAt"]
    assert seen[0] == seen[1]
    await wait_until_idle(server)


async def actions_filter_narrows(server: LiveServer, subprotocol: str) -> None:
    await wait_until_idle(server)
    token, _ = await signup(server)
    async with (
        gql_session(server, token, subprotocol) as deletes,
        gql_session(server, token, subprotocol) as changes,
    ):
        only_deletes = asyncio.create_task(collect(deletes, IDS_ONLY, 2, actions=["DELETED"]))
        no_deletes = asyncio.create_task(
            collect(changes, IDS_ONLY, 3, actions=["CREATED", "UPDATED"])
        )
        await wait_for_subscriptions(server, 2)
        first = (await create_post(server, token, "Filtered one"))["id"]
        await update_post(server, token, first, "Filtered one, edited")
        await delete_post(server, token, first)
        second = (await create_post(server, token, "Filtered two"))["id"]
        await delete_post(server, token, second)
        got_deletes, got_changes = await asyncio.wait_for(
            asyncio.gather(only_deletes, no_deletes), 30
        )
    assert [(e["action"], e["post"]["id"]) for e in got_deletes] == [
        ("DELETED", first),
        ("DELETED", second),
    ]
    assert [(e["action"], e["post"]["id"]) for e in got_changes] == [
        ("CREATED", first),
        ("UPDATED", first),
        ("CREATED", second),
    ]
    await wait_until_idle(server)


async def token_expiry_closes(server: LiveServer, subprotocol: str) -> None:
    """A token that expires while connected ends the connection with 4440."""
    token, _ = await signup(server)
    async with raw_client(server, subprotocol) as client:
        assert (await client.init(token))["type"] == "connection_ack"
        await client.subscribe("1", IDS_ONLY)
        code, reason = await client.closed(timeout=10)
    assert code == 4440
    assert reason == "Token expired"


async def wait_for_values(server: LiveServer, **expected: float) -> dict[str, float]:
    """Wait until each named gauge (`subscriptions=0`, `groups=2`…) has its value."""
    return await wait_for_gauges(
        server,
        lambda values: all(
            values.get(f"gql_feed_live_{name}") == value for name, value in expected.items()
        ),
    )


def event_ids(messages: list[dict[str, Any]]) -> list[int]:
    return [int(m["payload"]["data"]["postEvents"]["id"]) for m in messages]


# Slow consumers.

MAX_FLOOD = 60


def stalled_socket(server: LiveServer) -> socket.socket:
    """A connected socket with a small receive buffer, so that not reading shows at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    return sock


@asynccontextmanager
async def stalled_client(server: LiveServer) -> AsyncIterator[RawClient]:
    """A graphql-transport-ws client that reads nothing unless asked (a stalled socket, a
    one-message queue, no pings of its own)."""
    async with websockets.connect(
        server.ws_url,
        sock=stalled_socket(server),
        subprotocols=[TRANSPORT_WS],  # type: ignore[list-item]
        max_queue=1,
        ping_interval=None,
    ) as socket_client:
        yield RawClient(socket_client)


async def flood_until_one_subscription_is_left(server: LiveServer, token: str) -> int:
    """Create posts with big frames (some 5 KB each) until the stalled client's
    subscriptions are gone, one subscriber's being left: how many it took (fails past
    MAX_FLOOD)."""
    events = 0
    while (await asyncio.to_thread(gauges, server))["gql_feed_live_subscriptions"] > 1:
        if events == MAX_FLOOD:
            raise AssertionError("the stalled client was never dropped")
        await create_post(server, token, f"Flood {events}", "x" * 4_900)
        events += 1
    return events


async def read_until_closed(client: RawClient, op_id: str, last_seen: int) -> tuple[int, int, str]:
    """Read what was sent, then the close: (last event id of `op_id`, code, reason)."""
    try:
        while True:
            message = client.decode(await asyncio.wait_for(client.socket.recv(), 20))
            if message.get("id") == op_id:
                last_seen = event_ids([message])[0]
    except websockets.ConnectionClosed as closed:
        if closed.rcvd is None:
            raise AssertionError("closed without a close frame") from closed
        return last_seen, closed.rcvd.code, closed.rcvd.reason
