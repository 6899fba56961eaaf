"""Every transport refuses a removed user: one admission stage, whatever carried the token.

The user signs up, logs in, and gathers every credential a client can hold: the token, a
stream ticket, a browser's resume cookie (set when a ticket opens a stream) and a
single-connection reservation. Then an administrator removes the row. Once the server's
memory of known users has run out, each credential, on each transport, is refused with
UNAUTHENTICATED: no stream opens, no operation runs."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gql_feed.schema.ids import number_of
from tests.helpers.live import LEGACY_WS, SUBPROTOCOLS, raw_client
from tests.helpers.server import LiveServer
from tests.helpers.streams import EVENTS, MULTIPART, SSE, TOKEN_HEADER, sse, stream_ticket

GONE = "Your account no longer exists."
READ_POSTS = "{ posts { totalPosts } }"


@pytest.fixture
def server(shared_server_factory: Any) -> LiveServer:
    started: LiveServer = shared_server_factory(GQL_FEED_KNOWN_USER_TTL_SECONDS="0.2")
    return started


@dataclass
class Credentials:
    token: str
    ticket: str  # minted before the removal, never used
    browser: httpx.AsyncClient  # holds the resume cookie of a ticket used before the removal
    spent_ticket: str
    reservation: str  # a single-connection stream reserved before the removal


@asynccontextmanager
async def removed_user(server: LiveServer) -> AsyncIterator[Credentials]:
    token, user_id = await asyncio.to_thread(server.signup_and_login)
    ticket = await stream_ticket(server, token)
    spent = await stream_ticket(server, token)
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as browser:
        async with sse(server, ticket=spent, client=browser) as stream:
            assert stream.response.status_code == 200
            assert "gql_feed_stream_" in stream.response.headers["set-cookie"]
        reserved = await browser.put(server.graphql_url, headers=bearer(token))
        assert reserved.status_code == 201, reserved.text
        with sqlite3.connect(server.workdir / "feed.db") as db:
            db.execute("DELETE FROM users WHERE id = ?", (number_of(user_id),))
        await forgotten(server, token)
        yield Credentials(token, ticket, browser, spent, reserved.text)


async def forgotten(server: LiveServer, token: str) -> None:
    """Until the server's memory of the user runs out, its token still reads (by design):
    wait for that moment by asking, not by sleeping a fixed time."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        body = await asyncio.to_thread(server.graphql, READ_POSTS, None, token)
        if "errors" in body:
            assert body["errors"][0]["message"] == GONE, body
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the server still knows the removed user")


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.status_code  # before reading: a stream never ends
    error = httpx.Response(200, content=await response.aread()).json()["errors"][0]
    assert error["extensions"]["code"] == "UNAUTHENTICATED", error
    assert error["message"] == GONE, error


async def open_stream(
    client: httpx.AsyncClient, server: LiveServer, method: str, **kwargs: Any
) -> None:
    async with client.stream(method, server.graphql_url, **kwargs) as response:
        await refused(response)


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_sse_refuses_a_removed_users_token(server: LiveServer, method: str) -> None:
    async with removed_user(server) as user, sse(server, token=user.token, method=method) as stream:
        await refused(stream.response)


async def test_sse_refuses_a_ticket_minted_before_the_removal(server: LiveServer) -> None:
    async with removed_user(server) as user, sse(server, ticket=user.ticket) as stream:
        await refused(stream.response)


async def test_sse_refuses_a_resume_cookie_set_before_the_removal(server: LiveServer) -> None:
    """What a browser's EventSource does on reconnect: the same URL, with its cookie."""
    async with removed_user(server) as user:
        assert user.browser.cookies, "the stream set its resume cookie"
        async with sse(server, ticket=user.spent_ticket, client=user.browser) as stream:
            await refused(stream.response)


async def test_multipart_refuses_a_removed_users_token(server: LiveServer) -> None:
    async with removed_user(server) as user:
        headers = {"accept": MULTIPART, **bearer(user.token)}
        await open_stream(user.browser, server, "POST", json={"query": EVENTS}, headers=headers)


async def test_single_connection_refuses_a_removed_user_at_every_step(
    server: LiveServer,
) -> None:
    async with removed_user(server) as user:
        auth = bearer(user.token)
        http = user.browser
        await refused(await http.put(server.graphql_url, headers=auth))
        on_stream = {**auth, TOKEN_HEADER: user.reservation}
        await open_stream(http, server, "GET", headers={**on_stream, "accept": SSE})
        body = {"query": EVENTS, "extensions": {"operationId": "feed"}}
        await refused(await http.post(server.graphql_url, json=body, headers=on_stream))
        params = {"operationId": "feed"}
        await refused(await http.delete(server.graphql_url, params=params, headers=on_stream))


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
async def test_websocket_refuses_a_removed_user(server: LiveServer, subprotocol: str) -> None:
    async with removed_user(server) as user, raw_client(server, subprotocol) as client:
        await client.send({"type": "connection_init", "payload": {"authToken": user.token}})
        if subprotocol == LEGACY_WS:
            assert (await client.receive())["type"] == "connection_error"
        assert await client.closed() == (4403, f"Forbidden: {GONE}")
