"""The live path traced: the log write and the publish under the mutation's span, and one
fan-out span per event and process that continues that trace, links the publish, and
records each group (subscribers, frames, time to the last write), never each socket."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gql_feed.config import Settings
from gql_feed.observability.tracing import TRACER
from tests.helpers.asgi import Upload, create_post
from tests.helpers.inprocess import in_process_server
from tests.helpers.live import IDS_ONLY, RawClient, raw_client
from tests.helpers.server import png_bytes
from tests.helpers.spans import spans

__all__ = ["spans"]

SUBSCRIBERS = 3


def named(finished: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    found = [span for span in finished if span.name == name]
    assert len(found) == 1, [span.name for span in finished]
    return found[0]


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def trace_of(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.trace_id


async def test_one_trace_from_the_mutation_to_the_socket_writes(
    spans: InMemorySpanExporter, settings: Settings
) -> None:
    async with in_process_server(settings) as server:
        token, user_id = await server.user()
        clients = [raw_client(server, subprotocol="graphql-transport-ws") for _ in range(3)]
        sockets = [await client.__aenter__() for client in clients]
        try:
            for number, socket in enumerate(sockets):
                assert (await socket.init(token))["type"] == "connection_ack"
                await subscribed(socket, str(number))
            with TRACER.start_as_current_span("createPost") as mutation:
                created = await server.services.posts.create(
                    user_id, "Traced", "From the mutation to the sockets", Upload(png_bytes())
                )
            for socket in sockets:
                (frame,) = await socket.events(1)
                assert frame["payload"]["data"]["postEvents"]["post"]["id"]
        finally:
            for client in clients:
                await client.__aexit__(None, None, None)

    finished = spans.get_finished_spans()
    trace_id = mutation.get_span_context().trace_id
    log_write = named(finished, "event_log append")
    publish = named(finished, f"publish {settings.broadcast_channel}")
    fan_out = named(finished, "process postEvents")

    assert parent_id(log_write) == mutation.get_span_context().span_id
    assert log_write.attributes is not None
    assert log_write.attributes["gql_feed.post.id"] == created.post.id
    assert parent_id(publish) == mutation.get_span_context().span_id
    assert publish.kind is SpanKind.PRODUCER
    assert publish.attributes is not None
    assert publish.attributes["messaging.system"] == "memory"
    assert publish.attributes["messaging.operation.type"] == "send"
    assert publish.attributes["messaging.destination.name"] == settings.broadcast_channel

    assert fan_out.kind is SpanKind.CONSUMER
    assert trace_of(fan_out) == trace_id
    assert parent_id(fan_out) == span_id(publish)
    assert [link.context.span_id for link in fan_out.links] == [span_id(publish)]
    (group,) = fan_out.events
    assert group.name == "group"
    record = dict(group.attributes or {})
    assert record.keys() == {
        "gql_feed.group.subscribers",
        "gql_feed.group.frames",
        "gql_feed.group.last_write_seconds",
    }
    assert record["gql_feed.group.subscribers"] == SUBSCRIBERS
    assert record["gql_feed.group.frames"] == SUBSCRIBERS


CALLER_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
CALLER_SPAN = 0x00F067AA0BA902B7


async def test_one_trace_from_the_callers_http_request_to_the_fan_out(
    spans: InMemorySpanExporter, settings: Settings
) -> None:
    """createPost sent over HTTP with a `traceparent`: its SERVER span continues the
    caller's trace, the publish descends from it, and the fan-out that wrote the event to
    the subscriber's socket is in that same trace, under the publish."""
    traceparent = f"00-{CALLER_TRACE:032x}-{CALLER_SPAN:016x}-01"
    async with in_process_server(settings) as server:
        token, _ = await server.user()
        async with raw_client(server, subprotocol="graphql-transport-ws") as socket:
            assert (await socket.init(token))["type"] == "connection_ack"
            await subscribed(socket, "1")
            async with httpx.AsyncClient(
                base_url=server.url, headers={"traceparent": traceparent}, timeout=30
            ) as http:
                body = await create_post(http, token, title="Over HTTP")
            assert body["data"]["createPost"]["id"], body
            (frame,) = await socket.events(1)
            assert frame["payload"]["data"]["postEvents"]["post"]["id"]

    finished = spans.get_finished_spans()
    by_id = {span_id(span): span for span in finished}
    mutations = [  # the user's signup and login, then createPost
        span
        for span in finished
        if span.kind is SpanKind.SERVER
        and (span.attributes or {}).get("graphql.operation.type") == "mutation"
    ]
    mutation = max(mutations, key=lambda span: span.start_time or 0)
    assert trace_of(mutation) == CALLER_TRACE
    assert parent_id(mutation) == CALLER_SPAN
    publish = named(finished, f"publish {settings.broadcast_channel}")
    ancestors = []
    span: ReadableSpan | None = publish
    while span is not None and parent_id(span) in by_id:
        span = by_id[parent_id(span)]  # type: ignore[index]
        ancestors.append(span)
    assert mutation in ancestors, [a.name for a in ancestors]
    fan_out = named(finished, "process postEvents")
    assert trace_of(fan_out) == CALLER_TRACE
    assert parent_id(fan_out) == span_id(publish)
    (group,) = fan_out.events
    assert (group.attributes or {})["gql_feed.group.frames"] == 1


async def subscribed(socket: RawClient, op_id: str) -> None:
    """Subscribe, and know the subscription is in its group: a socket's operations are
    prepared in the order they came, and a subscription joins its group as soon as it is
    prepared, so once a query sent behind it is answered, it is in."""
    await socket.subscribe(op_id, IDS_ONLY)
    await socket.subscribe(f"{op_id}-behind", "{ __typename }")
    assert (await socket.receive())["type"] == "next"
    assert (await socket.receive())["type"] == "complete"
