"""Writes-first pacing cannot be used as a weapon, and slow requests are cut off.

Only a mutation whose body is in, whose document parsed and whose sender's login
verified holds the writes-first gate (engine/priority.py); a login or a stream ticket never
does. A body that trickles gets 408 after `GQL_FEED_REQUEST_BODY_TIMEOUT_SECONDS`, and
headers that trickle after `GQL_FEED_REQUEST_HEADER_TIMEOUT_SECONDS` (gql_feed.transport.http.protocol).
"""

from __future__ import annotations

import asyncio
import json
import select
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tests.helpers.asgi import gql, user_with_token
from tests.helpers.server import TLS, LiveServer

CHEAP_QUERY_SECONDS = 5.0  # generous sanity bounds, not measurements
ANSWER_SECONDS = 15.0
PAGE = "query { posts(page: 1, perPage: 2) { totalPosts } }"
BOUNDARY = "gqlfeedboundary"


def multipart_head(length: int) -> bytes:
    return (
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\napollo-require-preflight: true\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def read_response(sock: socket.socket, seconds: float) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of the one response the server sends, then closes."""
    sock.settimeout(seconds)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        raise AssertionError(f"no complete answer within {seconds} s: {data!r}") from None
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    parsed: dict[str, Any] = json.loads(body)
    return status, parsed


# Both deadlines at their least (1 s; 10 s and 60 s by default, which
# tests/app/test_settings_defaults.py holds to the docs), on one server for the module.
DEADLINES = {
    "GQL_FEED_REQUEST_BODY_TIMEOUT_SECONDS": "1",
    "GQL_FEED_REQUEST_HEADER_TIMEOUT_SECONDS": "1",
}
PIECES = 16  # a piece every quarter second: 4 s of trickling at most, four deadlines


async def trickle(sock: socket.socket, piece: bytes) -> bool:
    """A piece every quarter second, each in time, until the server has answered: True
    if it did meanwhile (a deadline counted from the start, not reset by each piece)."""
    for _ in range(PIECES):
        await asyncio.sleep(0.25)
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            return True
        try:
            sock.sendall(piece)
        except OSError:
            return True
    return False


def cheap_query_seconds(server: LiveServer) -> float:
    started = time.monotonic()
    response = httpx.post(server.graphql_url, json={"query": "{ __typename }"}, verify=TLS)
    assert response.json() == {"data": {"__typename": "Query"}}
    return time.monotonic() - started


async def test_a_trickled_body_gets_408(shared_server_factory: Callable[..., LiveServer]) -> None:
    server = shared_server_factory(**DEADLINES)
    sock = socket.create_connection(("127.0.0.1", server.port))
    try:
        sock.sendall(multipart_head(100_000) + f"--{BOUNDARY}\r\n".encode())
        started = time.monotonic()
        # A byte every quarter second meanwhile: each arrives in time, the body never does.
        assert await asyncio.to_thread(cheap_query_seconds, server) < CHEAP_QUERY_SECONDS
        assert await trickle(sock, b"x"), "still reading the body after four deadlines"
        status, body = await asyncio.to_thread(read_response, sock, ANSWER_SECONDS)
        waited = time.monotonic() - started
    finally:
        sock.close()
    assert status == 408
    assert body["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT"
    assert waited < ANSWER_SECONDS


async def test_trickled_headers_get_408(shared_server_factory: Callable[..., LiveServer]) -> None:
    server = shared_server_factory(**DEADLINES)
    sock = socket.create_connection(("127.0.0.1", server.port))
    try:
        sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert await trickle(sock, b"X-Slow: x\r\n"), "still reading after four deadlines"
        assert await asyncio.to_thread(cheap_query_seconds, server) < CHEAP_QUERY_SECONDS
        status, body = await asyncio.to_thread(read_response, sock, ANSWER_SECONDS)
    finally:
        sock.close()
    assert status == 408
    assert body["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT"
    # A request in time on a new connection is served as usual.
    assert await asyncio.to_thread(cheap_query_seconds, server) < CHEAP_QUERY_SECONDS


async def test_an_unread_multipart_body_does_not_hold_the_gate(client: httpx.AsyncClient) -> None:
    app: Any = client.app  # type: ignore[attr-defined]
    gate = app.state.priority
    token, _ = await user_with_token(client)
    let_go = asyncio.Event()

    async def trickle() -> AsyncIterator[bytes]:
        yield f"--{BOUNDARY}\r\n".encode()
        await let_go.wait()
        yield b"--\r\n"

    headers = {
        "apollo-require-preflight": "true",
        "content-type": f"multipart/form-data; boundary={BOUNDARY}",
    }
    sending = asyncio.create_task(client.post("/graphql", content=trickle(), headers=headers))
    await asyncio.sleep(0.2)
    assert not sending.done()
    assert gate.writes == 0
    # Reads are not paced meanwhile.
    page = await gql(client, PAGE, None, token)
    assert page["data"]["posts"]["totalPosts"] == 0
    let_go.set()
    response = await sending
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("query", "paced"),
    [
        ('mutation { login(email: "nobody@example.com", password: "wrong pass") { token } }', 0),
        ("mutation { streamTicket }", 0),
        ('mutation { updateStatus(status: "Writing") { status } }', 1),
    ],
)
async def test_a_login_or_a_ticket_is_not_a_write(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, query: str, paced: int
) -> None:
    app: Any = client.app  # type: ignore[attr-defined]
    gate = app.state.priority
    token, _ = await user_with_token(client)
    entered: list[str] = []
    real_write = gate.write

    def recording_write() -> Any:
        entered.append(query)
        return real_write()

    monkeypatch.setattr(gate, "write", recording_write)
    body = await gql(client, query, None, token)
    assert "data" in body
    assert len(entered) == paced
    # Without a login nothing is paced, whatever the mutation.
    await gql(client, query, None, None)
    assert len(entered) == paced
