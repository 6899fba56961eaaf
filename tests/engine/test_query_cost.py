"""The cost limit: list sizes times what is selected beneath them, across a whole request.

The outside test's batch (10 operations of 30 aliases of `posts(perPage: 50)` with content
and creator) was within every other limit and cost seconds of server time; it is refused
before anything runs, with the cost in `extensions`, while every query a real client
sends (the web client's, the Apollo example's, the README's) stays well within it.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from graphql import (
    DocumentNode,
    FieldNode,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_introspection_query,
    parse,
)
from graphql import build_schema as graphql_build_schema

from gql_feed.config import Settings
from gql_feed.engine.cost import QueryCost
from gql_feed.engine.executable import build_schema
from tests.helpers.asgi import app_client, codes, create_post, gql, user_with_token
from tests.helpers.live import raw_client
from tests.helpers.paths import REPO
from tests.helpers.server import LiveServer

ROOT = REPO
SCHEMA = build_schema([])._schema
DEFAULTS = Settings(_env_file=None)  # type: ignore[call-arg]
MAX_COST = DEFAULTS.max_query_cost
COST = QueryCost({"perPage": DEFAULTS.max_per_page, "first": DEFAULTS.max_first})
# A sanity bound, generous for a busy shared machine (the latencies are printed): a cheap
# query answered while the costly batch is refused must come back within this.
RESPONSIVE_SECONDS = 5.0

ALIASED_PAGES = (
    "query Pages($n: Int! = 50) { "
    + " ".join(
        f"p{i}: posts(perPage: $n) {{ posts {{ content creator {{ name }} }} }}" for i in range(30)
    )
    + " }"
)
ATTACK = [{"query": ALIASED_PAGES} for _ in range(10)]
README_FEED_PAGE = (
    "{ feed(first: 100) { edges { cursor node { id title content imageUrl createdAt "
    "updatedAt creator { id name status createdAt email } } } pageInfo { hasNextPage "
    "endCursor } } }"
)


def cost(query: str, variables: dict[str, Any] | None = None, name: str | None = None) -> int:
    return COST.of(SCHEMA, parse(query), name, variables)


# How cost is counted.


def test_cost_counts_list_sizes_times_the_selection() -> None:
    # The README's example: posts (1) + totalPosts (1) + the list: 1 + 50 items of 3.
    assert cost("{ posts(perPage: 50) { totalPosts posts { id creator { name } } } }") == 153
    # The argument's default (perPage: 2), a variable, the variable's default.
    assert cost("{ posts { posts { id } } }") == 1 + 1 + 2 * 1
    query = "query($n: Int! = 7) { posts(perPage: $n) { posts { id } } }"
    assert cost(query, {"n": 20}) == 1 + 1 + 20
    assert cost(query) == 1 + 1 + 7
    # Clamped to what the server allows: 10**9 items are never served, only 50.
    assert cost(query, {"n": 10**9}) == 1 + 1 + 50
    assert cost(query, {"n": "many"}) == 1 + 1 + 1
    # The size argument by its name, whatever other arguments stand beside it.
    assert cost("{ posts(page: 3, perPage: 10) { posts { id } } }") == 1 + 1 + 10
    assert cost("{ posts(zzz: 3, perPage: 10) { posts { id } } }") == 1 + 1 + 10  # unknown
    # first multiplies the edges; pageInfo is counted once.
    assert cost(
        "{ feed(first: 10) { edges { cursor node { id } } pageInfo { endCursor } } }"
    ) == 1 + (1 + 10 * (1 + 1 + 1)) + (1 + 1)


def test_a_remembered_cost_is_per_query_operation_and_variables() -> None:
    costs = QueryCost({"perPage": 50}, remembered_bytes=4096)
    query = "query A($n: Int!) { posts(perPage: $n) { posts { id } } } query B { me { id } }"
    document = parse(query)
    for _ in range(2):
        assert costs.of_query(SCHEMA, query, document, "A", {"n": 3}) == 1 + 1 + 3
        assert costs.of_query(SCHEMA, query, document, "A", {"n": 40}) == 1 + 1 + 40
        assert costs.of_query(SCHEMA, query, document, "B", {"n": 40}) == 1 + 1
    assert len(costs._remembered) == 3
    # Bounded: a thousand different variables keep only what fits in the bytes given.
    for n in range(1000):
        costs.of_query(SCHEMA, query, document, "A", {"n": n, "pad": "x" * 50})
    assert costs._remembered.size <= 4096


def test_aliases_fragments_and_operations_all_count() -> None:
    one = "posts(perPage: 10) { posts { id title } }"
    assert cost(f"{{ {one} }}") == 1 + 1 + 10 * 2
    assert cost(f"{{ a: {one} b: {one} }}") == 2 * (1 + 1 + 10 * 2)
    fragments = (
        "fragment P on Post { id title } fragment Page on PostPage { posts { ...P } } "
        "{ posts(perPage: 10) { ...Page } }"
    )
    assert cost(fragments) == 1 + 1 + 10 * 2
    inline = "{ posts(perPage: 10) { ... on PostPage { posts { ... on Post { id title } } } } }"
    assert cost(inline) == 1 + 1 + 10 * 2
    untyped = "{ posts(perPage: 10) { ... { posts { ... @include(if: true) { id title } } } } }"
    assert cost(untyped) == 1 + 1 + 10 * 2
    # Only the operation that runs counts.
    two = "query A { me { id } } query B { posts(perPage: 50) { posts { id } } }"
    assert cost(two, name="A") == 2
    assert cost(two, name="B") == 1 + 1 + 50


def test_what_the_schema_lacks_counts_one_and_crashes_nothing() -> None:
    """Cost is counted before validation refuses the document: a field, fragment type or
    root the schema lacks counts as 1 (or as nothing), never as an error."""
    assert cost("{ nope }") == 1
    assert cost("{ nope { a b } }") == 1 + 2
    assert cost("fragment F on Nope { a b } { posts { posts { ...F } } }") == 1 + 1 + 2 * 2
    assert cost("{ posts { posts { ...Missing } } }") == 1 + 1
    # A cycle of fragments (refused by validation) counts the way round once.
    cycle = "fragment A on Post { id ...B } fragment B on Post { title ...A }"
    assert cost(cycle + " { posts { posts { ...A } } }") == 1 + 1 + 2 * 2
    assert cost("query A { me { id } }", name="B") == 0  # no such operation: nothing runs
    query = "query A { me { id } }"
    assert COST.of_query(SCHEMA, query, parse(query), "B") == 0
    no_mutations = graphql_build_schema("type Query { a: Int }")
    assert COST.of(no_mutations, parse("mutation { a }")) == 0


def test_a_document_too_deep_to_walk_costs_nothing() -> None:
    """Deeper than Python's stack (no parser makes one, but the cost must not crash on
    it): validation's depth limit refuses it, so it counts as nothing."""
    node = FieldNode(name=NameNode(value="id"))
    for _ in range(sys.getrecursionlimit()):
        node = FieldNode(
            name=NameNode(value="nope"), selection_set=SelectionSetNode(selections=(node,))
        )
    operation = OperationDefinitionNode(
        operation=OperationType.QUERY, selection_set=SelectionSetNode(selections=(node,))
    )
    assert COST.of(SCHEMA, DocumentNode(definitions=(operation,))) == 0


def test_a_remembered_cost_weighs_its_text_and_variables() -> None:
    query = "query A($n: Int!, $pad: String) { posts(perPage: $n) { posts { id } } }"
    document = parse(query)
    pad = "p" * 500
    small = QueryCost({"perPage": 50}, remembered_bytes=1024)
    assert small.of_query(SCHEMA, query, document, "A", {"n": 3, "pad": pad}) == 1 + 1 + 3
    assert len(small._remembered) == 1  # text and variables together fit in 1 KB
    default = QueryCost({"perPage": 50})
    default.of_query(SCHEMA, query, document, "A", {"n": 3, "pad": pad})
    assert len(default._remembered) == 1  # a megabyte unless told otherwise
    costs = QueryCost({"perPage": 50}, remembered_bytes=4096)
    for n in range(200):
        costs.of_query(SCHEMA, query, document, "A", {"n": n, "pad": pad})
    # Each weighs at least its query text and variables: 4 KB holds only a few.
    assert 0 < len(costs._remembered) <= 4096 // (len(query) + len(pad))


def test_variables_that_are_not_json_are_costed_not_remembered() -> None:
    """An upload's variable is a file, not JSON: the cost is counted each time."""
    query = (
        "mutation($image: Upload!) { createPost(input: "
        '{title: "A title", content: "Some content", image: $image}) { id title } }'
    )
    document = parse(query)
    costs = QueryCost({"perPage": 50})
    assert costs.of_query(SCHEMA, query, document, None, {"image": object()}) == 1 + 2
    assert len(costs._remembered) == 0


def test_fragments_nested_deeply_cost_linear_time() -> None:
    """Each fragment is counted once however often it is spread."""
    levels = 40
    text = "fragment F0 on Post { id title }\n" + "\n".join(
        f"fragment F{i} on Post {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels)
    )
    text += f"\n{{ posts(perPage: 50) {{ posts {{ ...F{levels - 1} }} }} }}"
    started = time.monotonic()
    assert cost(text) == 1 + 1 + 50 * 2 * 2 ** (levels - 1)
    # A sanity bound, generous for a busy machine: it takes milliseconds, while walking
    # every spread (2^39 of them) would never end.
    assert time.monotonic() - started < 10.0


def client_documents() -> list[tuple[str, str]]:
    """Every operation the web client and the Apollo Client example send, as sent."""
    documents = []
    api = (ROOT / "gql_feed/web/api.js").read_text()
    post_fields = re.search(r"POST_FIELDS = `(.*?)`", api, re.S)
    user_fields = re.search(r'USER_FIELDS = "(.*?)"', api)
    assert post_fields
    assert user_fields
    for text in re.findall(r"`\s*((?:query|mutation|subscription)\b[^`]*)`", api):
        text = text.replace("${USER_FIELDS}", user_fields[1])
        documents.append(("web", text.replace("${POST_FIELDS}", post_fields[1])))
    example = (ROOT / "examples/apollo-client/feed.mjs").read_text()
    fragment = re.search(r"POST_FIELDS = gql`(.*?)`", example, re.S)
    assert fragment
    for text in re.findall(r"gql`\s*((?:query|mutation|subscription)\b[^`]*)`", example):
        documents.append(("example", text.replace("${POST_FIELDS}", fragment[1])))
    assert len(documents) >= 10, documents
    return documents


def test_every_real_client_query_is_well_within_the_limit() -> None:
    biggest = {"page": 1, "perPage": DEFAULTS.max_per_page, "first": DEFAULTS.max_first}
    for source, text in client_documents():
        assert cost(text, biggest) <= MAX_COST // 2, (source, text, cost(text, biggest))
    readme = (
        "{ posts(page: 1, perPage: 2) { totalPosts posts { id title creator { name } } } }",
        "subscription { postEvents { id action post { id title imageUrl creator { id name } } "
        "occurredAt } }",
        # The biggest pages there are, with every field.
        "{ posts(perPage: 50) { totalPosts page perPage posts { id title content imageUrl "
        "createdAt updatedAt creator { id name status createdAt email } } } }",
        README_FEED_PAGE,
        get_introspection_query(),  # GraphiQL's
    )
    for text in readme:
        assert cost(text) <= MAX_COST, (text, cost(text))


def test_the_readmes_figures() -> None:
    assert cost(README_FEED_PAGE) == 1_405
    assert cost(get_introspection_query()) == 220


def test_the_outside_tests_batch_costs_far_more_than_the_limit() -> None:
    # 30 aliases, each posts (1) + the list (1) + 50 items of content, creator, name.
    assert cost(ALIASED_PAGES) == 30 * (1 + 1 + 50 * 3)
    assert cost(ALIASED_PAGES) > MAX_COST


# Refused before execution, over HTTP.


async def test_a_costly_query_is_refused_with_its_cost(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    await create_post(client, token)
    body = await gql(client, ALIASED_PAGES, token=token)
    assert "data" not in body, body
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    extensions = body["errors"][0]["extensions"]
    assert extensions["cost"] == cost(ALIASED_PAGES)
    assert extensions["maxCost"] == MAX_COST
    assert body["errors"][0]["message"].startswith(f"The query costs {extensions['cost']}, ")
    assert str(MAX_COST) in body["errors"][0]["message"]
    # The same document with small pages (a variable) runs.
    cheap = await gql(client, ALIASED_PAGES, {"n": 2}, token=token)
    assert "errors" not in cheap, cheap
    assert len(cheap["data"]) == 30


async def test_a_batch_is_counted_whole_and_refused_whole(settings: Settings) -> None:
    async with app_client(settings, max_query_cost=300) as http:
        token, _ = await user_with_token(http)
        page = "{ posts(perPage: 50) { posts { id title } } }"  # 102 each
        mutation = 'mutation { updateStatus(status: "set by a costly batch") { status } }'
        headers = {"authorization": f"Bearer {token}"}
        batch = [{"query": mutation}] + [{"query": page}] * 3  # 2 + 3 x 102 = 308
        response = await http.post("/graphql", json=batch, headers=headers)
        assert response.status_code == 200
        answers = response.json()
        assert len(answers) == 4
        for answer in answers:
            assert "data" not in answer, answer
            assert codes(answer) == ["GRAPHQL_VALIDATION_FAILED"]
            assert answer["errors"][0]["extensions"] == {
                "code": "GRAPHQL_VALIDATION_FAILED",
                "cost": 308,
                "maxCost": 300,
            }
            message = answer["errors"][0]["message"]
            assert message.startswith("The operations of this request together cost 308, ")
        # Nothing ran: not even the cheap mutation.
        me = await gql(http, "{ me { status } }", token=token)
        assert me["data"]["me"]["status"] != "set by a costly batch"
        # Within the limit, the batch runs.
        response = await http.post("/graphql", json=batch[:3], headers=headers)
        assert all("errors" not in answer for answer in response.json())
        me = await gql(http, "{ me { status } }", token=token)
        assert me["data"]["me"]["status"] == "set by a costly batch"


async def test_the_outside_tests_batch_is_refused(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    response = await client.post(
        "/graphql", json=ATTACK, headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    answers = response.json()
    assert [codes(answer) for answer in answers] == [["GRAPHQL_VALIDATION_FAILED"]] * 10
    assert answers[0]["errors"][0]["extensions"]["cost"] == 10 * cost(ALIASED_PAGES)
    assert len(response.content) < 10_000  # instead of 31 MB


# Over the WebSocket, per operation.


async def test_costly_operations_over_the_websocket(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory(GQL_FEED_MAX_QUERY_COST="100")
    token, _ = server.signup_and_login()
    async with raw_client(server) as ws:
        assert (await ws.init(token))["type"] == "connection_ack"
        query = "query($n: Int!) { posts(perPage: $n) { posts { id title } } }"
        await ws.subscribe("1", query, {"n": 50})
        answer = await ws.receive()
        # A query (one result) refused before it runs answers as a query does: one `next`
        # with no data and the error, then `complete`. (A subscription gets `error`, below.)
        assert answer["type"] == "next", answer
        assert answer["payload"]["data"] is None, answer
        errors = answer["payload"]["errors"]
        assert await ws.receive() == {"id": "1", "type": "complete"}
        assert [error["extensions"]["code"] for error in errors] == ["GRAPHQL_VALIDATION_FAILED"]
        assert errors[0]["extensions"]["cost"] == 1 + 1 + 50 * 2
        await ws.subscribe("2", query, {"n": 5})
        answer = await ws.receive()
        assert answer == {"id": "2", "type": "next", "payload": {"data": {"posts": {"posts": []}}}}
        assert await ws.receive() == {"id": "2", "type": "complete"}
        # A subscription whose selection costs too much is refused the same way.
        fields = " ".join(f"f{i}: id" for i in range(120))
        await ws.subscribe("3", f"subscription {{ postEvents {{ post {{ {fields} }} }} }}")
        answer = await ws.receive()
        assert answer["type"] == "error", answer
        assert answer["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


# Responsiveness: the attack against a real server, and another client meanwhile.


@pytest.mark.timeout(180)
async def test_server_stays_responsive_during_the_costly_batch(live_server: LiveServer) -> None:
    token, _ = live_server.signup_and_login()
    for index in range(5):
        live_server.create_post(token, f"Post number {index}")
    headers = {"authorization": f"Bearer {token}"}
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=60) as http:

        async def attack() -> list[Any]:
            responses = await asyncio.gather(
                *(
                    http.post(live_server.graphql_url, json=ATTACK, headers=headers)
                    for _ in range(5)
                )
            )
            return [response.json() for response in responses]

        attacking = asyncio.create_task(attack())
        while not attacking.done():
            started = time.monotonic()
            response = await http.post(live_server.graphql_url, json={"query": "{ __typename }"})
            latencies.append(time.monotonic() - started)
            assert response.json() == {"data": {"__typename": "Query"}}
            await asyncio.sleep(0.02)
        for answers in await attacking:
            assert [codes(answer) for answer in answers] == [["GRAPHQL_VALIDATION_FAILED"]] * 10
    print("cheap query latencies:", [round(latency, 3) for latency in latencies])
    assert latencies
    assert max(latencies) < RESPONSIVE_SECONDS, latencies
