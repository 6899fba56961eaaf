"""Hostile HTTP requests: huge, deep, aliased, batched or malformed operations, and
forged tokens. Each gets a clear error with its code, and nothing runs half-way."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt

from gql_feed.config import Settings
from tests.helpers.asgi import app_client, codes, create_post, gql, user_with_token
from tests.helpers.server import TEST_SECRET, LiveServer

DEEPEST_REAL_QUERY = "{ feed { edges { node { creator { id } } } } }"
STATUS = "{ me { status } }"


def validation_failed(body: dict[str, Any], *words: str) -> None:
    """Refused before execution: no data at all, one validation error naming the limit."""
    assert "data" not in body, body  # a request error: nothing executed
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"], body
    message = body["errors"][0]["message"]
    assert all(word in message for word in words), message


# Query limits.


async def test_query_depth_is_limited(settings: Settings) -> None:
    async with app_client(settings, max_query_depth=3) as http:
        token, _ = await user_with_token(http)
        await create_post(http, token)
        shallow = await gql(http, "{ feed { edges { cursor } } }", token=token)
        assert "errors" not in shallow, shallow
        deep = await gql(http, DEEPEST_REAL_QUERY, token=token)
        validation_failed(deep, "maximum operation depth of 3")
        # Fragments do not hide depth.
        spread = await gql(
            http,
            "fragment F on Post { creator { id } } { feed { edges { node { ...F } } } }",
            token=token,
        )
        validation_failed(spread, "maximum operation depth of 3")


async def test_default_limits_allow_every_real_query(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    await create_post(client, token)
    body = await gql(client, DEEPEST_REAL_QUERY, token=token)
    assert "errors" not in body, body
    assert body["data"]["feed"]["edges"][0]["node"]["creator"]["id"]


async def test_cyclic_introspection_is_refused(client: httpx.AsyncClient) -> None:
    """The depth limit does not count introspection; graphql-core's own rule stops cycles."""
    level = "fields { type { ofType { ofType { "
    query = "{ __schema { types { " + level * 3 + "name" + " } } } }" * 3 + " } } }"
    validation_failed(await gql(client, query), "introspection depth")


async def test_aliases_are_limited(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    limit = Settings.model_fields["max_aliases"].default
    allowed = "{ " + " ".join(f"a{i}: __typename" for i in range(limit)) + " }"
    assert "errors" not in await gql(client, allowed)
    too_many = "{ " + " ".join(f"a{i}: __typename" for i in range(limit + 1)) + " }"
    validation_failed(await gql(client, too_many), f"{limit + 1} aliases", f"Allowed: {limit}")
    # Aliases inside fragments count, and an aliased mutation flood runs not even once.
    fragment = "fragment F on User { " + " ".join(f"s{i}: status" for i in range(limit)) + " }"
    mutation = (
        'mutation { a: updateStatus(status: "flooded") { ...F } '
        'b: updateStatus(status: "flooded") { id } } ' + fragment
    )
    validation_failed(await gql(client, mutation, token=token), "aliases found")
    assert (await gql(client, STATUS, token=token))["data"]["me"]["status"] == "I am new!"


async def test_query_tokens_are_limited(client: httpx.AsyncClient) -> None:
    limit = Settings.model_fields["max_query_tokens"].default
    # Six tokens each ("...", "on", "Query", "{", "__typename", "}"), plus the outer braces.
    fragments = (limit - 2) // 6
    allowed = "{ " + "... on Query { __typename } " * fragments + "}"
    assert "errors" not in await gql(client, allowed)
    body = await gql(client, "{ " + "... on Query { __typename } " * (fragments + 1) + "}")
    validation_failed(body, f"more than {limit} tokens")


async def test_field_floods_are_refused(client: httpx.AsyncClient) -> None:
    """Within the token limit, a field repeated a thousand times would cost a million
    comparisons to check; graphql-core gives up early, and says so."""
    validation_failed(await gql(client, "{ " + "__typename " * 1500 + "}"), "too complex")


async def test_syntax_errors_have_their_code(client: httpx.AsyncClient) -> None:
    for query in ("{ me {", "query {", "}", "{ me { id } } garbage"):
        body = await gql(client, query)
        assert "data" not in body, body
        assert codes(body) == ["GRAPHQL_PARSE_FAILED"], (query, body)
        assert body["errors"][0]["message"].startswith("Syntax Error")


async def test_list_sizes_are_bounded(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    max_per_page = Settings.model_fields["max_per_page"].default
    max_first = Settings.model_fields["max_first"].default
    for query, field in (
        (f"{{ posts(perPage: {max_per_page + 1}) {{ totalPosts }} }}", "perPage"),
        ("{ posts(perPage: 0) { totalPosts } }", "perPage"),
        ("{ posts(page: 0) { totalPosts } }", "page"),
        (f"{{ feed(first: {max_first + 1}) {{ edges {{ cursor }} }} }}", "first"),
        ("{ feed(first: -1) { edges { cursor } } }", "first"),
        ('{ feed(after: "not a cursor") { edges { cursor } } }', "after"),
    ):
        body = await gql(client, query, token=token)
        assert codes(body) == ["BAD_USER_INPUT"], (query, body)
        assert field in body["errors"][0]["extensions"]["fields"], body
    for query in (
        f"{{ posts(perPage: {max_per_page}) {{ totalPosts }} }}",
        f"{{ feed(first: {max_first}) {{ edges {{ cursor }} }} }}",
    ):
        assert "errors" not in await gql(client, query, token=token)


# Batching.


async def test_batches_run_each_operation(client: httpx.AsyncClient) -> None:
    token, user_id = await user_with_token(client)
    batch = [
        {"query": "{ me { id } }"},
        {"query": "{ nope }"},
        {"query": 'mutation { updateStatus(status: "Batched") { status } }'},
    ]
    response = await client.post(
        "/graphql", json=batch, headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    me, bad, update = response.json()
    assert me == {"data": {"me": {"id": user_id}}}
    assert codes(bad) == ["GRAPHQL_VALIDATION_FAILED"]
    assert update == {"data": {"updateStatus": {"status": "Batched"}}}


async def test_batches_are_bounded(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    limit = Settings.model_fields["max_batch_operations"].default
    batch = [
        {"query": f'mutation {{ updateStatus(status: "s{i}") {{ id }} }}'} for i in range(limit + 1)
    ]
    response = await client.post(
        "/graphql", json=batch, headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 400
    assert codes(response.json()) == ["BAD_REQUEST"]
    assert "Too many operations" in response.json()["errors"][0]["message"]
    # Refused as a whole: not one of them ran.
    assert (await gql(client, STATUS, token=token))["data"]["me"]["status"] == "I am new!"
    response = await client.post(
        "/graphql", json=batch[:limit], headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert len(response.json()) == limit


# Request body size.


async def test_declared_oversized_body_is_refused_unread(settings: Settings) -> None:
    async with app_client(settings, max_request_bytes=1000) as http:
        response = await http.post(
            "/graphql",
            content=b'{"query": "{ __typename }"}',
            headers={"content-type": "application/json", "content-length": "1001"},
        )
        assert response.status_code == 413
        assert codes(response.json()) == ["PAYLOAD_TOO_LARGE"]
        assert "1000 bytes" in response.json()["errors"][0]["message"]


async def test_streamed_body_without_length_is_counted(settings: Settings) -> None:
    async with app_client(settings, max_request_bytes=1000) as http:

        async def chunks(total: int) -> AsyncIterator[bytes]:
            body = ('{"query": "{ __typename }", "pad": "' + "x" * total + '"}').encode()
            for start in range(0, len(body), 100):
                yield body[start : start + 100]

        response = await http.post(
            "/graphql", content=chunks(2000), headers={"content-type": "application/json"}
        )
        assert "content-length" not in response.request.headers
        assert response.status_code == 413
        assert codes(response.json()) == ["PAYLOAD_TOO_LARGE"]
        # A body under the limit, streamed the same way, is served.
        response = await http.post(
            "/graphql", content=chunks(500), headers={"content-type": "application/json"}
        )
        assert response.status_code == 200
        assert response.json() == {"data": {"__typename": "Query"}}


async def test_oversized_upload_leaves_nothing_behind(settings: Settings) -> None:
    async with app_client(settings, max_request_bytes=20_000) as http:
        token, _ = await user_with_token(http)
        directory = http.app.state.services.posts.images.directory  # type: ignore[attr-defined]
        before = sorted(path.name for path in directory.iterdir())
        body = await create_post(http, token, image=b"\x89PNG" + b"\0" * 30_000)
        assert codes(body) == ["PAYLOAD_TOO_LARGE"]
        assert sorted(path.name for path in directory.iterdir()) == before
        total = await gql(http, "{ posts { totalPosts } }", token=token)
        assert total["data"]["posts"]["totalPosts"] == 0


def test_real_server_refuses_big_bodies_and_stays_up(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory(GQL_FEED_MAX_REQUEST_BYTES="5000")

    def chunked(size: int) -> Any:
        yield b'{"query": "{ __typename }", "pad": "'
        for _ in range(size // 1000):
            yield b"x" * 1000
        yield b'"}'

    with httpx.Client(timeout=10) as http:
        response = http.post(
            server.graphql_url,
            content=chunked(50_000),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 413
        assert codes(response.json()) == ["PAYLOAD_TOO_LARGE"]
        response = http.post(
            server.graphql_url, json={"query": "{ __typename }", "pad": "x" * 9000}
        )
        assert response.status_code == 413
        assert codes(response.json()) == ["PAYLOAD_TOO_LARGE"]
        response = http.post(server.graphql_url, json={"query": "{ __typename }"})
        assert response.json() == {"data": {"__typename": "Query"}}
        assert http.get(f"{server.url}/health").status_code == 200


# Uploads where no file was sent.


async def test_an_upload_must_be_a_file(client: httpx.AsyncClient) -> None:
    """The Upload scalar accepts any JSON value; only a multipart file part is an image."""
    token, _ = await user_with_token(client)
    for image in ("not a file", 12, {"read": "x"}, ["a"]):
        body = await gql(
            client,
            "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }",
            {"i": {"title": "No file", "content": "Nothing here", "image": image}},
            token,
        )
        assert codes(body) == ["BAD_USER_INPUT"], (image, body)
        assert "image" in body["errors"][0]["extensions"]["fields"]
    literal = 'mutation { createPost(input: {title: "t1", content: "c1", image: "x"}) { id } }'
    assert codes(await gql(client, literal, token=token)) == ["BAD_USER_INPUT"]
    total = await gql(client, "{ posts { totalPosts } }", token=token)
    assert total["data"]["posts"]["totalPosts"] == 0


# Tokens: more forgeries than tests/services/test_accounts.py covers.


async def test_more_bad_tokens_are_unauthenticated(client: httpx.AsyncClient) -> None:
    _, user_id = await user_with_token(client)
    now = datetime.now(UTC)
    good = {"sub": user_id, "iss": "gql_feed", "aud": "gql_feed", "exp": now + timedelta(hours=1)}

    def signed(**changes: object) -> str:
        claims = {key: value for key, value in {**good, **changes}.items() if value is not None}
        return jwt.encode(claims, TEST_SECRET, algorithm="HS256")

    tokens = {
        "no subject": signed(sub=None),
        "no expiry": signed(exp=None),
        "no issuer": signed(iss=None),
        "no audience": signed(aud=None),
        "subject not a number": signed(sub="ann"),
        "expiry not a time": signed(exp="tomorrow"),
        "not yet valid": signed(nbf=now + timedelta(hours=1)),
        "huge": "a" * 100_000,
        "two tokens": f"{signed()} {signed()}",
        "signature of another token": ".".join(
            [*signed().split(".")[:2], signed(sub="0").split(".")[2]]
        ),
    }
    for name, token in tokens.items():
        body = await gql(client, "{ me { id } }", token=token)
        assert codes(body) == ["UNAUTHENTICATED"], name
    for header in ("Bearer", "Bearer    ", "Token abc", f"Basic {signed()}"):
        response = await client.post(
            "/graphql", json={"query": "{ me { id } }"}, headers={"authorization": header}
        )
        assert codes(response.json()) == ["UNAUTHENTICATED"], header
    # A bad token fails only what needs a login: logging in again still works.
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    body = await gql(
        client,
        "mutation($i: SignupInput!) { signup(input: $i) { id } }",
        {"i": {"email": email, "name": "Bea", "password": "correct horse battery"}},
        "garbage",
    )
    assert "errors" not in body, body


async def test_signed_token_for_no_user_is_unauthenticated(client: httpx.AsyncClient) -> None:
    exp = datetime.now(UTC) + timedelta(hours=1)
    for subject in ("999999", "-1", "9" * 30):
        token = jwt.encode(
            {"sub": subject, "iss": "gql_feed", "aud": "gql_feed", "exp": exp}, TEST_SECRET
        )
        assert codes(await gql(client, "{ me { id } }", token=token)) == ["UNAUTHENTICATED"]


# Malformed requests: answered as GraphQL errors too, never a 500.


async def test_malformed_bodies_are_bad_requests(client: httpx.AsyncClient) -> None:
    for body in (
        1,
        "query",
        [1],
        [None],
        [{"query": 1}],
        [{"query": "{ me { id } }", "variables": 1}],
    ):
        response = await client.post("/graphql", json=body)
        assert response.status_code == 400, (body, response.text)
        assert codes(response.json()) == ["BAD_REQUEST"], body


async def test_request_errors_are_graphql_json(client: httpx.AsyncClient) -> None:
    limit = Settings.model_fields["max_batch_operations"].default
    requests: list[dict[str, Any]] = [
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
        {"json": {"query": "{ __typename }", "variables": [1]}},
        {"json": {"variables": {}}},
        {"json": [{"query": "{ __typename }"}] * (limit + 1)},
    ]
    for kwargs in requests:
        response = await client.post("/graphql", **kwargs)
        assert response.status_code == 400
        assert codes(response.json()) == ["BAD_REQUEST"], kwargs


async def test_subscription_over_http_is_refused_clearly(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    body = await gql(client, "subscription { postEvents { id } }", token=token)
    assert codes(body) == ["BAD_REQUEST"], body
