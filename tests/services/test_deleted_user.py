"""A token whose user no longer exists (its row removed by an administrator) or never
existed (signed for an id never given out) is no login: UNAUTHENTICATED over HTTP,
4403 at a WebSocket's connection_init. Whether a user exists comes from each process's
memory of known users, kept `GQL_FEED_KNOWN_USER_TTL_SECONDS`: no query per request."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from gql_feed.config import Settings
from gql_feed.schema.ids import number_of
from gql_feed.services import known_users as known_users_module
from gql_feed.services.tokens import TokenService
from gql_feed.storage.models import User
from tests.helpers.asgi import PASSWORD, app_client, codes, gql, login, signup, user_with_token
from tests.helpers.clock import SkippingClock
from tests.helpers.live import LEGACY_WS, SUBPROTOCOLS, raw_client
from tests.helpers.server import TEST_SECRET, LiveServer

TTL = 0.5
NEVER_GIVEN_OUT = 999_999
READ_POSTS = "{ posts { totalPosts } }"

both = pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)


def token_for(user_id: int) -> str:
    """A token signed with the servers' key (tests' settings) for any id at all."""
    tokens = TokenService(TEST_SECRET, "gql_feed", "gql_feed", 3600)
    return tokens.issue(user_id)[0]


def known_users(http: httpx.AsyncClient) -> Any:
    return http.app.state.services.accounts.known_users  # type: ignore[attr-defined]


async def remove_user(http: httpx.AsyncClient, user_id: str) -> None:
    """What an administrator does: no mutation deletes a user."""
    db = http.app.state.services.accounts.db  # type: ignore[attr-defined]
    async with db.write() as session, session.begin():
        await session.execute(delete(User).where(User.id == number_of(user_id)))


def gone(body: dict[str, Any]) -> None:
    assert codes(body) == ["UNAUTHENTICATED"], body
    assert body["errors"][0]["message"] == "Your account no longer exists.", body


async def test_a_removed_users_token_stops_working(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = SkippingClock()
    monkeypatch.setattr(known_users_module, "time", clock)
    async with app_client(settings, known_user_ttl_seconds=TTL) as http:
        token, user_id = await user_with_token(http)
        assert "errors" not in await gql(http, READ_POSTS, token=token)
        await remove_user(http, user_id)
        clock.advance(TTL + 0.1)  # this process's memory of the user runs out
        gone(await gql(http, READ_POSTS, token=token))
        gone(await gql(http, "{ me { id } }", token=token))
        gone(
            await gql(http, 'mutation { updateStatus(status: "still here?") { id } }', None, token)
        )


async def test_a_token_for_an_id_never_given_out(client: httpx.AsyncClient) -> None:
    token = token_for(NEVER_GIVEN_OUT)
    gone(await gql(client, READ_POSTS, token=token))
    gone(await gql(client, "{ feed { edges { cursor } } }", token=token))


async def test_login_and_signup_work_beside_a_dead_token(client: httpx.AsyncClient) -> None:
    """The check is lazy like every token check: only fields that need a login fail."""
    dead = token_for(NEVER_GIVEN_OUT)
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    body = await gql(
        client,
        "mutation($i: SignupInput!) { signup(input: $i) { id } }",
        {"i": {"email": email, "name": "Fresh", "password": PASSWORD}},
        token=dead,
    )
    assert "errors" not in body, body
    body = await gql(
        client,
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        {"e": email, "p": PASSWORD},
        token=dead,
    )
    fresh = body["data"]["login"]["token"]
    assert "errors" not in await gql(client, READ_POSTS, token=fresh)


async def test_no_query_per_request(client: httpx.AsyncClient) -> None:
    """Known users are remembered; unknown ids asked for together share one query."""
    known = known_users(client)
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    await signup(client, email)
    token = (await login(client, email))["data"]["login"]["token"]
    before = known.lookups
    for _ in range(20):
        assert "errors" not in await gql(client, READ_POSTS, token=token)
    assert known.lookups == before  # login told it the user exists
    dead = [token_for(NEVER_GIVEN_OUT + index) for index in range(50)]
    bodies = await asyncio.gather(*(gql(client, READ_POSTS, token=t) for t in dead))
    for body in bodies:
        gone(body)
    batched = known.lookups - before
    assert 1 <= batched <= 5, batched
    for body in await asyncio.gather(*(gql(client, READ_POSTS, token=t) for t in dead)):
        gone(body)
    assert known.lookups - before == batched  # the refusals are remembered too


# WebSocket: a real server, the row removed with SQL from outside.


@pytest.fixture
def server(shared_server_factory: Any) -> LiveServer:
    started: LiveServer = shared_server_factory(GQL_FEED_KNOWN_USER_TTL_SECONDS=str(TTL))
    return started


async def init_is_refused(server: LiveServer, subprotocol: str, token: str) -> None:
    async with raw_client(server, subprotocol) as client:
        await client.send({"type": "connection_init", "payload": {"authToken": token}})
        if subprotocol == LEGACY_WS:
            refusal = await client.receive()
            assert refusal["type"] == "connection_error", refusal
        code, reason = await client.closed()
    assert (code, reason) == (4403, "Forbidden: Your account no longer exists.")


@both
async def test_websocket_refuses_a_removed_user(server: LiveServer, subprotocol: str) -> None:
    token, user_id = await asyncio.to_thread(server.signup_and_login)
    async with raw_client(server, subprotocol) as client:
        ack = await client.init(token)
        assert ack["type"] == "connection_ack", ack
    with sqlite3.connect(server.workdir / "feed.db") as db:
        db.execute("DELETE FROM users WHERE id = ?", (number_of(user_id),))
    # The server's memory of the user runs out on its own clock: the first refusal of an
    # HTTP request shows it has (a generous bound of 30 s), then the WebSocket is refused.
    async with asyncio.timeout(30):
        while not codes(await asyncio.to_thread(server.graphql, READ_POSTS, None, token)):
            await asyncio.sleep(0.05)
    await init_is_refused(server, subprotocol, token)
    body = await asyncio.to_thread(server.graphql, READ_POSTS, None, token)
    gone(body)


@both
async def test_websocket_refuses_an_id_never_given_out(
    server: LiveServer, subprotocol: str
) -> None:
    # An id of its own for each subprotocol: the shared server has not met it yet either.
    never_given_out = NEVER_GIVEN_OUT + SUBPROTOCOLS.index(subprotocol)
    await init_is_refused(server, subprotocol, token_for(never_given_out))
