"""An incoming W3C trace context is continued: the operation's SERVER span is the child of
the `traceparent` its request carried (on a WebSocket, the upgrade request's, for every
operation of the socket), in the same trace, with the caller's `tracestate`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.helpers.live import LEGACY_WS, TRANSPORT_WS, raw_client
from tests.helpers.streams import MULTIPART, SSE, TOKEN_HEADER, MultipartStream, SseStream
from tests.helpers.traced_server import (
    EVENTS,
    TracedServer,
    only_operation,
    server_spans,
    traced_server,
    traced_settings,
)

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
PARENT_ID = 0x00F067AA0BA902B7
CALLER = {
    "traceparent": f"00-{TRACE_ID:032x}-{PARENT_ID:016x}-01",
    "tracestate": "caller=kept",
}
POSTS = "query Page { posts(perPage: 1) { totalPosts } }"


@pytest.fixture
async def server(tmp_path: Path, spans: InMemorySpanExporter) -> AsyncIterator[TracedServer]:
    settings = traced_settings(f"sqlite+aiosqlite:///{tmp_path / 'feed.db'}", tmp_path)
    async with traced_server(settings) as running:
        yield running


def assert_continued(span: ReadableSpan) -> None:
    assert span.context is not None
    assert span.parent is not None, "the operation started a trace of its own"
    assert span.parent.is_remote
    assert span.parent.span_id == PARENT_ID
    assert span.context.trace_id == TRACE_ID
    assert span.context.trace_state.get("caller") == "kept"


async def test_an_http_request_continues_its_callers_trace(
    server: TracedServer, spans: InMemorySpanExporter
) -> None:
    token = await server.login()
    spans.clear()
    body = await server.graphql(POSTS, token=token, headers=CALLER)
    assert "errors" not in body, body
    assert_continued(only_operation(spans.get_finished_spans(), "query"))


async def test_a_multipart_upload_continues_its_callers_trace(
    server: TracedServer, spans: InMemorySpanExporter
) -> None:
    token = await server.login()
    spans.clear()
    body = await server.create_post(token, "Traced from afar", headers=CALLER)
    assert "errors" not in body, body
    assert_continued(only_operation(spans.get_finished_spans(), "mutation"))


async def test_an_sse_subscription_continues_its_callers_trace(
    server: TracedServer, spans: InMemorySpanExporter
) -> None:
    token = await server.login()
    spans.clear()
    headers = {"accept": SSE, "authorization": f"Bearer {token}", **CALLER}
    async with server.http.stream(
        "GET", server.graphql_url, params={"query": EVENTS}, headers=headers
    ) as response:
        stream = SseStream(response)
        await server.create_post(token, "Seen over SSE")
        assert (await stream.next()).event == "next"
    assert_continued(only_operation(spans.get_finished_spans(), "subscription"))


async def test_a_single_connection_subscription_continues_its_callers_trace(
    server: TracedServer, spans: InMemorySpanExporter
) -> None:
    token = await server.login()
    auth = {"authorization": f"Bearer {token}"}
    reserved = await server.http.put(server.graphql_url, headers=auth)
    assert reserved.status_code == 201, reserved.text
    headers = {**auth, "accept": SSE, TOKEN_HEADER: reserved.text}
    async with server.http.stream("GET", server.graphql_url, headers=headers):
        spans.clear()
        started = await server.http.post(
            server.graphql_url,
            json={"query": EVENTS, "extensions": {"operationId": "one"}},
            headers={**auth, TOKEN_HEADER: reserved.text, **CALLER},
        )
        assert started.status_code == 202, started.text
    assert_continued(only_operation(spans.get_finished_spans(), "subscription"))


async def test_a_multipart_subscription_continues_its_callers_trace(
    server: TracedServer, spans: InMemorySpanExporter
) -> None:
    token = await server.login()
    spans.clear()
    headers = {"accept": MULTIPART, "authorization": f"Bearer {token}", **CALLER}
    async with server.http.stream(
        "POST", server.graphql_url, json={"query": EVENTS}, headers=headers
    ) as response:
        stream = MultipartStream(response)
        await server.create_post(token, "Seen over multipart")
        assert "payload" in await stream.next_payload()
    assert_continued(only_operation(spans.get_finished_spans(), "subscription"))


@pytest.mark.parametrize("subprotocol", [TRANSPORT_WS, LEGACY_WS])
async def test_every_operation_of_a_websocket_continues_the_upgrades_trace(
    server: TracedServer, spans: InMemorySpanExporter, subprotocol: str
) -> None:
    token = await server.login()
    spans.clear()
    async with raw_client(
        server,  # type: ignore[arg-type]
        subprotocol,
        additional_headers=CALLER,
    ) as client:
        await client.init(token)
        await client.subscribe("feed", EVENTS)
        await client.subscribe("page", POSTS)
        while (message := await client.receive())["id"] != "page":
            pass
        assert "errors" not in message["payload"], message
    finished = spans.get_finished_spans()
    assert_continued(only_operation(finished, "subscription"))
    assert_continued(only_operation(finished, "query"))


async def test_without_a_traceparent_each_operation_starts_a_trace(
    server: TracedServer, spans: InMemorySpanExporter
) -> None:
    token = await server.login()
    spans.clear()
    await server.graphql(POSTS, token=token)
    await server.graphql("query Me { me { name } }", token=token)
    first, second = server_spans(spans.get_finished_spans())
    assert first.parent is None
    assert second.parent is None
    assert first.context is not None
    assert second.context is not None
    assert first.context.trace_id != second.context.trace_id
