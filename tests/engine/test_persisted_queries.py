"""Automatic persisted queries (Apollo's protocol) over POST, GET and WebSocket; GET rules.

APQ: a client sends `extensions.persistedQuery {version: 1, sha256Hash}` alone; an unknown
hash answers PERSISTED_QUERY_NOT_FOUND (HTTP 200) and the client resends with the query,
which registers it. GET runs queries only (a mutation is a 405, as in Apollo Server) and
is held to Apollo's CSRF rule like any other request.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from gql_feed.config import Settings
from gql_feed.engine.document_stores import MemoryDocumentStore
from tests.helpers.asgi import app_client, codes, user_with_token
from tests.helpers.persisted import JSON, TransportWs, apq, get, post, sha, unique, ws_codes
from tests.helpers.server import LiveServer
from tests.helpers.services import redis_url, unique_channel

ME = "query Me { me { id name } }"


async def test_miss_register_hit(client: httpx.AsyncClient) -> None:
    token, user_id = await user_with_token(client)
    query = unique(ME)

    miss = await post(client, {"extensions": apq(query)}, token)
    assert miss.status_code == 200
    assert miss.json() == {
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
    }
    assert "no-cache" in miss.headers["cache-control"]

    register = await post(client, {"query": query, "extensions": apq(query)}, token)
    assert register.status_code == 200
    assert register.json() == {"data": {"me": {"id": user_id, "name": "Ann"}}}

    hit = await post(client, {"extensions": apq(query), "operationName": "Me"}, token)
    assert hit.status_code == 200
    assert hit.json() == {"data": {"me": {"id": user_id, "name": "Ann"}}}


async def test_hash_is_case_insensitive_and_variables_apply(client: httpx.AsyncClient) -> None:
    token, user_id = await user_with_token(client)
    query = unique("query($id: ID!) { user(id: $id) { id } }")
    await post(client, {"query": query, "extensions": apq(query), "variables": {"id": user_id}})
    upper = {"persistedQuery": {"version": 1, "sha256Hash": sha(query).upper()}}
    hit = await post(client, {"extensions": upper, "variables": {"id": user_id}}, token)
    assert hit.json() == {"data": {"user": {"id": user_id}}}


async def test_mismatched_hash_is_refused(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    query = unique(ME)
    response = await post(client, {"query": query, "extensions": apq(query + " ")}, token)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"message": "provided sha does not match query", "extensions": {"code": "BAD_REQUEST"}}
    ]
    # Nothing was registered under either hash.
    for text in (query, query + " "):
        miss = await post(client, {"extensions": apq(text)}, token)
        assert codes(miss.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_bad_extension_is_a_bad_request(client: httpx.AsyncClient) -> None:
    for extension in (
        {"persistedQuery": {"version": 2, "sha256Hash": sha(ME)}},
        {"persistedQuery": {"version": 1}},
        {"persistedQuery": "yes"},
    ):
        response = await post(client, {"extensions": extension})
        assert response.status_code == 400, extension
        assert codes(response.json()) == ["BAD_REQUEST"]


async def test_a_document_that_cannot_run_is_not_stored(client: httpx.AsyncClient) -> None:
    query = unique("{ nothingHere }")
    response = await post(client, {"query": query, "extensions": apq(query)})
    assert codes(response.json()) == ["GRAPHQL_VALIDATION_FAILED"]
    again = await post(client, {"extensions": apq(query)})
    assert codes(again.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_no_query_at_all(client: httpx.AsyncClient) -> None:
    response = await post(client, {"variables": {}})
    assert response.status_code == 400
    assert codes(response.json()) == ["BAD_REQUEST"]


async def test_each_operation_of_a_batch_is_resolved_alone(client: httpx.AsyncClient) -> None:
    token, user_id = await user_with_token(client)
    known, unknown = unique(ME), unique(ME)
    await post(client, {"query": known, "extensions": apq(known)}, token)
    response = await post(
        client, [{"extensions": apq(known)}, {"extensions": apq(unknown)}, {"query": ME}], token
    )
    assert response.status_code == 200
    first, second, third = response.json()
    assert first == {"data": {"me": {"id": user_id, "name": "Ann"}}}
    assert codes(second) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert third == first


async def test_apq_can_be_turned_off(settings: Settings) -> None:
    async with app_client(settings, persisted_queries=False) as http:
        response = await post(http, {"extensions": apq(ME)})
        assert response.status_code == 200
        assert codes(response.json()) == ["PERSISTED_QUERY_NOT_SUPPORTED"]
        plain = await post(http, {"query": "{ __typename }"})
        assert plain.json() == {"data": {"__typename": "Query"}}


def test_memory_store_is_a_bounded_lru() -> None:
    store = MemoryDocumentStore(max_bytes=30)
    store.store("a", "x" * 10)
    store.store("b", "y" * 10)
    assert store.lookup("a") == "x" * 10  # now the most recently used
    store.store("c", "z" * 15)
    assert store.lookup("b") is None
    assert store.lookup("a") == "x" * 10
    assert store.lookup("c") == "z" * 15
    assert store.size <= 30
    store.store("huge", "h" * 31)
    assert store.lookup("huge") is None
    assert len(store) == 2


# GET: queries and hashed queries (Apollo's useGETForHashedQueries); never mutations.


async def test_query_over_get(client: httpx.AsyncClient) -> None:
    token, user_id = await user_with_token(client)
    response = await get(
        client,
        {"query": "query($id: ID!) { user(id: $id) { id } }", "variables": {"id": user_id}},
        token=token,
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"user": {"id": user_id}}}


async def test_hashed_query_over_get(client: httpx.AsyncClient) -> None:
    token, user_id = await user_with_token(client)
    query = unique(ME)
    # Apollo Client asks for JSON; curl's `accept: */*` must not get GraphiQL either.
    for accept in ("application/graphql-response+json,application/json;q=0.9", "*/*"):
        miss = await get(client, {"extensions": apq(query)}, {**JSON, "accept": accept}, token)
        assert miss.status_code == 200
        assert codes(miss.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    register = await get(client, {"query": query, "extensions": apq(query)}, token=token)
    assert register.json() == {"data": {"me": {"id": user_id, "name": "Ann"}}}
    hit = await get(client, {"extensions": apq(query), "variables": {}}, token=token)
    assert hit.json() == {"data": {"me": {"id": user_id, "name": "Ann"}}}


async def test_mutation_over_get_is_405(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    mutation = unique('mutation { updateStatus(status: "by GET") { status } }')
    response = await get(client, {"query": mutation}, token=token)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["errors"] == [
        {
            "message": "Can only perform a mutation operation from a POST request.",
            "extensions": {"code": "BAD_REQUEST"},
        }
    ]
    # Registered over POST, the same mutation by hash over GET is still refused.
    registered = await post(client, {"query": mutation, "extensions": apq(mutation)}, token)
    assert registered.json()["data"]["updateStatus"]["status"] == "by GET"
    by_hash = await get(client, {"extensions": apq(mutation)}, token=token)
    assert by_hash.status_code == 405


async def test_graphiql_still_opens_with_a_plain_get(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]


# Apollo's CSRF rule, on GET as on POST.


@pytest.mark.parametrize(
    ("headers", "blocked"),
    [
        ({}, True),
        ({"content-type": "text/plain"}, True),
        ({"content-type": "application/x-www-form-urlencoded; charset=utf-8"}, True),
        ({"content-type": "Multipart/Form-Data; boundary=x"}, True),
        ({"apollo-require-preflight": ""}, True),
        ({"apollo-require-preflight": "true"}, False),
        ({"x-apollo-operation-name": "Typename"}, False),
        ({"content-type": "application/json"}, False),
        ({"content-type": "not a mime type"}, False),  # browsers preflight those too
    ],
)
async def test_csrf_rule_on_get(
    client: httpx.AsyncClient, headers: dict[str, str], blocked: bool
) -> None:
    for params in ({"query": "{ __typename }"}, {"extensions": apq("{ __typename }")}):
        response = await get(client, params, headers)
        if blocked:
            assert response.status_code == 400, (headers, params)
            assert "CSRF" in response.json()["errors"][0]["message"]
        else:
            assert response.status_code == 200, (headers, params, response.text)


async def test_csrf_rule_on_post(client: httpx.AsyncClient) -> None:
    body = json.dumps({"query": "{ __typename }"})
    plain = await client.post("/graphql", content=body, headers={"content-type": "text/plain"})
    assert plain.status_code == 400
    preflighted = await client.post(
        "/graphql",
        content=body,
        headers={"content-type": "application/json", "apollo-require-preflight": "1"},
    )
    assert preflighted.json() == {"data": {"__typename": "Query"}}


# The WebSocket `subscribe` message, with a raw graphql-transport-ws client.

EVENTS = "subscription Events { postEvents { action post { id title } } }"


async def test_subscribe_with_a_hash(live_server: LiveServer) -> None:
    token, _ = live_server.signup_and_login()
    query = unique(EVENTS)
    async with TransportWs.open(live_server, token) as ws:
        await ws.subscribe("miss", {"extensions": apq(query)})
        miss = await ws.receive()
        assert miss["id"] == "miss"
        assert ws_codes(miss) == ["PERSISTED_QUERY_NOT_FOUND"]

        await ws.subscribe("bad", {"query": query, "extensions": apq(query + " ")})
        bad = await ws.receive()
        assert bad["id"] == "bad"
        assert ws_codes(bad) == ["BAD_REQUEST"]

        # The client resends with the text, as Apollo's link does: that registers it.
        await ws.subscribe("full", {"query": query, "extensions": apq(query)})
        await ws.subscribe("hashed", {"extensions": apq(query)})
        await ws.settle()
        created = await asyncio.to_thread(live_server.create_post, token, "Hashed subscription")
        got = {}
        for _ in range(2):
            message = await ws.receive()
            assert message["type"] == "next", message
            got[message["id"]] = message["payload"]["data"]["postEvents"]
        expected = {
            "action": "CREATED",
            "post": {"id": created["id"], "title": "Hashed subscription"},
        }
        assert got == {"full": expected, "hashed": expected}

    # One store serves both transports: over HTTP the hash is known (not NOT_FOUND), and
    # the subscription it names is sent back to the WebSocket.
    over_http = httpx.post(live_server.graphql_url, json={"extensions": apq(query)}, timeout=10)
    assert over_http.status_code == 400
    assert codes(over_http.json()) == ["BAD_REQUEST"]
    assert "WebSocket" in over_http.json()["errors"][0]["message"]


async def test_a_query_registered_over_http_runs_by_hash_over_websocket(
    live_server: LiveServer,
) -> None:
    token, user_id = live_server.signup_and_login()
    query = unique(ME)
    registered = httpx.post(
        live_server.graphql_url,
        json={"query": query, "extensions": apq(query)},
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert registered.json() == {"data": {"me": {"id": user_id, "name": "Tester"}}}
    async with TransportWs.open(live_server, token) as ws:
        await ws.subscribe("me", {"extensions": apq(query)})
        result = await ws.receive()
        assert result == {
            "id": "me",
            "type": "next",
            "payload": {"data": {"me": {"id": user_id, "name": "Tester"}}},
        }
        assert await ws.receive() == {"id": "me", "type": "complete"}


# Every worker shares what one has learned, through the bus's Redis.


@pytest.mark.redis
async def test_registered_on_one_server_known_to_another(live_server_factory: Any) -> None:
    url = redis_url()
    env = {
        "GQL_FEED_BROADCAST_URL": url,
        "GQL_FEED_BROADCAST_CHANNEL": unique_channel(),
        "GQL_FEED_PERSISTED_QUERY_REDIS_PREFIX": f"gql_feed_test:{uuid.uuid4().hex}:",
    }
    first: LiveServer = await asyncio.to_thread(live_server_factory, **env)
    env["GQL_FEED_DATABASE_URL"] = first.env["GQL_FEED_DATABASE_URL"]  # one SQLite file (WAL)
    second: LiveServer = await asyncio.to_thread(live_server_factory, **env)
    query = unique("query Typename { __typename }")

    async with httpx.AsyncClient(timeout=10) as http:
        miss = await http.post(second.graphql_url, json={"extensions": apq(query)})
        assert codes(miss.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
        registered = await http.post(
            first.graphql_url, json={"query": query, "extensions": apq(query)}
        )
        assert registered.json() == {"data": {"__typename": "Query"}}
        hit = await http.post(second.graphql_url, json={"extensions": apq(query)})
        assert hit.json() == {"data": {"__typename": "Query"}}

    # The entry has a TTL, under the configured prefix.
    from redis.asyncio import Redis

    redis = Redis.from_url(url)
    try:
        ttl = await redis.ttl(env["GQL_FEED_PERSISTED_QUERY_REDIS_PREFIX"] + sha(query))
    finally:
        await redis.aclose()
    assert 0 < ttl <= 24 * 3600
