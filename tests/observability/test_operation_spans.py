"""One SERVER span per GraphQL operation, by the OpenTelemetry conventions for GraphQL
servers, on every transport: HTTP (POST, GET, a batch's each operation, multipart uploads),
both WebSocket subprotocols, SSE in both modes and Apollo multipart subscriptions.

Each test runs a real uvicorn server in this process, whose spans the `spans` fixture's
in-memory exporter catches. A subscription's span ends once it has joined its group, so
when its first event arrives the span is there to be read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLError
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from strawberry.extensions.tracing import OpenTelemetryExtension

from gql_feed.engine import tracing
from gql_feed.engine.errors import ErrorCodes
from gql_feed.engine.executable import build_schema
from gql_feed.engine.extensions import schema_extensions
from gql_feed.engine.phase_spans import PhaseSpans
from gql_feed.live.hooks import acts_while_executing
from tests.helpers.live import LEGACY_WS, TRANSPORT_WS, raw_client
from tests.helpers.services import fresh_postgres_database
from tests.helpers.streams import MULTIPART, SSE, TOKEN_HEADER, MultipartStream, SseStream
from tests.helpers.traced_server import (
    EVENTS,
    TracedServer,
    children_of,
    only_operation,
    server_spans,
    traced_server,
    traced_settings,
)

POSTS = "query Page { posts(perPage: 1) { totalPosts } }"
Serve = Callable[..., AbstractAsyncContextManager[TracedServer]]


@pytest.fixture
def serve(tmp_path: Path, spans: InMemorySpanExporter) -> Serve:
    """A traced server on SQLite with the settings a test names (made once tracing is on:
    the schema's tracing extension is chosen when the application is)."""

    def start(database_url: str | None = None, **settings: Any) -> Any:
        url = database_url or f"sqlite+aiosqlite:///{tmp_path / 'feed.db'}"
        return traced_server(traced_settings(url, tmp_path, **settings))

    return start


@pytest.fixture
async def server(serve: Serve) -> AsyncIterator[TracedServer]:
    async with serve() as running:
        yield running


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def names_under(spans: list[ReadableSpan], parent: ReadableSpan) -> set[str]:
    return {span.name for span in children_of(spans, parent)}


# HTTP: POST, GET, batches, multipart.


async def test_a_posted_query_is_one_server_span_with_its_steps_beneath(
    server: TracedServer, spans: InMemorySpanExporter
) -> None:
    token = await server.login()
    spans.clear()
    body = await server.graphql(POSTS, token=token, headers={"user-agent": "tracing-test/1"})
    assert "errors" not in body, body
    finished = list(spans.get_finished_spans())
    span = only_operation(finished, "query")
    assert span.name == "query"
    assert attributes(span) | {} == {
        **attributes(span),
        "graphql.operation.type": "query",
        "graphql.operation.name": "Page",
        "http.request.method": "POST",
        "url.path": "/graphql",
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "user_agent.original": "tracing-test/1",
    }
    assert "graphql.document" not in attributes(span)
    assert span.status.status_code is StatusCode.UNSET
    assert span.parent is None  # no traceparent: the operation starts the trace
    assert {"graphql.parse", "graphql.validate", "graphql.execute"} <= names_under(finished, span)


async def test_a_get_query_is_traced_with_its_method(
    server: TracedServer, spans: InMemorySpanExporter
) -> None:
    token = await server.login()
    spans.clear()
    response = await server.http.get(
        server.graphql_url,
        params={"query": POSTS},
        headers={"authorization": f"Bearer {token}", "apollo-require-preflight": "true"},
    )
    assert response.status_code == 200, response.text
    span = only_operation(spans.get_finished_spans(), "query")
    assert attributes(span)["http.request.method"] == "GET"
    assert attributes(span)["graphql.operation.name"] == "Page"


async def test_each_operation_of_a_batch_has_its_own_span(
    server: TracedServer, spans: InMemorySpanExporter
) -> None:
    token = await server.login()
    spans.clear()
    response = await server.http.post(
        server.graphql_url,
        json=[{"query": POSTS}, {"query": "query Me { me { name } }"}],
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    assert all("errors" not in answer for answer in response.json())
    names = sorted(
        attributes(span)["graphql.operation.name"]
        for span in server_spans(spans.get_finished_spans())
    )
    assert names == ["Me", "Page"]


async def test_a_multipart_upload_mutation_is_traced(
    server: TracedServer, spans: InMemorySpanExporter
) -> None:
    token = await server.login()
    spans.clear()
    body = await server.create_post(token, "Traced upload")
    assert "errors" not in body, body
    span = only_operation(spans.get_finished_spans(), "mutation")
    assert span.name == "mutation"
    assert attributes(span)["graphql.operation.name"] == "NewPost"
    assert attributes(span)["http.request.method"] == "POST"


@pytest.mark.postgres
async def test_database_statements_are_spans_under_the_operation(
    serve: Serve, postgres_url: str, spans: InMemorySpanExporter
) -> None:
    async with serve(postgres_url) as server:
        token = await server.login()
        spans.clear()
        body = await server.graphql(POSTS, token=token)
        assert "errors" not in body, body
        finished = list(spans.get_finished_spans())
    span = only_operation(finished, "query")
    (execution,) = [s for s in children_of(finished, span) if s.name == "graphql.execute"]
    statements = [s for s in children_of(finished, execution) if "db.system" in attributes(s)]
    assert statements, [s.name for s in finished]
    assert {attributes(s)["db.system"] for s in statements} == {"postgresql"}
    assert all(s.context.trace_id == span.context.trace_id for s in statements)  # type: ignore[union-attr]


# Errors, by the conventions' rules.


async def test_an_operation_answered_with_errors_ends_in_error(
    server: TracedServer, spans: InMemorySpanExporter
) -> None:
    body = await server.graphql("query Mine { me { name } }")  # no login
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    span = only_operation(spans.get_finished_spans(), "query")
    assert span.status.status_code is StatusCode.ERROR
    assert attributes(span)["error.type"] == "UNAUTHENTICATED"
    # A refusal of ours is an outcome, not an exception.
    assert not [event for event in span.events if event.name == "exception"]


def test_what_a_resolver_raised_unexpectedly_is_an_exception_event(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    """ErrorCodes sees the exception before it is masked as INTERNAL_SERVER_ERROR."""
    settings = traced_settings("sqlite+aiosqlite://", tmp_path)
    failure = GraphQLError("boom", original_error=RuntimeError("disk on fire"))
    with tracing.operation({"type": "http", "headers": []}, settings) as trace:
        (shown,) = ErrorCodes().process([failure])
        trace.fail([shown])
    (span,) = spans.get_finished_spans()
    assert attributes(span)["error.type"] == "INTERNAL_SERVER_ERROR"
    (event,) = [event for event in span.events if event.name == "exception"]
    assert (event.attributes or {})["exception.type"] == "RuntimeError"
    assert (event.attributes or {})["exception.message"] == "disk on fire"


async def test_an_invalid_document_ends_in_error_with_its_code(
    server: TracedServer, spans: InMemorySpanExporter
) -> None:
    body = await server.graphql("query Odd { nothingHere }")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    span = only_operation(spans.get_finished_spans(), "query")
    assert span.status.status_code is StatusCode.ERROR
    assert attributes(span)["error.type"] == "GRAPHQL_VALIDATION_FAILED"


async def test_a_refused_request_ends_in_error_with_its_code(
    server: TracedServer, spans: InMemorySpanExporter
) -> None:
    hashed = {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}
    response = await server.http.post(server.graphql_url, json={"extensions": hashed})
    code = response.json()["errors"][0]["extensions"]["code"]
    assert code == "PERSISTED_QUERY_NOT_FOUND"
    (span,) = server_spans(spans.get_finished_spans())
    assert span.name == "GraphQL Operation"  # no document: its type is unknown
    assert span.status.status_code is StatusCode.ERROR
    assert attributes(span)["error.type"] == code


async def test_a_document_that_does_not_parse_ends_in_error(
    server: TracedServer, spans: InMemorySpanExporter
) -> None:
    body = await server.graphql("query Broken {")
    code = body["errors"][0]["extensions"]["code"]
    (span,) = server_spans(spans.get_finished_spans())
    assert span.status.status_code is StatusCode.ERROR
    assert attributes(span)["error.type"] == code


# What the span shows of the document, by the settings.

SECRET_LOGIN = (
    'mutation SignIn { login(email: "a@b.example", password: "hunter2-secret") { token } }'
)


async def test_the_document_is_recorded_only_when_asked_and_without_literals(
    serve: Serve, spans: InMemorySpanExporter
) -> None:
    async with serve(trace_document=True) as server:
        await server.graphql(SECRET_LOGIN)
    span = only_operation(spans.get_finished_spans(), "mutation")
    document = attributes(span)["graphql.document"]
    assert "login(email: ?, password: ?)" in document
    assert "hunter2-secret" not in document
    assert "a@b.example" not in document
    assert span.name == "mutation"


async def test_no_document_is_recorded_by_default(
    server: TracedServer, spans: InMemorySpanExporter
) -> None:
    await server.graphql(SECRET_LOGIN)
    span = only_operation(spans.get_finished_spans(), "mutation")
    assert "graphql.document" not in attributes(span)
    assert not any("hunter2" in str(value) for value in attributes(span).values())


async def test_the_operation_name_joins_the_span_name_only_when_asked(
    serve: Serve, spans: InMemorySpanExporter
) -> None:
    async with serve(trace_operation_name=True) as server:
        await server.graphql(SECRET_LOGIN)
        await server.graphql('mutation { login(email: "a@b.example", password: "x") { token } }')
    names = sorted(span.name for span in server_spans(spans.get_finished_spans()))
    assert names == ["mutation", "mutation SignIn"]


# WebSocket: both subprotocols, queries, mutations and subscriptions alike.


@pytest.mark.parametrize("subprotocol", [TRANSPORT_WS, LEGACY_WS])
async def test_every_operation_over_a_websocket_is_traced(
    server: TracedServer, spans: InMemorySpanExporter, subprotocol: str
) -> None:
    token = await server.login()
    spans.clear()
    async with raw_client(server, subprotocol) as client:  # type: ignore[arg-type]
        ack = await client.init(token)
        assert ack["type"] == "connection_ack"
        await client.subscribe("feed", EVENTS)
        await client.subscribe("page", POSTS)
        page = await _answer(client, "page")
        assert "errors" not in page["payload"], page
        status = 'mutation Status { updateStatus(status: "tracing") { status } }'
        await client.subscribe("status", status)
        answer = await _answer(client, "status")
        assert "errors" not in answer["payload"], answer
        await server.create_post(token, "Seen live")
        event = await _answer(client, "feed")
        assert event["payload"]["data"]["postEvents"]["action"] == "CREATED"
    finished = list(spans.get_finished_spans())
    subscription = only_operation(finished, "subscription")
    assert subscription.name == "subscription"
    assert attributes(subscription)["graphql.operation.name"] == "Feed"
    assert attributes(subscription)["url.path"] == "/graphql"
    assert attributes(subscription)["url.scheme"] == "ws"
    over_ws = [s for s in finished if attributes(s).get("url.scheme") == "ws"]
    query = only_operation(over_ws, "query")
    assert attributes(query)["graphql.operation.name"] == "Page"
    assert "graphql.execute" in names_under(finished, query)
    mutation = only_operation(over_ws, "mutation")
    assert attributes(mutation)["graphql.operation.name"] == "Status"
    assert mutation.name == "mutation"


async def _answer(client: Any, op_id: str) -> dict[str, Any]:
    """The next result (or error) for `op_id`; others' results and completions pass by."""
    while True:
        message: dict[str, Any] = await client.receive()
        if message.get("id") == op_id and message["type"] != "complete":
            return message


@pytest.mark.parametrize("subprotocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_refused_subscription_over_a_websocket_ends_in_error(
    server: TracedServer, spans: InMemorySpanExporter, subprotocol: str
) -> None:
    token = await server.login()
    spans.clear()
    async with raw_client(server, subprotocol) as client:  # type: ignore[arg-type]
        await client.init(token)
        await client.subscribe("bad", 'subscription Bad { postEvents(after: "-1") { id } }')
        refusal = await _answer(client, "bad")
        assert refusal["type"] in ("error", "data"), refusal  # legacy: errors in a `data`
    span = only_operation(spans.get_finished_spans(), "subscription")
    assert span.status.status_code is StatusCode.ERROR
    assert attributes(span)["error.type"] == "BAD_USER_INPUT"


# SSE (both modes) and Apollo multipart subscriptions.


async def test_an_sse_subscription_span_ends_once_established(
    server: TracedServer, spans: InMemorySpanExporter
) -> None:
    token = await server.login()
    spans.clear()
    headers = {"accept": SSE, "authorization": f"Bearer {token}"}
    async with server.http.stream(
        "GET", server.graphql_url, params={"query": EVENTS}, headers=headers
    ) as response:
        stream = SseStream(response)
        await server.create_post(token, "Seen over SSE")
        event = await stream.next()
        assert event.event == "next", event
        # The stream is still open: its span ended when it was established.
        span = only_operation(spans.get_finished_spans(), "subscription")
    assert attributes(span)["http.request.method"] == "GET"
    assert attributes(span)["graphql.operation.name"] == "Feed"
    assert span.status.status_code is StatusCode.UNSET


async def test_a_refused_sse_subscription_ends_in_error(
    server: TracedServer, spans: InMemorySpanExporter
) -> None:
    response = await server.http.get(
        server.graphql_url, params={"query": EVENTS}, headers={"accept": SSE}
    )
    assert response.status_code == 401
    (span,) = server_spans(spans.get_finished_spans())
    assert span.status.status_code is StatusCode.ERROR
    assert attributes(span)["error.type"] == "UNAUTHENTICATED"


async def test_a_single_connection_sse_subscription_is_traced(
    server: TracedServer, spans: InMemorySpanExporter
) -> None:
    token = await server.login()
    auth = {"authorization": f"Bearer {token}"}
    reserved = await server.http.put(server.graphql_url, headers=auth)
    assert reserved.status_code == 201, reserved.text
    stream_token = reserved.text
    headers = {**auth, "accept": SSE, TOKEN_HEADER: stream_token}
    async with server.http.stream("GET", server.graphql_url, headers=headers) as response:
        stream = SseStream(response)
        spans.clear()
        started = await server.http.post(
            server.graphql_url,
            json={"query": EVENTS, "extensions": {"operationId": "one"}},
            headers={**auth, TOKEN_HEADER: stream_token},
        )
        assert started.status_code == 202, started.text
        span = only_operation(spans.get_finished_spans(), "subscription")
        await server.create_post(token, "Seen over one stream")
        assert (await stream.next()).event == "next"
    assert attributes(span)["graphql.operation.name"] == "Feed"
    assert attributes(span)["http.request.method"] == "POST"


async def test_a_multipart_subscription_is_traced(
    server: TracedServer, spans: InMemorySpanExporter
) -> None:
    token = await server.login()
    spans.clear()
    headers = {"accept": MULTIPART, "authorization": f"Bearer {token}"}
    async with server.http.stream(
        "POST", server.graphql_url, json={"query": EVENTS}, headers=headers
    ) as response:
        stream = MultipartStream(response)
        await server.create_post(token, "Seen over multipart")
        part = await stream.next_payload()
        assert "payload" in part, part
        span = only_operation(spans.get_finished_spans(), "subscription")
    assert attributes(span)["graphql.operation.name"] == "Feed"
    assert attributes(span)["http.request.method"] == "POST"


# Beside strawberry's own tracing extension.


async def test_strawberrys_own_tracing_extension_still_works_beside(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    """A user may add it: its spans come too, and the operation's own span is unchanged."""
    settings = traced_settings("sqlite+aiosqlite://", tmp_path)
    schema = build_schema([*schema_extensions(settings), OpenTelemetryExtension])
    with tracing.operation({"type": "http", "headers": []}, settings):
        result = await schema.execute("query Typename { __typename }")
    assert result.errors is None
    assert result.data == {"__typename": "Query"}
    finished = spans.get_finished_spans()
    operation = only_operation(
        [s for s in finished if "graphql.operation.type" in attributes(s)], "query"
    )
    assert attributes(operation)["graphql.operation.name"] == "Typename"
    assert "GraphQL Query: Typename" in {span.name for span in finished}


def test_live_events_run_no_extension_hooks_for_tracing(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    """The steps' spans come without an `on_execute` hook: each live event still runs its
    group's executor directly (`live.hooks`), tracing on or off."""
    settings = traced_settings("sqlite+aiosqlite://", tmp_path)
    extensions = schema_extensions(settings)
    assert PhaseSpans in extensions  # tracing is on (the fixture's provider)
    assert not acts_while_executing(build_schema(extensions))
