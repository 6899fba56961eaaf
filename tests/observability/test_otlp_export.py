"""A real `gql-feed serve` process exports its operation spans over OTLP/HTTP when, and
only when, the standard `OTEL_*` variables say so.

The collector is a small HTTP server in the test that decodes each protobuf
`ExportTraceServiceRequest`. The server process is stopped before the collector is read:
its shutdown flushes the batch processor, so everything it would ever send has been
sent by then, and nothing needs waiting for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.helpers.server import LiveServer

SERVER_KIND = Span.SpanKind.SPAN_KIND_SERVER


class Collector(ThreadingHTTPServer):
    """Keeps every export request it is sent, decoded, with the path it came to."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receive)
        self.requests: list[tuple[str, ExportTraceServiceRequest]] = []
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def spans(self) -> list[tuple[dict[str, Any], Span]]:
        """(resource attributes, span) for every span received."""
        with self.lock:
            requests = list(self.requests)
        found = []
        for _, request in requests:
            for resource_spans in request.resource_spans:
                resource = values(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    found.extend((resource, span) for span in scope_spans.spans)
        return found


class _Receive(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self.server.lock:
            self.server.requests.append((self.path, request))
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def values(attributes: Any) -> dict[str, Any]:
    """OTLP key-values as a plain dict."""
    found: dict[str, Any] = {}
    pair: KeyValue
    for pair in attributes:
        kind = pair.value.WhichOneof("value")
        found[pair.key] = getattr(pair.value, kind) if kind else None
    return found


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def run_operations(server: LiveServer) -> None:
    token, _ = server.signup_and_login()
    answer = server.graphql("query Page { posts(perPage: 1) { totalPosts } }", token=token)
    assert "errors" not in answer, answer


def test_operation_spans_reach_an_otlp_collector(
    live_server_factory: Callable[..., LiveServer], collector: Collector
) -> None:
    server = live_server_factory(
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=test",
        OTEL_BSP_SCHEDULE_DELAY="50",
    )
    run_operations(server)
    server.stop()  # flushes
    assert {path for path, _ in collector.requests} == {"/v1/traces"}
    operations = [(r, s) for r, s in collector.spans() if s.kind == SERVER_KIND]
    queries = [(r, s) for r, s in operations if s.name == "query"]
    assert len(queries) == 1, [s.name for _, s in operations]
    resource, query = queries[0]
    assert resource["service.name"] == "gql_feed"
    assert resource["deployment.environment.name"] == "test"
    attributes = values(query.attributes)
    assert attributes["graphql.operation.type"] == "query"
    assert attributes["graphql.operation.name"] == "Page"
    assert attributes["http.request.method"] == "POST"
    assert "graphql.document" not in attributes
    children = {s.name for _, s in collector.spans() if s.parent_span_id == query.span_id}
    assert {"graphql.parse", "graphql.validate", "graphql.execute"} <= children
    assert sorted(s.name for _, s in operations if s.name == "mutation") == ["mutation"] * 2


def test_the_service_names_itself_when_told(
    live_server_factory: Callable[..., LiveServer], collector: Collector
) -> None:
    server = live_server_factory(
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{collector.endpoint}/v1/traces",
        OTEL_SERVICE_NAME="feed-eu-1",
        OTEL_BSP_SCHEDULE_DELAY="50",
    )
    run_operations(server)
    server.stop()
    assert collector.spans(), "nothing was exported"
    assert {resource["service.name"] for resource, _ in collector.spans()} == {"feed-eu-1"}


def test_without_an_exporter_named_nothing_is_sent(
    live_server_factory: Callable[..., LiveServer], collector: Collector
) -> None:
    """The endpoint is there, only OTEL_TRACES_EXPORTER is missing: nothing is installed,
    so nothing reaches the collector (the test above shows the same steps would)."""
    server = live_server_factory(
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint, OTEL_BSP_SCHEDULE_DELAY="50"
    )
    run_operations(server)
    server.stop()
    assert collector.requests == []
