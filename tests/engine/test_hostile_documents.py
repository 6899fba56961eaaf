"""Hostile documents and variables: no request holds the event loop, no size gets around
the cost, no queue grows without bound.

- Fragments that each spread the next twice (800 bytes for 2^20 spreads) are checked in
  time linear in the document: the depth, alias and `__schema` limits visit each fragment
  once. Every validation runs off the event loop, bounded by GQL_FEED_MAX_VALIDATION_SECONDS.
- A size sent as `50.0` for an `Int` costs what 50 costs: the cost reads coerced values.
- Variables the operation does not declare are dropped before anything walks them; the
  NUL check over the declared ones is linear and leaves the loop when they are big.
- A GET longer than the HTTP parser reads gets a JSON 414; a second `__schema` is
  refused; the response cache reuses execution's parse; a live group's pending events
  and a single-connection stream's queued commands are bounded.

Timing bounds here are generous sanity bounds, stated as constants: on today's code the
attacks hold the loop for several seconds each.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest
from graphql import GraphQLError, parse, specified_rules, validate
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter

import gql_feed.engine.parsing as parsing
from gql_feed.config import Settings
from gql_feed.engine.cost import QueryCost
from gql_feed.engine.executable import build_schema
from gql_feed.engine.extensions import validation_rules
from gql_feed.engine.rules import ValidationTimeout, deadline
from gql_feed.engine.variables import holds_nul
from gql_feed.live.close_codes import CloseCode
from gql_feed.live.groups import Group
from gql_feed.transport.streams.single import SingleConnections
from gql_feed.transport.streams.single_stream import SingleStream
from tests.helpers.asgi import app_client, codes, create_post, gql, user_with_token
from tests.helpers.live_fakes import CLAIMS, TITLES, event, join, operations
from tests.helpers.server import LiveServer

SCHEMA = build_schema([])._schema
DEFAULTS = Settings(_env_file=None)  # type: ignore[call-arg]
COST = QueryCost({"perPage": DEFAULTS.max_per_page, "first": DEFAULTS.max_first})
# A cheap query from another client, sent while an attack runs, comes back within this.
RESPONSIVE_SECONDS = 2.0
# Validating a fan-out of 40 levels (2^40 spreads) finishes within this, in process.
LINEAR_SECONDS = 5.0
TYPENAME = {"data": {"__typename": "Query"}}


def fan_out(levels: int, leaf: str = "__typename") -> str:
    """`{ ...F0 }`, each fragment spreading the next twice: 2^levels spreads of `leaf`."""
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    return " ".join(["{ ...F0 }", *fragments, f"fragment F{levels} on Query {{ {leaf} }}"])


def validated_within(seconds: float, query: str) -> list[GraphQLError] | None:
    """The errors of validating `query` with every rule the server uses; None if that took
    longer than `seconds` (the thread is a daemon: a runaway one ends with the tests)."""
    document = parse(query, max_tokens=None)
    rules = [*specified_rules, *validation_rules(DEFAULTS)]
    found: list[list[GraphQLError]] = []
    thread = threading.Thread(
        target=lambda: found.append(validate(SCHEMA, document, rules)), daemon=True
    )
    thread.start()
    thread.join(seconds)
    return found[0] if found else None


async def cheap_query_latencies(
    server: LiveServer, attack: Callable[[], Awaitable[Any]]
) -> list[float]:
    """Run the attack; meanwhile send `{ __typename }` every 50 ms from another client."""
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=60) as http:
        attacking = asyncio.create_task(attack())
        await asyncio.sleep(0.05)
        while not attacking.done():
            started = time.monotonic()
            response = await http.post(server.graphql_url, json={"query": "{ __typename }"})
            latencies.append(time.monotonic() - started)
            assert response.json() == TYPENAME
            await asyncio.sleep(0.05)
        await attacking
    print("cheap query latencies:", [round(latency, 3) for latency in latencies])
    return latencies


# 1. Fragment fan-out.


def test_fragment_fan_out_validates_in_linear_time() -> None:
    errors = validated_within(LINEAR_SECONDS, fan_out(40))
    assert errors == [], "validating 40 levels of fan-out took too long, or failed"
    errors = validated_within(LINEAR_SECONDS, fan_out(40, "a: __typename"))
    assert errors is not None, "validating 40 levels of aliased fan-out took too long"
    limit = DEFAULTS.max_aliases
    assert [error.message for error in errors] == [f"{2**40} aliases found. Allowed: {limit}"]


SAMPLES = [
    "{ feed { edges { node { creator { id } } } } }",
    "{ feed { edges { node { id } } } }",
    "fragment F on Post { creator { id } } { feed { edges { node { ...F } } } }",
    "fragment F on Post { id } { feed { edges { node { ...F } } } }",
    "{ a: me { ...U } b: me { ...U } } fragment U on User { x: id y: id }",
    "{ a: me { ...U } } fragment U on User { x: id y: id z: id w: id }",
    "{ __schema { types { fields { type { name } } } } }",
    "{ __schema { types { ...T } } } fragment T on __Type { a: name b: name c: name d: name }",
    "query A { me { id } } query B { feed { edges { node { creator { id } } } } }",
    "{ me { ... on User { posts: id } } }",
    fan_out(6, "a: __typename"),
]


@pytest.mark.parametrize("query", SAMPLES)
def test_the_limits_count_as_strawberrys_did(query: str) -> None:
    """Same depth, same alias count, same messages as QueryDepthLimiter and
    MaxAliasesLimiter (small limits, so that some are reached)."""
    settings = DEFAULTS.model_copy(update={"max_query_depth": 3, "max_aliases": 5})
    document = parse(query)
    ours = {error.message for error in validate(SCHEMA, document, validation_rules(settings))}
    theirs_rules = [
        *QueryDepthLimiter(max_depth=3).validation_rules,
        *MaxAliasesLimiter(max_alias_count=5).validation_rules,
    ]
    theirs = {error.message for error in validate(SCHEMA, document, theirs_rules)}
    assert ours == theirs


@pytest.mark.timeout(300)
async def test_server_stays_responsive_during_fragment_fan_out(live_server: LiveServer) -> None:
    answers: list[dict[str, Any]] = []

    async def attack() -> None:
        async with httpx.AsyncClient(timeout=240) as http:

            async def one(index: int) -> None:
                leaf = "a: __typename" if index % 2 else "__typename"
                query = fan_out(20, leaf) + f" # {index}"  # a new text: no cache helps
                response = await http.post(live_server.graphql_url, json={"query": query})
                answers.append(response.json())

            await asyncio.gather(*(one(index) for index in range(4)))

    latencies = await cheap_query_latencies(live_server, attack)
    assert latencies, "the attack ended before any cheap query was sent"
    assert max(latencies) < RESPONSIVE_SECONDS, latencies
    # Refused either way: for its aliases, or for its cost (fragments count where spread).
    assert [codes(answer) for answer in answers] == [["GRAPHQL_VALIDATION_FAILED"]] * 4
    messages = sorted(answer["errors"][0]["message"] for answer in answers)
    assert all(f"{2**20} aliases found" in message for message in messages[:2]), messages
    assert all(f"The query costs {2**20}" in message for message in messages[2:]), messages


async def test_validation_past_its_time_is_refused(settings: Settings) -> None:
    """400 `me { id }` cost graphql-core's overlapping-fields rule seconds of pairs."""
    async with app_client(settings, max_validation_seconds=0.05) as http:
        body = await gql(http, "{" + " me { id }" * 400 + " }")
        assert body.get("data") is None, body
        assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"], body
        assert "more than 0.05 s to validate" in body["errors"][0]["message"]
        assert await gql(http, "{ __typename }") == TYPENAME


def test_an_interruption_swallowed_inside_the_block_still_refuses_it() -> None:
    """A collection can run a weak reference's callback just as the interruption lands:
    the callback swallows it and validation goes on to the end. Past its deadline all
    the same, so the block is refused on leaving it."""

    def validate_swallowing_the_interruption() -> bool:
        with deadline(0.01):
            while True:
                try:
                    time.sleep(0.001)
                except ValidationTimeout:
                    return True  # as a callback's caller does, then goes on to the end

    with pytest.raises(ValidationTimeout):
        validate_swallowing_the_interruption()


async def test_server_stays_responsive_during_quadratic_documents(
    live_server: LiveServer,
) -> None:
    """Under 2 KB each, so no size rule sends them off the loop."""

    async def attack() -> None:
        async with httpx.AsyncClient(timeout=120) as http:
            queries = ["{" + " me{id}" * 280 + f"}} #{index}" for index in range(4)]
            assert all(len(query) < 2048 for query in queries)
            responses = await asyncio.gather(
                *(http.post(live_server.graphql_url, json={"query": q}) for q in queries)
            )
            for response in responses:
                body = response.json()
                assert body.get("data") is None, body
                assert codes(body), body

    latencies = await cheap_query_latencies(live_server, attack)
    assert latencies, "the attack ended before any cheap query was sent"
    assert max(latencies) < RESPONSIVE_SECONDS, latencies


# 2. The cost reads coerced values.

SELECTION = "{ posts { id content creator { name } } }"
FLOAT_PAGES = (
    "query($n: Int!) { "
    + " ".join(f"a{i}: posts(perPage: $n) {SELECTION}" for i in range(30))
    + " }"
)
FLOAT_FEED = (
    "query($f: Int!) { "
    + " ".join(f"a{i}: feed(first: $f) {{ edges {{ node {{ id content }} }} }}" for i in range(30))
    + " }"
)


def test_a_float_for_an_int_costs_what_the_int_costs() -> None:
    for query, name, size in ((FLOAT_PAGES, "n", 50), (FLOAT_FEED, "f", 100)):
        exact = COST.of(SCHEMA, parse(query), None, {name: size})
        assert exact > DEFAULTS.max_query_cost
        assert COST.of(SCHEMA, parse(query), None, {name: float(size)}) == exact
        assert COST.of_query(SCHEMA, query, parse(query), None, {name: float(size)}) == exact


async def test_a_float_size_does_not_get_around_the_cost(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    await create_post(client, token)
    for query, variables in ((FLOAT_PAGES, {"n": 50.0}), (FLOAT_FEED, {"f": 100.0})):
        body = await gql(client, query, variables, token=token)
        assert body.get("data") is None, str(body)[:300]
        assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"], str(body)[:300]
        assert body["errors"][0]["extensions"]["cost"] > DEFAULTS.max_query_cost


# 3. Variables.


async def test_undeclared_variables_are_dropped_before_any_check(
    client: httpx.AsyncClient,
) -> None:
    # graphql-core ignores them, so nothing looks at them: not even for a NUL.
    assert await gql(client, "{ __typename }", {"junk": "a\x00b", "more": [[]] * 1000}) == (
        TYPENAME
    )
    token, _ = await user_with_token(client)
    mutation = "mutation($s: String!) { updateStatus(status: $s) { id } }"
    body = await gql(client, mutation, {"s": "a\x00b", "junk": "c\x00d"}, token=token)
    assert codes(body) == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["extensions"]["fields"] == {"$s": body["errors"][0]["message"]}


def test_the_nul_walk_stops_at_its_budget_and_needs_no_recursion() -> None:
    many = [[] for _ in range(100_000)]
    assert holds_nul(many, 10_000) is None
    assert holds_nul(many) is False
    nested: list[Any] = ["\x00"]
    for _ in range(100_000):
        nested = [nested]
    assert holds_nul(nested) is True


@pytest.mark.timeout(180)
async def test_server_stays_responsive_during_megabytes_of_variables(
    live_server: LiveServer,
) -> None:
    # Encoded up front, so the attacking client's own work does not stall the measuring one.
    bodies = [
        orjson.dumps({"query": "{ __typename }", "variables": {"junk": [[]] * 1_700_000}}),
        orjson.dumps({"query": "{ __typename }", "variables": {"junk": [0] * 2_500_000}}),
    ]
    assert all(len(body) > 4_000_000 for body in bodies)

    async def attack() -> None:
        async with httpx.AsyncClient(timeout=120) as http:
            headers = {"content-type": "application/json"}
            responses = await asyncio.gather(
                *(http.post(live_server.graphql_url, content=b, headers=headers) for b in bodies)
            )
            assert [response.json() for response in responses] == [TYPENAME] * len(bodies)

    latencies = await cheap_query_latencies(live_server, attack)
    assert latencies, "the attack ended before any cheap query was sent"
    assert max(latencies) < RESPONSIVE_SECONDS, latencies


# 9. Smaller points.


async def raw_get(server: LiveServer, target: str) -> tuple[int, dict[str, str], bytes]:
    """A GET sent as raw bytes: httpx refuses to build URLs this long. The server may
    answer and close before the URL is all sent: what came before a reset counts."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        f"GET {target} HTTP/1.1\r\nhost: x\r\napollo-require-preflight: 1\r\n"
        "connection: close\r\n\r\n".encode()
    )
    answer = b""
    try:
        await writer.drain()
        while chunk := await asyncio.wait_for(reader.read(65536), 30):
            answer += chunk
    except ConnectionResetError:
        pass
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, body


async def test_a_get_too_long_to_read_gets_a_json_error(live_server: LiveServer) -> None:
    status, _, body = await raw_get(live_server, "/graphql?query={__typename}%23" + "x" * 60_000)
    assert status == 200
    assert orjson.loads(body) == TYPENAME
    for size in (70_000, 300_000):
        status, headers, body = await raw_get(live_server, "/graphql?query=%7B" + "x" * size)
        assert status == 414, (status, body[:200])
        assert headers["content-type"] == "application/json"
        answer = orjson.loads(body)
        assert codes(answer) == ["PAYLOAD_TOO_LARGE"]
        assert "POST" in answer["errors"][0]["message"]
    # The server still answers.
    async with httpx.AsyncClient() as http:
        response = await http.post(live_server.graphql_url, json={"query": "{ __typename }"})
        assert response.json() == TYPENAME


async def test_one_schema_introspection_per_request(client: httpx.AsyncClient) -> None:
    one = await gql(client, "{ __schema { queryType { name } } }")
    assert one == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
    aliased = "{ " + " ".join(f"s{i}: __schema {{ types {{ name }} }}" for i in range(16)) + " }"
    for query in (aliased, fan_out(4, "__schema { queryType { name } }")):
        body = await gql(client, query)
        assert body.get("data") is None, str(body)[:300]
        assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"], body
        assert "__schema" in body["errors"][0]["message"]


async def test_the_response_cache_reuses_the_parse_of_execution(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A big document is parsed once, off the loop, and that parse serves the response
    cache's key, the cost and execution alike; the same text again parses nothing."""
    parses: list[str] = []
    real_parse = parsing.parse

    def counted(text: str, **kwargs: Any) -> Any:
        parses.append(text)
        return real_parse(text, **kwargs)

    monkeypatch.setattr(parsing, "parse", counted)
    async with app_client(settings) as http:
        token, _ = await user_with_token(http)
        await create_post(http, token)
        big = "{ posts { posts { title } } }\n#" + "x" * 6_000
        first = await gql(http, big, token=token)
        assert "errors" not in first, first
        assert parses.count(big) == 1
        assert await gql(http, big, token=token) == first
        assert parses.count(big) == 1


async def test_a_groups_pending_events_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A group whose executions never finish: past the bound its members are ended as
    slow consumers (to resume with `after:`), and nothing more is queued."""
    ops = operations()
    ops.groups.buffer_limit = 5
    slow, _ = await join(ops, "slow", TITLES)
    group = slow.subscriber.group
    never = asyncio.Event()

    def render(self: Group, root: Any) -> Any:
        async def waits() -> str:
            await never.wait()
            return ""

        return waits()

    monkeypatch.setattr(Group, "render", render)
    for event_id in range(1, 50):
        await ops.groups.deliver(event(event_id))
        assert len(group.backlog or ()) <= 5
    assert slow.subscriber.connection.closing  # its transport then leaves the group


class FakeStream:
    """What SingleConnections reads of an open stream's connection."""

    def __init__(self) -> None:
        self.closing = False
        self.closed_with: tuple[int, str] | None = None

    def close(self, code: int, reason: str) -> None:
        self.closing = True
        self.closed_with = (code, reason)


async def test_a_single_streams_commands_take_one_task_and_are_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connections = SingleConnections.__new__(SingleConnections)
    connections._open = {}
    connections._tasks = set()
    stream = SingleStream("token", CLAIMS, lambda _: None)
    stream.connection = FakeStream()  # type: ignore[assignment]
    connections._open["token"] = stream
    gate = asyncio.Event()
    started: list[str] = []

    async def start(self: Any, stream: Any, command: dict[str, Any]) -> None:
        started.append(command["start"])
        await gate.wait()

    monkeypatch.setattr(SingleConnections, "_start", start)
    command = SimpleNamespace(encode=lambda n: orjson.dumps({"start": str(n)}))
    for n in range(600):
        connections.deliver("token", [command.encode(n)])
    await asyncio.sleep(0)
    assert len(connections._tasks) == 1, "one task runs a stream's commands in order"
    assert started == ["0"]
    gate.set()
    for _ in range(100):
        if len(started) == 600:
            break
        await asyncio.sleep(0.01)
    assert started == [str(n) for n in range(600)]
    gate.clear()
    connections.deliver("token", [command.encode(n) for n in range(2_000)])
    assert stream.connection.closed_with is not None
    assert stream.connection.closed_with[0] == CloseCode.TRY_AGAIN_LATER
