"""Content negotiation at /graphql: the Accept header as RFC 9110 and GraphQL over HTTP
read it. Queries and mutations are JSON whenever a JSON type is accepted; streams are for
subscriptions; `application/graphql-response+json` has the spec's statuses and shapes."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from gql_feed.transport.negotiation import (
    EVENT_STREAM,
    GRAPHQL_RESPONSE_JSON,
    JSON,
    MULTIPART,
    json_type,
    parse_accept,
    stream_type,
)
from tests.helpers.asgi import PASSWORD, codes, signup, user_with_token
from tests.helpers.server import LiveServer

URQL = (
    "application/graphql-response+json, application/graphql+json, application/json, "
    "text/event-stream, multipart/mixed"
)
APOLLO_SUBSCRIPTION = 'multipart/mixed;boundary="graphql";subscriptionSpec=1.0,application/json'
GRAPHQL_SSE = "text/event-stream"


@pytest.mark.parametrize(
    ("accept", "as_json", "as_stream"),
    [
        (None, JSON, None),
        ("*/*", JSON, None),  # a wildcard never opens a stream, and */* means JSON
        ("application/*", JSON, None),
        (URQL, GRAPHQL_RESPONSE_JSON, EVENT_STREAM),
        ("text/event-stream;q=0, application/json", JSON, None),  # q=0 is a refusal
        ("application/json;q=0.9, application/graphql-response+json", GRAPHQL_RESPONSE_JSON, None),
        ("application/graphql-response+json;q=0.5, application/json", JSON, None),
        ("*/*;q=0.1, application/json;q=0", GRAPHQL_RESPONSE_JSON, None),
        (APOLLO_SUBSCRIPTION, JSON, MULTIPART),
        ("multipart/mixed;deferSpec=20220824, application/json", JSON, None),
        ("multipart/mixed", None, None),  # not Apollo's protocol: no heartbeat-less multipart
        (GRAPHQL_SSE, None, EVENT_STREAM),
        ('multipart/mixed;subscriptionSpec="1.0";q=0.5, text/event-stream;q=0.4', None, MULTIPART),
        ("text/html", None, None),
        (
            'multipart/mixed;boundary="a,b";subscriptionSpec="1.0", application/json',
            JSON,
            MULTIPART,
        ),
        ("text/event-stream, " * 300 + "application/json", JSON, None),  # too long: ignored
        ("nonsense, ;;, /, application/json", JSON, None),
    ],
)
def test_accept_is_read_as_rfc_9110_says(
    accept: str | None, as_json: str | None, as_stream: str | None
) -> None:
    ranges = parse_accept(accept)
    assert (json_type(ranges), stream_type(ranges)) == (as_json, as_stream)


async def post(
    http: httpx.AsyncClient, accept: str | None, query: str, variables: Any = None, **more: str
) -> httpx.Response:
    headers = {"accept": accept} if accept else {}
    headers.update(more)
    return await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )


async def test_urql_defaults_log_in_and_read(client: httpx.AsyncClient) -> None:
    """urql's Accept on every operation: an anonymous login and a query are plain JSON."""
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    await signup(client, email)
    login = await post(
        client,
        URQL,
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        {"e": email, "p": PASSWORD},
    )
    assert login.status_code == 200, login.text
    assert login.headers["content-type"].startswith(GRAPHQL_RESPONSE_JSON)
    token = login.json()["data"]["login"]["token"]
    me = await post(client, URQL, "{ me { name } }", authorization=f"Bearer {token}")
    assert me.json() == {"data": {"me": {"name": "Ann"}}}


async def test_q_zero_refuses_the_stream(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    answer = await post(
        client,
        "text/event-stream;q=0, application/json",
        "{ me { name } }",
        authorization=f"Bearer {token}",
    )
    assert answer.headers["content-type"].startswith(JSON)
    assert answer.json() == {"data": {"me": {"name": "Ann"}}}


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        ("{", None, "GRAPHQL_PARSE_FAILED"),
        ("{ noSuchField }", None, "GRAPHQL_VALIDATION_FAILED"),
        ("query($id: ID!) { post(id: $id) { id } }", {"id": None}, "GRAPHQL_VALIDATION_FAILED"),
    ],
)
async def test_request_errors_have_no_data(
    client: httpx.AsyncClient, query: str, variables: Any, code: str
) -> None:
    """400 under application/graphql-response+json, 200 under application/json; never `data`."""
    for accept, status, media_type in (
        (GRAPHQL_RESPONSE_JSON, 400, GRAPHQL_RESPONSE_JSON),
        (JSON, 200, JSON),
        (None, 200, JSON),
    ):
        answer = await post(client, accept, query, variables)
        assert answer.status_code == status, (accept, answer.text)
        assert answer.headers["content-type"].startswith(media_type)
        body = answer.json()
        assert "data" not in body, body
        assert codes(body)[:1] == [code], body


async def test_field_errors_keep_data_and_200(client: httpx.AsyncClient) -> None:
    answer = await post(client, GRAPHQL_RESPONSE_JSON, "{ me { id } }")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(GRAPHQL_RESPONSE_JSON)
    body = answer.json()
    assert body["data"] is None
    assert codes(body) == ["UNAUTHENTICATED"]


async def test_a_get_query_negotiates_too(client: httpx.AsyncClient) -> None:
    answer = await client.get(
        "/graphql",
        params={"query": "{ __typename }"},
        headers={"accept": URQL, "apollo-require-preflight": "true"},
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(GRAPHQL_RESPONSE_JSON)
    assert answer.json() == {"data": {"__typename": "Query"}}


async def test_subscriptions_stream_for_urqls_accept(live_server: LiveServer) -> None:
    """The same Accept that gets JSON for a query gets Server-Sent Events for a subscription,
    and a stream-only Accept still gets the stream's own answer to a query."""
    token, _ = live_server.signup_and_login()
    headers = {"authorization": f"Bearer {token}", "accept": URQL}
    async with (
        httpx.AsyncClient(timeout=10) as http,
        http.stream(
            "POST",
            live_server.graphql_url,
            json={"query": "subscription { postEvents { id } }"},
            headers=headers,
        ) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith(EVENT_STREAM)
    async with httpx.AsyncClient(timeout=10) as http:
        only_stream = await http.post(
            live_server.graphql_url,
            json={"query": "{ me { id } }"},
            headers={**headers, "accept": GRAPHQL_SSE},
        )
    assert only_stream.headers["content-type"].startswith(EVENT_STREAM)
    assert b"Only subscriptions stream" in only_stream.content


async def test_unreadable_operations_with_both_accepted_are_json_errors(
    client: httpx.AsyncClient,
) -> None:
    """When the operation decides between a stream and JSON but cannot be read, the JSON
    view says why: a 400 with a code, never a crash."""
    headers = {"accept": URQL, "content-type": "application/json"}
    for body, code in (
        (b"{not json", "BAD_REQUEST"),
        (b'{"query": "subscription {"}', "GRAPHQL_PARSE_FAILED"),
        (b'{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "00"}}}', None),
    ):
        answer = await client.post("/graphql", content=body, headers=headers)
        assert answer.status_code in (200, 400, 404), (body, answer.text)
        assert answer.headers["content-type"].startswith("application/")
        errors = answer.json()["errors"]
        assert errors, answer.text
        if code is not None:
            assert errors[0]["extensions"]["code"] == code, answer.text
