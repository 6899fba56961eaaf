"""Subscriptions over plain HTTP: one response per subscription, streamed as SSE or multipart.

These are thin framings over the WebSocket's machinery. A stream's subscription joins
the same group as a WebSocket's identical one (`Operations.subscribe`), so an event is
still executed and encoded once per group; a `StreamSubscriber` only wraps the shared
payload in its transport's frame, and that frame is encoded once per group and event
too (`SharedFrames`), then written to every stream with the same eager write and the
same bounded backlog (`StreamConnection`, a `Connection` whose messages are body
chunks). The limits, the query rules, the error codes, the resume (`Last-Event-ID` is
`after:` by another name) and the slow-consumer rule are the WebSocket's.

Who may subscribe: an `Authorization: Bearer <token>` header (fetch-based clients), or a
single-use `ticket` in the URL (`services.tickets`) for a browser's `EventSource`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast

from graphql import GraphQLError, OperationType
from starlette.datastructures import Headers
from starlette.requests import Request as HttpRequest
from starlette.types import ASGIApp, Receive, Scope, Send

from gql_feed.config import Settings
from gql_feed.engine import admission, tracing
from gql_feed.engine.admission import ResumeCookie
from gql_feed.engine.documents import Invalid
from gql_feed.engine.requests import OperationPayload
from gql_feed.engine.results import feed_error, payload_text
from gql_feed.live.close_codes import INTERNAL_REASON, CloseCode
from gql_feed.live.connection import CoroutineSend
from gql_feed.live.groups import Group, Subscriber
from gql_feed.live.operations import Operations, Request
from gql_feed.live.quotas import TooManyStreams
from gql_feed.live.ticker import Ticker
from gql_feed.schema.context import Services
from gql_feed.services.errors import EventLogExpired
from gql_feed.services.tokens import Claims
from gql_feed.transport.negotiation import EVENT_STREAM, MULTIPART, accepted
from gql_feed.transport.refusal import ADMISSION_ERRORS, HttpRefusal, refusal_of
from gql_feed.transport.streams.choice import Parse, StreamChoice
from gql_feed.transport.streams.multipart import HEARTBEAT_SECONDS, MultipartFraming
from gql_feed.transport.streams.requests import cookie_header, last_event_id, read_operation
from gql_feed.transport.streams.sse import SseFraming
from gql_feed.transport.streams.stream_connection import (
    HttpStream,
    SharedFrames,
    StreamConnection,
    StreamSubscriber,
)

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 5.0
ONLY_SUBSCRIPTIONS = (
    "Only subscriptions stream over this transport; send queries and mutations as "
    "ordinary HTTP requests (application/json)."
)


class HttpStreams:
    """The endpoint for SSE and multipart subscriptions, and the streams it holds open."""

    def __init__(self, operations: Operations, services: Services, settings: Settings) -> None:
        self.operations = operations
        self.services = services
        self.settings = settings
        # SSE comments at the WebSocket's keep-alive period; Apollo's heartbeat every 5 s.
        self.sse = SharedFrames(
            SseFraming(), Ticker(settings.ws_keepalive_seconds, settings.ws_init_timeout_seconds)
        )
        self.multipart = SharedFrames(
            MultipartFraming(), Ticker(HEARTBEAT_SECONDS, settings.ws_init_timeout_seconds)
        )
        self._streams: set[HttpStream] = set()

    def __len__(self) -> int:
        return len(self._streams)

    def start(self) -> None:
        self.sse.ticker.start()
        self.multipart.ticker.start()

    async def stop(self) -> None:
        await self.sse.ticker.stop()
        await self.multipart.ticker.stop()
        self.close_all(CloseCode.GOING_AWAY, "Server shutting down; reconnect")

    def close_all(self, code: int, reason: str) -> list[StreamConnection]:
        streams = tuple(self._streams)
        for stream in streams:
            stream.connection.close(code, reason)
        return [stream.connection for stream in streams]

    def frames_for(self, headers: Headers) -> SharedFrames | None:
        """Which transport the request's Accept header asks for, if a streaming one."""
        return self.frames_of(accepted(headers.get("accept"))[1])

    def frames_of(self, media_type: str | None) -> SharedFrames | None:
        if media_type == EVENT_STREAM:
            return self.sse
        if media_type == MULTIPART:
            return self.multipart
        return None

    async def serve(self, scope: Scope, receive: Receive, send: Send, frames: SharedFrames) -> None:
        request = HttpRequest(scope, receive)
        # The operation's span covers its admission and joining its group, not the stream.
        with tracing.operation(scope, self.settings) as trace:
            try:
                payload, claims, cookie = await self._admit(request)
                resume_after = last_event_id(request.headers)
                query = await self.operations.persisted.resolve_payload(payload)
            except ADMISSION_ERRORS as error:
                trace.refuse(error)
                await refusal_of(error).response()(scope, receive, send)
                return
            operation_request = Request(
                query, payload.get("operationName"), payload.get("variables") or {}
            )
            operation = await self.operations.prepare(operation_request)
            if not isinstance(operation, Invalid):
                trace.identify_operation(operation.kind, operation.definition, operation.document)
            quotas = self.operations.quotas
            try:
                quotas.open_stream(claims.user_id)
            except TooManyStreams as refusal:
                trace.refuse(refusal)
                await HttpRefusal(429, refusal.code, refusal.message).response()(
                    scope, receive, send
                )
                return
            stream = HttpStream(self.operations)
            framing = frames.framing
            connection = StreamConnection(
                cast(CoroutineSend, send),
                self.settings.ws_send_backlog,
                stream.release,
                framing,
                self.settings.ws_send_backlog_bytes,
            )
            stream.connection = connection
            headers = [
                (b"content-type", framing.media_type.encode()),
                (b"cache-control", b"no-cache, no-store"),
                (b"x-accel-buffering", b"no"),  # nginx: pass each chunk on at once
            ]
            if cookie is not None:
                headers.append((b"set-cookie", cookie_header(request, *cookie)))
            try:
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                connection.send_bytes(framing.opening)
                errors = self._subscribe(
                    stream, frames, operation, operation_request, claims, resume_after
                )
                if errors is not None:
                    trace.fail(errors)
                    connection.send_bytes(framing.next(None, self._errors(errors)))
                    connection.close(CloseCode.NORMAL)
                else:
                    self._streams.add(stream)
                    frames.ticker.add(stream)
                trace.end()  # established (or refused): not held open for the stream's life
                # Until the client goes, or the response is complete (closed by us).
                while (await receive())["type"] != "http.disconnect":
                    pass
            finally:
                connection.lost()
                frames.ticker.remove(stream)
                self._streams.discard(stream)
                quotas.close_stream(claims.user_id)
                await connection.flushed(FLUSH_SECONDS)

    def _subscribe(
        self,
        stream: HttpStream,
        frames: SharedFrames,
        operation: Any,
        request: Request,
        claims: Claims,
        resume_after: int | None,
    ) -> list[GraphQLError] | None:
        """Join the subscription's group (no await: nothing can slip past); errors if not."""
        if isinstance(operation, Invalid):
            return operation.errors
        if operation.kind is not OperationType.SUBSCRIPTION:
            return [GraphQLError(ONLY_SUBSCRIPTIONS, extensions={"code": "BAD_REQUEST"})]
        connection = stream.connection

        def make_subscriber(group: Group) -> Subscriber:
            return StreamSubscriber(connection, group, frames)

        joined = self.operations.subscribe(
            operation, request, claims, make_subscriber, resume_after=resume_after
        )
        if isinstance(joined, list):
            return joined
        subscriber = cast(StreamSubscriber, joined.subscriber)
        stream.subscriber = subscriber
        remaining = (claims.expires_at - datetime.now(UTC)).total_seconds()
        stream.expires_at = time.monotonic() + remaining
        if joined.after is not None:
            subscriber.replay = asyncio.create_task(
                self._replay(stream, subscriber, joined.after, joined.upto)
            )
        return None

    async def _replay(
        self, stream: HttpStream, subscriber: StreamSubscriber, after: int, upto: int
    ) -> None:
        connection = stream.connection
        try:
            await self.operations.replay(subscriber, after, upto)
        except EventLogExpired as expired:
            subscriber.replay = None
            if stream.subscriber is subscriber:
                stream.release()
                connection.send_bytes(
                    connection.framing.next(None, self._errors([feed_error(expired)]))
                )
                connection.close(CloseCode.NORMAL)
        except Exception:
            logger.exception("Replaying events for a streamed subscription failed")
            connection.close(CloseCode.INTERNAL_SERVER_ERROR, INTERNAL_REASON)
        finally:
            subscriber.replay = None

    async def _admit(
        self, request: HttpRequest
    ) -> tuple[OperationPayload, Claims, ResumeCookie | None]:
        """The operation and its owner, or an HttpRefusal / FeedError saying why not."""
        payload = await self._operation(request)
        claims, cookie = await self.owner(request)
        return payload, claims, cookie

    async def owner(self, request: HttpRequest) -> tuple[Claims, ResumeCookie | None]:
        """Who opens a stream: a bearer header, or a ticket (with its resume cookie)."""
        return await admission.stream_owner(
            self.services,
            request.headers.get("authorization"),
            request.query_params.get("ticket"),
            request.cookies,
        )

    async def _operation(self, request: HttpRequest) -> OperationPayload:
        return await read_operation(request, self.settings.ws_max_message_bytes)

    def _errors(self, errors: Iterable[GraphQLError]) -> str:
        return payload_text(None, errors, self.settings.production)


class StreamsOrView:
    """`/graphql` over HTTP: streaming subscriptions to `HttpStreams`, the requests of
    SSE's single-connection mode (PUT, DELETE, or naming a reserved stream) to `single`,
    the rest to the view (`choice` says which by the Accept header and the operation)."""

    def __init__(
        self, view: ASGIApp, streams: HttpStreams, single: ASGIApp, parse: Parse | None = None
    ) -> None:
        self.view = view
        self.streams = streams
        self.single = single
        self.choice = StreamChoice(streams.operations.persisted, parse)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["method"] in ("PUT", "DELETE") or _names_a_reservation(scope):
                await self.single(scope, receive, send)
                return
            media_type, receive = await self.choice(scope, receive)
            frames = self.streams.frames_of(media_type)
            if frames is not None:
                await self.streams.serve(scope, receive, send, frames)
                return
        await self.view(scope, receive, send)


def _names_a_reservation(scope: Scope) -> bool:
    """A single-connection request: the token header, or `token=` in the query string."""
    for name, _ in scope["headers"]:
        if name == b"x-graphql-event-stream-token":
            return True
    query: bytes = scope.get("query_string", b"")
    return query.startswith(b"token=") or b"&token=" in query
