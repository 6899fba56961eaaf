"""GraphQL over SSE, single-connection mode (graphql-sse PROTOCOL.md): one stream, many operations.

- `PUT /graphql` (with `Authorization: Bearer`) reserves a stream: 201, the token as text.
- `GET` (or `POST`) `/graphql` with `Accept: text/event-stream` and the token (header
  `X-GraphQL-Event-Stream-Token`, or `?token=`) opens it, admitted as a distinct stream
  is: a bearer header, or a stream ticket (`?ticket=`) for `EventSource`. One stream per
  reservation at a time.
- `POST /graphql` with the token, a bearer header and `extensions.operationId` adds an
  operation: 202, and its results come over the stream as `event: next` with
  `data: {"id": <operationId>, "payload": <result>}`, ended by `event: complete` with
  `data: {"id": …}`. Request problems (a bad document, an unknown token) are answered
  on the POST itself, as GraphQL over HTTP says.
- `DELETE /graphql?operationId=…` with the token and the bearer header stops one: 200.

The reservation, its operation ids and the commands for its stream live in the
`reservations` registry, shared by every process on a Redis bus: the POST may land on
any process, and the process holding the stream learns of it from the registry and
subscribes the operation locally, into the same groups every transport uses (so an
event is still executed once per group). The stream's operations end with it; a client
reserves again and resubscribes, resuming with `postEvents(after:)`. Results carry no
SSE `id:`: the protocol gives a reservation no way to resume a stream, and its token
is gone once the stream ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from graphql import GraphQLError, OperationType
from starlette.requests import Request as HttpRequest
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from gql_feed.engine import admission, tracing
from gql_feed.engine.documents import Invalid
from gql_feed.engine.results import feed_error, payload_text
from gql_feed.live.close_codes import INTERNAL_REASON, CloseCode
from gql_feed.live.connection import CoroutineSend
from gql_feed.live.groups import Group, Subscriber
from gql_feed.live.operations import Operations, Request
from gql_feed.live.quotas import TooManyStreams
from gql_feed.services.errors import EventLogExpired
from gql_feed.services.tokens import Claims
from gql_feed.transport.refusal import ADMISSION_ERRORS, HttpRefusal, refusal_of
from gql_feed.transport.streams.requests import cookie_header, read_operation
from gql_feed.transport.streams.reservations import Outcome, Reservations
from gql_feed.transport.streams.single_stream import (
    Encoded,
    ReservedSubscriber,
    SingleStream,
    check_outcome,
    complete_frame,
    operation_id_of,
    required_token,
)
from gql_feed.transport.streams.stream_connection import StreamConnection
from gql_feed.transport.streams.streams import FLUSH_SECONDS, ONLY_SUBSCRIPTIONS, HttpStreams

logger = logging.getLogger(__name__)

BUSY_STREAM = "This reservation's stream is already open; only one may be."
BUSY_OPERATION = "An operation with this operationId is already running on this stream."
# Commands (start, stop) waiting for one stream's runner; past this the stream ends.
MAX_QUEUED_COMMANDS = 1_000
TOO_MANY_COMMANDS = "Too many operations sent at once: reconnect and send fewer."


class SingleConnections:
    """The single-connection mode's four requests, and the streams this process holds."""

    def __init__(self, streams: HttpStreams, reservations: Reservations) -> None:
        self.streams = streams
        self.operations: Operations = streams.operations
        self.settings = streams.settings
        self.reservations = reservations
        self._open: dict[str, SingleStream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._encoded = Encoded()

    def __len__(self) -> int:
        return len(self._open)

    async def start(self) -> None:
        await self.reservations.start(self.deliver)

    async def stop(self) -> None:
        await self.reservations.stop()
        for task in tuple(self._tasks):
            task.cancel()

    def close_all(self, code: int, reason: str) -> list[StreamConnection]:
        streams = tuple(self._open.values())
        for stream in streams:
            stream.connection.close(code, reason)
        return [stream.connection for stream in streams]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = HttpRequest(scope, receive)
        try:
            if request.method == "PUT":
                response = await self._reserve(request)
            elif request.method == "DELETE":
                response = await self._cancel(request)
            elif self.streams.frames_for(request.headers) is self.streams.sse:
                await self._serve(request, send)
                return
            else:
                response = await self._submit(request)
        except ADMISSION_ERRORS as error:
            response = refusal_of(error).response()
        await response(scope, receive, send)

    # PUT, POST and DELETE: answered at once.

    async def _reserve(self, request: HttpRequest) -> Response:
        claims = await self._bearer(request)
        token = await self.reservations.reserve(claims.user_id)
        if token is None:
            most = self.settings.sse_max_reservations_per_user
            raise HttpRefusal(
                429,
                "TOO_MANY_STREAMS",
                f"At most {most} stream reservations per login at once: open one you hold, "
                f"or wait for those nobody opens to expire "
                f"({self.settings.sse_reservation_seconds:g} s).",
            )
        return PlainTextResponse(token, 201, headers={"cache-control": "no-store"})

    async def _submit(self, request: HttpRequest) -> Response:
        """A subscription for a reserved stream: checked here, started by the stream's
        holder (`_start`, in whichever process holds it). Its span ends once handed over."""
        with tracing.operation(request.scope, self.settings) as trace:
            return await self._submitted(request, trace)

    async def _submitted(self, request: HttpRequest, trace: tracing.Trace) -> Response:
        token = required_token(request)
        claims = await self._bearer(request)
        if request.method != "POST":
            raise HttpRefusal(405, "BAD_REQUEST", "Operations are POSTed to a reserved stream.")
        payload = await read_operation(request, self.settings.ws_max_message_bytes)
        operation_id = operation_id_of((payload.get("extensions") or {}).get("operationId"))
        query = await self.operations.persisted.resolve_payload(payload)
        operation_request = Request(
            query, payload.get("operationName"), payload.get("variables") or {}
        )
        operation = await self.operations.prepare(operation_request)
        if isinstance(operation, Invalid):
            trace.fail(operation.errors)
            return self._refused(operation.errors)
        trace.identify_operation(operation.kind, operation.definition, operation.document)
        if operation.kind is not OperationType.SUBSCRIPTION:
            wrong = GraphQLError(ONLY_SUBSCRIPTIONS, extensions={"code": "BAD_REQUEST"})
            trace.fail([wrong])
            return self._refused([wrong])
        command = orjson.dumps(
            {
                "start": operation_id,
                "query": query,
                "operationName": operation_request.operation_name,
                "variables": operation_request.variables,
            }
        )
        limit = self.settings.ws_max_subscriptions
        outcome = await self.reservations.submit(
            token, claims.user_id, operation_id, command, limit
        )
        if outcome is Outcome.FULL:
            raise HttpRefusal(
                400,
                "TOO_MANY_SUBSCRIPTIONS",
                f"A stream may carry at most {limit} operations at once.",
            )
        check_outcome(outcome, BUSY_OPERATION)
        return Response(status_code=202, headers={"cache-control": "no-store"})

    async def _cancel(self, request: HttpRequest) -> Response:
        token = required_token(request)
        claims = await self._bearer(request)
        operation_id = operation_id_of(request.query_params.get("operationId"))
        command = orjson.dumps({"stop": operation_id})
        outcome = await self.reservations.cancel(token, claims.user_id, operation_id, command)
        check_outcome(outcome, BUSY_OPERATION)
        return Response(status_code=200, headers={"cache-control": "no-store"})

    async def _bearer(self, request: HttpRequest) -> Claims:
        services = self.operations.services
        return await admission.required_bearer(services, request.headers.get("authorization"))

    def _refused(self, errors: Iterable[GraphQLError]) -> Response:
        body = payload_text(None, errors, self.settings.production)
        return Response(body, 400, media_type="application/json")

    # GET / POST with Accept: text/event-stream: the stream itself.

    async def _serve(self, request: HttpRequest, send: Send) -> None:
        token = required_token(request)
        claims, cookie = await self.streams.owner(request)
        stream = SingleStream(token, claims, self._check_inbox)
        seconds = (claims.expires_at - datetime.now(UTC)).total_seconds()
        quotas = self.operations.quotas
        try:
            quotas.open_stream(claims.user_id)
        except TooManyStreams as refusal:
            raise HttpRefusal(429, refusal.code, refusal.message) from None
        try:
            outcome, waiting = await self.reservations.open(token, claims.user_id, seconds)
            check_outcome(outcome, BUSY_STREAM)
        except BaseException:
            quotas.close_stream(claims.user_id)
            raise
        framing = self.streams.sse.framing
        connection = StreamConnection(
            cast(CoroutineSend, send),
            self.settings.ws_send_backlog,
            lambda: self._release(stream),
            framing,
            self.settings.ws_send_backlog_bytes,
        )
        stream.connection = connection
        ticker = self.streams.sse.ticker
        headers = [
            (b"content-type", framing.media_type.encode()),
            (b"cache-control", b"no-cache, no-store"),
            (b"x-accel-buffering", b"no"),
        ]
        if cookie is not None:
            headers.append((b"set-cookie", cookie_header(request, *cookie)))
        self._open[token] = stream
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            connection.send_bytes(framing.opening)
            ticker.add(stream)
            if waiting:
                self.deliver(token, waiting)
            while (await request.receive())["type"] != "http.disconnect":
                pass
        finally:
            connection.lost()
            ticker.remove(stream)
            try:
                # Before the stream stops counting: once it is gone, so is its reservation.
                await self.reservations.close(token, claims.user_id)
            except Exception:
                # It expires by itself when the login does; nothing can reopen it meanwhile.
                logger.warning("Forgetting an SSE reservation failed", exc_info=True)
            if self._open.get(token) is stream:
                del self._open[token]
            quotas.close_stream(claims.user_id)
            await connection.flushed(FLUSH_SECONDS)

    def _check_inbox(self, stream: SingleStream) -> None:
        """At each keep-alive: commands whose notice the registry's bus lost."""
        if not self.reservations.polled:
            return
        task = asyncio.create_task(self._read_inbox(stream))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_inbox(self, stream: SingleStream) -> None:
        try:
            waiting = await self.reservations.drain(stream.token)
        except Exception:
            logger.warning("Reading an SSE reservation's inbox failed", exc_info=True)
            return
        if waiting:
            self.deliver(stream.token, waiting)

    def deliver(self, token: str, commands: list[bytes]) -> None:
        """The registry's hand-over: commands for a stream this process holds."""
        stream = self._open.get(token)
        if stream is None:
            return
        if len(stream.commands) + len(commands) > MAX_QUEUED_COMMANDS:
            stream.commands.clear()
            stream.connection.close(CloseCode.TRY_AGAIN_LATER, TOO_MANY_COMMANDS)
            return
        stream.commands.extend(commands)
        if stream.runner is None:
            stream.runner = task = asyncio.create_task(self._run(stream))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, stream: SingleStream) -> None:
        """The stream's commands in order, one at a time, by one task per stream."""
        commands = stream.commands
        try:
            while commands and not stream.connection.closing:
                raw = commands.popleft()
                try:
                    command = orjson.loads(raw)
                    if "stop" in command:
                        self._stop(stream, command["stop"])
                    else:
                        await self._start(stream, command)
                except Exception:
                    logger.exception("A single-connection SSE command failed")
                    stream.connection.close(CloseCode.INTERNAL_SERVER_ERROR, INTERNAL_REASON)
                    return
        finally:
            if stream.connection.closing:
                commands.clear()
            stream.runner = None

    async def _start(self, stream: SingleStream, command: dict[str, Any]) -> None:
        operation_id: str = command["start"]
        request = Request(command["query"], command["operationName"], command["variables"])
        operation = await self.operations.prepare(request)
        if stream.connection.closing or operation_id in stream.operations:
            return
        if isinstance(operation, Invalid):
            await self._fail(stream, operation_id, operation.errors)
            return

        def make_subscriber(group: Group) -> Subscriber:
            return ReservedSubscriber(stream, operation_id, group, self._encoded)

        held = {subscriber.group.key for subscriber in stream.operations.values()}
        joined = self.operations.subscribe(operation, request, stream.owner, make_subscriber, held)
        if isinstance(joined, list):
            await self._fail(stream, operation_id, joined)
            return
        subscriber = cast(ReservedSubscriber, joined.subscriber)
        stream.operations[operation_id] = subscriber
        if joined.after is not None:
            subscriber.replay = asyncio.create_task(
                self._replay(stream, subscriber, joined.after, joined.upto)
            )

    def _stop(self, stream: SingleStream, operation_id: str) -> None:
        subscriber = stream.operations.pop(operation_id, None)
        if subscriber is None:
            return
        self._leave(subscriber)
        stream.connection.send_bytes(complete_frame(operation_id))

    async def _replay(
        self, stream: SingleStream, subscriber: ReservedSubscriber, after: int, upto: int
    ) -> None:
        try:
            await self.operations.replay(subscriber, after, upto)
        except EventLogExpired as expired:
            subscriber.replay = None
            if stream.operations.get(subscriber.id) is subscriber:
                del stream.operations[subscriber.id]
                self._leave(subscriber)
                await self._fail(stream, subscriber.id, [feed_error(expired)])
        except Exception:
            logger.exception("Replaying events for a single-connection stream failed")
            stream.connection.close(CloseCode.INTERNAL_SERVER_ERROR, INTERNAL_REASON)
        finally:
            subscriber.replay = None

    async def _fail(
        self, stream: SingleStream, operation_id: str, errors: Iterable[GraphQLError]
    ) -> None:
        """An operation that cannot run: its errors, its end, and its id freed."""
        payload = payload_text(None, errors, self.settings.production).encode()
        head = b'event: next\ndata: {"id":' + orjson.dumps(operation_id) + b',"payload":'
        stream.connection.send_bytes(head + payload + b"}\n\n" + complete_frame(operation_id))
        await self.reservations.finished(stream.token, operation_id)

    def _leave(self, subscriber: ReservedSubscriber) -> None:
        self.operations.unsubscribe(subscriber)
        if subscriber.replay is not None:
            subscriber.replay.cancel()

    def _release(self, stream: SingleStream) -> None:
        """The connection stopped taking frames: every operation leaves its group now."""
        stream.expires_at = None
        operations, stream.operations = stream.operations, {}
        for subscriber in operations.values():
            self._leave(subscriber)
