"""Padded queries: megabytes of spaces, a comment or a block string around `{__typename}`.

The token limit does not see them, so the query text itself is bounded in bytes
(GQL_FEED_MAX_QUERY_BYTES): anything longer is refused before it is lexed, over HTTP
(single, batched, GET, multipart, APQ registration) and over the WebSocket, and nothing
of it is cached. What is within the bound is parsed and validated off the event loop,
and every document cache is bounded by the bytes it holds, not by its entries.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from graphql import specified_rules

import gql_feed.engine.parsing as parsing
from gql_feed.config import Settings
from gql_feed.engine.executable import build_schema
from gql_feed.engine.extensions import DocumentChecks
from gql_feed.engine.parsing import DocumentParser, ValidationResults
from gql_feed.transport.http.view import GraphQLView
from tests.helpers.asgi import (
    CREATE_POST,
    app_client,
    codes,
    gql,
    multipart,
    uploads,
    user_with_token,
)
from tests.helpers.live import raw_client
from tests.helpers.server import LiveServer, png_bytes

PADDING = 5_500_000  # the size of the padded bodies the outside test sent
# A sanity bound, generous for a busy shared machine (the latencies are printed): a cheap
# query answered while padded queries arrive must come back within this.
RESPONSIVE_SECONDS = 5.0


def padded(kind: str, size: int) -> str:
    """A small query grown by about `size` characters in a way no token counts."""
    if kind == "spaces":
        return "{__typename}" + " " * size
    if kind == "comment":
        return "{__typename}\n#" + "x" * size
    if kind == "block string":
        return '{ user(id: """' + "x" * size + '""") { id } }'
    raise ValueError(kind)


KINDS = ("spaces", "comment", "block string")


def checks_of(http: httpx.AsyncClient) -> DocumentChecks:
    checks: DocumentChecks = http.app.state.document_checks  # type: ignore[attr-defined]
    return checks


def too_large(body: dict[str, Any], max_bytes: int) -> None:
    assert body.get("data") is None, body
    assert codes(body) == ["PAYLOAD_TOO_LARGE"], body
    assert str(max_bytes) in body["errors"][0]["message"]


# Over HTTP, every way a query arrives.


async def test_padded_queries_are_refused_unparsed(settings: Settings) -> None:
    limit = 1_000
    async with app_client(settings, max_query_bytes=limit) as http:
        checks = checks_of(http)
        before = len(checks.parser.cache), checks.parser.cache.size
        queries = [
            "{__typename}" + " " * limit,
            "{__typename}\n#" + "x" * limit,
            '{ __typename @include(if: true) } query B { me { status(x: """'
            + "x" * limit
            + '""") } }',
            "{__typename}" + "é" * (limit // 2),  # characters that are two bytes each
        ]
        for query in queries:
            response = await http.post("/graphql", json={"query": query})
            assert response.status_code == 413, (query[:40], response.text)
            too_large(response.json(), limit)
        assert (len(checks.parser.cache), checks.parser.cache.size) == before
        # Right at the limit, in bytes: served.
        query = "{__typename}" + " " * (limit - len("{__typename}"))
        response = await http.post("/graphql", json={"query": query})
        assert response.json() == {"data": {"__typename": "Query"}}


async def test_every_way_in_is_bounded(settings: Settings) -> None:
    limit = 1_000
    query = "{__typename}" + " " * 2 * limit
    async with app_client(settings, max_query_bytes=limit) as http:
        token, _ = await user_with_token(http)
        status_before = await gql(http, "{ me { status } }", token=token)

        # GET.
        response = await http.get(
            "/graphql", params={"query": query}, headers={"apollo-require-preflight": "1"}
        )
        assert response.status_code == 413
        too_large(response.json(), limit)

        # Each operation of a batch: the others still run, nothing of the refused one does.
        mutation = 'mutation { updateStatus(status: "changed by a padded batch") { status } }'
        batch = [
            {"query": "{ __typename }"},
            {"query": mutation + " " * 2 * limit},
        ]
        response = await http.post(
            "/graphql", json=batch, headers={"authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200
        first, second = response.json()
        assert first == {"data": {"__typename": "Query"}}
        too_large(second, limit)
        assert await gql(http, "{ me { status } }", token=token) == status_before

        # Multipart: an upload with a padded mutation stores neither a post nor a file.
        response = await multipart(
            http,
            token,
            CREATE_POST + " " * 2 * limit,
            {"i": {"title": "Padded post", "content": "Never stored", "image": None}},
            "i.image",
            png_bytes(),
        )
        assert response.status_code == 413
        too_large(response.json(), limit)
        assert uploads(http) == set()
        feed = await gql(http, "{ posts { totalPosts } }", token=token)
        assert feed["data"]["posts"]["totalPosts"] == 0

        # APQ registration: refused, and the hash stays unknown.
        sha = hashlib.sha256(query.encode()).hexdigest()
        extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha}}
        response = await http.post("/graphql", json={"query": query, "extensions": extensions})
        assert response.status_code == 413
        too_large(response.json(), limit)
        response = await http.post("/graphql", json={"extensions": extensions})
        assert codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_the_default_bound_refuses_the_padded_bodies(client: httpx.AsyncClient) -> None:
    limit = Settings.model_fields["max_query_bytes"].default
    for kind in KINDS:
        response = await client.post("/graphql", json={"query": padded(kind, PADDING)})
        assert response.status_code == 413, kind
        too_large(response.json(), limit)


# Over the WebSocket.


async def test_padded_subscriptions_are_refused(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    """Even where the socket allows big messages, the query text is bounded."""
    server = live_server_factory(
        GQL_FEED_WS_MAX_MESSAGE_BYTES="1000000", GQL_FEED_MAX_QUERY_BYTES="10000"
    )
    token, _ = server.signup_and_login()
    async with raw_client(server) as ws:
        assert (await ws.init(token))["type"] == "connection_ack"
        await ws.subscribe("1", "subscription { postEvents { id } }" + " " * 50_000)
        answer = await ws.receive()
        assert answer["type"] == "error", answer
        assert [error["extensions"]["code"] for error in answer["payload"]] == ["PAYLOAD_TOO_LARGE"]
        await ws.subscribe("2", '{ __typename } # """' + "x" * 50_000)
        answer = await ws.receive()
        assert answer["type"] == "error", answer
        # The connection is still good for operations of a reasonable size.
        await ws.subscribe("3", "{ __typename }")
        answer = await ws.receive()
        assert answer == {"id": "3", "type": "next", "payload": {"data": {"__typename": "Query"}}}


# Responsiveness: a real server, padded queries arriving, and another client.


async def cheap_query_latencies(server: LiveServer, attack: Callable[[], Any]) -> list[float]:
    """Send the attack, and meanwhile a cheap query every 50 ms; each one's latency."""
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=30) as http:
        attacking = asyncio.create_task(attack())
        await asyncio.sleep(0.05)
        while not attacking.done():
            started = time.monotonic()
            response = await http.post(server.graphql_url, json={"query": "{ __typename }"})
            latencies.append(time.monotonic() - started)
            assert response.json() == {"data": {"__typename": "Query"}}
            await asyncio.sleep(0.05)
        await attacking
    return latencies


async def test_server_stays_responsive_during_padded_queries(live_server: LiveServer) -> None:
    statuses: list[int] = []

    async def attack() -> None:
        async with httpx.AsyncClient(timeout=60) as http:

            async def one(index: int) -> None:
                kind = KINDS[index % len(KINDS)]
                body = {"query": padded(kind, PADDING) + str(index)}
                response = await http.post(live_server.graphql_url, json=body)
                statuses.append(response.status_code)
                assert codes(response.json()) == ["PAYLOAD_TOO_LARGE"]

            await asyncio.gather(*(one(index) for index in range(6)))

    latencies = await cheap_query_latencies(live_server, attack)
    assert statuses == [413] * 6
    assert latencies, "the attack ended before any cheap query was sent"
    print("cheap query latencies:", [round(x, 3) for x in latencies])
    assert max(latencies) < RESPONSIVE_SECONDS, latencies


async def test_server_stays_responsive_during_queries_at_the_bound(
    live_server: LiveServer,
) -> None:
    """Distinct texts just under the bound: parsed off the event loop, each one."""
    limit = Settings.model_fields["max_query_bytes"].default

    async def attack() -> None:
        async with httpx.AsyncClient(timeout=60) as http:

            async def one(index: int) -> None:
                query = f"{{__typename}}\n# {index} " + "x" * (limit - 40)
                response = await http.post(live_server.graphql_url, json={"query": query})
                assert response.json() == {"data": {"__typename": "Query"}}

            for start in range(0, 40, 8):
                await asyncio.gather(*(one(index) for index in range(start, start + 8)))

    latencies = await cheap_query_latencies(live_server, attack)
    assert latencies
    print("cheap query latencies:", [round(x, 3) for x in latencies])
    assert max(latencies) < RESPONSIVE_SECONDS, latencies


# The caches.


async def test_document_caches_are_bounded_in_bytes() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    schema = build_schema([])._schema
    budget = 512 * 1024
    parser = DocumentParser(settings.max_query_bytes, settings.max_query_tokens, budget)
    validation = ValidationResults(budget)
    for index in range(100):
        text = f"{{ __typename }} # {index} " + "x" * 60_000
        document = await parser.parse(text)
        await validation.validate(schema, text, document, [])
        assert parser.cache.size <= budget
        assert validation.cache.size <= budget
    assert 1 < len(parser.cache) < 100
    # Many tokens weigh more than their text: a dense document is counted as such.
    dense = "{" + " ".join(f"a{i}: __typename" for i in range(600)) + "}"
    await parser.parse(dense)
    assert parsing.document_weight(dense, await parser.parse(dense)) > 10 * len(dense)


async def test_big_documents_are_parsed_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[int] = []
    real_parse = parsing.parse

    def recording_parse(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(parsing, "parse", recording_parse)
    parser = DocumentParser(64 * 1024, 2_000, 1024 * 1024)
    await parser.parse("{ __typename }")
    await parser.parse("{ __typename } # " + "x" * 10_000)
    loop_thread = threading.get_ident()
    assert threads[0] == loop_thread  # small: not worth a thread
    assert threads[1] != loop_thread
    await parser.parse("{ __typename } # " + "x" * 10_000)
    assert len(threads) == 2  # cached


async def test_cached_errors_weigh_the_tree_they_keep() -> None:
    """An error's nodes keep the whole token chain of their document alive."""
    schema = build_schema([])._schema
    text = "{ " + " ".join(f"a{i}: nope{i}" for i in range(300)) + " }"
    results = ValidationResults(10 * 1024 * 1024)
    parser = DocumentParser(64 * 1024, 2_000, 10 * 1024 * 1024)
    document = await parser.parse(text)
    errors = await results.validate(schema, text, document, specified_rules)
    assert len(errors) >= 1
    tree = parsing.document_weight(text, document) - len(text)
    assert parsing.errors_weight(errors) >= tree
    assert results.cache.size >= tree


async def test_big_json_bodies_are_decoded_off_the_event_loop(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    real_parse_json = GraphQLView.parse_json

    def recording_parse_json(self: GraphQLView, data: str | bytes) -> Any:
        threads.append(threading.get_ident())
        return real_parse_json(self, data)

    monkeypatch.setattr(GraphQLView, "parse_json", recording_parse_json)
    await client.post("/graphql", json={"query": "{ __typename }"})
    response = await client.post("/graphql", json={"query": padded("spaces", PADDING)})
    assert response.status_code == 413
    assert threads[0] == threading.get_ident()  # small: decoded in place
    assert threads[1] != threading.get_ident()
