"""Fuzzing a running server with operations generated from the schema (hypothesis-graphql),
valid and invalid, with random variables, and in batches.

Whatever arrives, the answer is never a 5xx, every GraphQL error carries a code, none is
INTERNAL_SERVER_ERROR, nothing unexpected reaches the server's log, and the server is
healthy afterwards. Example counts are bounded: the module takes under a minute on both
databases.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes

from gql_feed.engine.executable import build_schema
from tests.helpers.server import LiveServer
from tests.helpers.services import fresh_postgres_database

SCHEMA = build_schema([])._schema
SCALARS = {
    # Over JSON an Upload can only be a stand-in (the file is a multipart part).
    "Upload": st.one_of(
        st.text(max_size=20).map(nodes.String),
        st.integers().map(nodes.Int),
        st.booleans().map(nodes.Boolean),
    ),
}
FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Strings known to trip databases, encoders and parsers, mixed into the random ones.
NASTY = [
    "\x00",
    "title\x00with NUL",
    "\u202etxt.exe",
    "' OR 1=1 --",
    "%s%n%x",
    "<script>alert(1)</script>",
    "\U0001f600" * 10,
    "x" * 10_000,
    "\\",
    "🏳️‍🌈",
]
TEXT = st.text(max_size=40) | st.sampled_from(NASTY)
MAYBE_TEXT = st.none() | TEXT
# The seed posts' ids come first, so that updates reach real rows.
IDS = st.sampled_from(["1", "2", "3"]) | st.integers().map(str) | TEXT
INTS = st.integers(-5, 200) | st.integers()
# Operations that take variables, with values of roughly the right shape (so they get past
# coercion and into the services and the database) or of any shape at all.
WITH_VARIABLES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "mutation($i: SignupInput!) { signup(input: $i) { id name } }": st.fixed_dictionaries(
        {"i": st.fixed_dictionaries({"email": TEXT, "name": TEXT, "password": TEXT})}
    ),
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }": (
        st.fixed_dictionaries({"e": TEXT, "p": TEXT})
    ),
    "mutation($s: String!) { updateStatus(status: $s) { status } }": st.fixed_dictionaries(
        {"s": TEXT}
    ),
    "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }": st.fixed_dictionaries(
        {"i": st.fixed_dictionaries({"title": TEXT, "content": TEXT, "image": JSON})}
    ),
    "mutation($id: ID!, $i: UpdatePostInput!) { updatePost(id: $id, input: $i) { id title } }": (
        st.fixed_dictionaries(
            {"id": IDS, "i": st.fixed_dictionaries({"title": MAYBE_TEXT, "content": MAYBE_TEXT})}
        )
    ),
    "mutation($id: ID!) { deletePost(id: $id) }": st.fixed_dictionaries({"id": IDS}),
    "query($id: ID!) { post(id: $id) { id creator { name } } user(id: $id) { id } }": (
        st.fixed_dictionaries({"id": IDS})
    ),
    "query($p: Int!, $n: Int!) { posts(page: $p, perPage: $n) { totalPosts posts { id } } }": (
        st.fixed_dictionaries({"p": INTS, "n": INTS})
    ),
    "query($n: Int!, $a: String) { feed(first: $n, after: $a) { edges { cursor } } }": (
        st.fixed_dictionaries({"n": INTS, "a": MAYBE_TEXT})
    ),
}
ANY_VARIABLES = st.dictionaries(st.sampled_from(["i", "e", "p", "s", "id", "n", "a"]), JSON)


@st.composite
def operations_with_variables(draw: st.DrawFn) -> dict[str, Any]:
    query = draw(st.sampled_from(sorted(WITH_VARIABLES)))
    variables = draw(WITH_VARIABLES[query] | ANY_VARIABLES)
    return {"query": query, "variables": variables}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, httpx.Client]]:
    """A real server with some posts in it, and a logged-in client. PostgreSQL too: it
    refuses some text SQLite takes (NUL), which only a server on it can show."""
    with ExitStack() as stack:
        env = {}
        if request.param == "postgres":
            env["GQL_FEED_DATABASE_URL"] = stack.enter_context(fresh_postgres_database())
        server = LiveServer(tmp_path_factory.mktemp("fuzz"), env)
        server.start()
        stack.callback(server.stop)
        token, _ = server.signup_and_login(name="Fuzzer")
        for index in range(3):
            server.create_post(token, f"Seed post {index}")
        headers = {"authorization": f"Bearer {token}"}
        http = stack.enter_context(httpx.Client(base_url=server.url, headers=headers, timeout=30))
        yield server, http


def check(response: httpx.Response, sent: object) -> None:
    assert response.status_code < 500, (sent, response.status_code, response.text)
    if not response.headers.get("content-type", "").startswith("application/json"):
        return
    body = response.json()
    for result in body if isinstance(body, list) else [body]:
        for error in result.get("errors") or []:
            code = (error.get("extensions") or {}).get("code")
            assert code, (sent, error)
            assert code != "INTERNAL_SERVER_ERROR", (sent, error)


def post(http: httpx.Client, payload: object) -> None:
    check(http.post("/graphql", json=payload), payload)


@settings(FUZZ, max_examples=150)
@given(query=from_schema(SCHEMA, custom_scalars=SCALARS))
def test_valid_operations(target: tuple[LiveServer, httpx.Client], query: str) -> None:
    post(target[1], {"query": query})


@settings(FUZZ, max_examples=100)
@given(query=from_schema(SCHEMA, custom_scalars=SCALARS, mode=Mode.NEGATIVE))
def test_invalid_operations(target: tuple[LiveServer, httpx.Client], query: str) -> None:
    post(target[1], {"query": query})


UPDATE_STATUS = "mutation($s: String!) { updateStatus(status: $s) { status } }"


@settings(FUZZ, max_examples=150)
@given(payload=operations_with_variables())
@example(payload={"query": UPDATE_STATUS, "variables": {"s": "status\x00"}})
@example(payload={"query": UPDATE_STATUS, "variables": {"s": ["not", "a", "string"]}})
def test_random_variables(target: tuple[LiveServer, httpx.Client], payload: dict[str, Any]) -> None:
    post(target[1], payload)


@settings(FUZZ, max_examples=100)
@given(
    query=st.one_of(
        st.text(max_size=80), st.sampled_from(sorted(WITH_VARIABLES)).map(lambda q: q[:-3])
    ),
    operation_name=st.none() | st.text(max_size=10),
    extensions=st.none() | st.dictionaries(st.text(max_size=8), JSON, max_size=2),
)
def test_garbage_documents(
    target: tuple[LiveServer, httpx.Client],
    query: str,
    operation_name: str | None,
    extensions: dict[str, Any] | None,
) -> None:
    payload = {"query": query, "operationName": operation_name, "extensions": extensions}
    post(target[1], payload)


@settings(FUZZ, max_examples=25)
@given(
    batch=st.lists(
        st.one_of(
            from_schema(SCHEMA, custom_scalars=SCALARS, fields=["me", "posts", "feed", "post"]),
            from_schema(SCHEMA, custom_scalars=SCALARS, mode=Mode.NEGATIVE),
        ).map(lambda query: {"query": query}),
        min_size=1,
        max_size=12,
    )
)
def test_batches(target: tuple[LiveServer, httpx.Client], batch: list[dict[str, str]]) -> None:
    post(target[1], batch)


def test_server_is_healthy_afterwards(target: tuple[LiveServer, httpx.Client]) -> None:
    server, http = target
    assert http.get("/health").json() == {"status": "ok"}
    assert http.get("/ready").status_code == 200
    body = http.post("/graphql", json={"query": "{ me { name } }"}).json()
    assert body == {"data": {"me": {"name": "Fuzzer"}}}
    log = server.log()
    assert "Unexpected error" not in log, log[-4000:]
    assert "Traceback" not in log, log[-4000:]
