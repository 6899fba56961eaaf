"""Inputs that used to reach the database raw: a NUL byte inside a string literal, and
integers no 64-bit column can hold. Each is BAD_USER_INPUT on SQLite and PostgreSQL, over
HTTP and over the WebSocket, and nothing is stored."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx

from tests.helpers.asgi import codes, create_post, gql, user_with_token
from tests.helpers.live import raw_client
from tests.helpers.server import LiveServer

RAW_NUL_STATUS = 'mutation { updateStatus(status: "busy\x00now") { status } }'
RAW_NUL_BLOCK = 'mutation { updateStatus(status: """busy\x00now""") { status } }'
RAW_NUL_POST = (
    'mutation($id: ID!) { updatePost(id: $id, input: {title: "A title\x00here"}) { title } }'
)
STATUS = "{ me { status } }"


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


# A NUL byte (U+0000) typed into the query text, inside quotes.


async def test_raw_nul_in_a_string_literal_is_refused(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    before = await gql(client, STATUS, token=token)
    for query in (RAW_NUL_STATUS, RAW_NUL_BLOCK):
        body = await gql(client, query, token=token)
        assert body.get("data") is None, body
        assert codes(body) == ["BAD_USER_INPUT"], body
        assert body["errors"][0]["extensions"]["fields"] == {"query": body["errors"][0]["message"]}
    assert await gql(client, STATUS, token=token) == before


async def test_raw_nul_never_reaches_a_post(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    post = (await create_post(client, token, title="Original title"))["data"]["createPost"]
    body = await gql(client, RAW_NUL_POST, {"id": post["id"]}, token=token)
    assert codes(body) == ["BAD_USER_INPUT"], body
    stored = await gql(
        client, "query($id: ID!) { post(id: $id) { title } }", {"id": post["id"]}, token
    )
    assert stored["data"]["post"]["title"] == "Original title"


async def test_raw_nul_is_refused_over_the_websocket(
    live_server_factory: Callable[..., LiveServer], database_url: str
) -> None:
    server = live_server_factory(GQL_FEED_DATABASE_URL=database_url)
    token, _ = server.signup_and_login()
    before = server.graphql(STATUS, token=token)
    async with raw_client(server) as ws:
        assert (await ws.init(token))["type"] == "connection_ack"
        await ws.subscribe("1", RAW_NUL_STATUS)
        answer = await ws.receive()
        assert answer["type"] == "error", answer
        assert [error["extensions"]["code"] for error in answer["payload"]] == ["BAD_USER_INPUT"]
        # A subscription document carrying one is refused the same way.
        await ws.subscribe("2", 'subscription { postEvents(after: "1\x00") { id } }')
        answer = await ws.receive()
        assert answer["type"] == "error", answer
        assert [error["extensions"]["code"] for error in answer["payload"]] == ["BAD_USER_INPUT"]
    assert server.graphql(STATUS, token=token) == before


# Integers beyond 64 bits.


async def test_cursor_beyond_64_bits_is_bad_user_input(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    await create_post(client, token)
    query = "query($after: String) { feed(first: 5, after: $after) { edges { cursor } } }"
    assert cursor("post:9223372036854775808") == "cG9zdDo5MjIzMzcyMDM2ODU0Nzc1ODA4"
    for text in ("post:9223372036854775808", "post:" + "9" * 40, "post:-1", "post:0"):
        body = await gql(client, query, {"after": cursor(text)}, token=token)
        assert body.get("data") is None, (text, body)
        assert codes(body) == ["BAD_USER_INPUT"], (text, body)
        assert "after" in body["errors"][0]["extensions"]["fields"]
    # As a literal in the query text too.
    body = await gql(
        client,
        '{ feed(after: "cG9zdDo5MjIzMzcyMDM2ODU0Nzc1ODA4") { edges { cursor } } }',
        token=token,
    )
    assert codes(body) == ["BAD_USER_INPUT"], body
    # The largest id a cursor can name is simply past every post.
    largest = await gql(client, query, {"after": cursor("post:9223372036854775807")}, token=token)
    assert "errors" not in largest, largest
    assert len(largest["data"]["feed"]["edges"]) == 1


async def test_other_integers_stay_within_64_bits(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    await create_post(client, token)
    # The largest page GraphQL's Int allows, times the largest perPage: past the deepest
    # page (GQL_FEED_MAX_PAGE_OFFSET), refused as input, not overflowing anything.
    body = await gql(
        client, "{ posts(page: 2147483647, perPage: 50) { totalPosts posts { id } } }", token=token
    )
    assert codes(body) == ["BAD_USER_INPUT"], body
    assert "107374182300" in body["errors"][0]["message"], body
    # Beyond Int, GraphQL itself refuses.
    body = await gql(client, "{ posts(page: 2147483648) { page } }", token=token)
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"], body
    # Ids past 64 bits name nothing.
    for field in ("post", "user"):
        body = await gql(client, f'{{ {field}(id: "9223372036854775808") {{ id }} }}', token=token)
        assert codes(body) == ["NOT_FOUND"], body
