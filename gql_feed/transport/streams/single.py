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
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from graphql import GraphQLError, OperationType
from starlette.datastructures import Headers
from starlette.requests import Request as HttpRequest
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from gql_feed.engine import admission
from gql_feed.engine.documents import Invalid
from gql_feed.engine.results import feed_error, payload_text
from gql_feed.live.close_codes import INTERNAL_REASON, CloseCode
from gql_feed.live.connection import CoroutineSend
from gql_feed.live.frames import OutFrame
from gql_feed.live.groups import Group, Subscriber
from gql_feed.live.operations import Operations, Request
from gql_feed.services.errors import EventLogExpired
from gql_feed.services.tokens import Claims
from gql_feed.transport.refusal import ADMISSION_ERRORS, HttpRefusal, refusal_of
from gql_feed.transport.streams.reservations import Outcome, Reservations
from gql_feed.transport.streams.sse import SseFraming
from gql_feed.transport.streams.streams import (
    FLUSH_SECONDS,
    ONLY_SUBSCRIPTIONS,
    HttpStreams,
    StreamConnection,
    cookie_header,
    read_operation,
)

logger = logging.getLogger(__name__)

TOKEN_HEADER = "x-graphql-event-stream-token"  # noqa: S105
MAX_OPERATION_ID = 128
UNKNOWN = (
    "No stream is reserved under this token (it expired, its stream ended, or it is "
    "another login's): reserve one with PUT."
)
BUSY_STREAM = "This reservation's stream is already open; only one may be."
BUSY_OPERATION = "An operation with this operationId is already running on this stream."


def stream_token(scope: Scope) -> str | None:
    """The reservation a request names, by header or search parameter."""
    headers = Headers(scope=scope)
    token = headers.get(TOKEN_HEADER)
    if not token:
        token = HttpRequest(scope).query_params.get("token")
    return token or None


class ReservedSubscriber(Subscriber):
    """One operation of a single-connection stream: its results wrapped with its id."""

    __slots__ = ("encoded", "head", "stream")

    def __init__(
        self, stream: SingleStream, operation_id: str, group: Group, encoded: _Encoded
    ) -> None:
        super().__init__(operation_id, "", stream.connection, group)
        self.stream = stream
        self.encoded = encoded
        self.head = b'event: next\ndata: {"id":' + orjson.dumps(operation_id) + b',"payload":'

    def send(self, event_id: int, payload: str, frames: dict[str, OutFrame] | None = None) -> None:
        self.stream.connection.send_bytes(self.head + self.encoded.of(payload) + b"}\n\n")


class _Encoded:
    """A group's payload encoded once: the fan-out hands its members the same object."""

    __slots__ = ("_bytes", "_text")

    def __init__(self) -> None:
        self._text = ""
        self._bytes = b""

    def of(self, payload: str) -> bytes:
        if payload is not self._text:
            self._bytes = payload.encode()
            self._text = payload
        return self._bytes


class SingleStream:
    """An open reservation: its connection, its operations, and what the ticker needs."""

    __slots__ = (
        "checks",
        "commands",
        "connection",
        "expires_at",
        "init_deadline",
        "operations",
        "owner",
        "token",
    )

    def __init__(self, token: str, owner: Claims, checks: Callable[[SingleStream], None]) -> None:
        self.token = token
        self.checks = checks
        self.owner = owner
        self.init_deadline: float | None = None
        remaining = (owner.expires_at - datetime.now(UTC)).total_seconds()
        self.expires_at: float | None = time.monotonic() + remaining
        self.operations: dict[str, ReservedSubscriber] = {}
        # Commands are run in order, one at a time (a stop may follow its start closely).
        self.commands: asyncio.Lock = asyncio.Lock()
        self.connection: StreamConnection  # set by SingleConnections.open

    def keepalive(self) -> None:
        self.connection.send_bytes(SseFraming.keepalive)
        self.checks(self)

    def init_timed_out(self) -> None:
        """Streams are authenticated before they start: there is no init to wait for."""

    def token_expired(self) -> None:
        self.connection.close(CloseCode.TOKEN_EXPIRED, "Token expired: log in again")


class SingleConnections:
    """The single-connection mode's four requests, and the streams this process holds."""

    def __init__(self, streams: HttpStreams, reservations: Reservations) -> None:
        self.streams = streams
        self.operations: Operations = streams.operations
        self.settings = streams.settings
        self.reservations = reservations
        self._open: dict[str, SingleStream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._encoded = _Encoded()

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
        return PlainTextResponse(token, 201, headers={"cache-control": "no-store"})

    async def _submit(self, request: HttpRequest) -> Response:
        token = _required_token(request)
        claims = await self._bearer(request)
        if request.method != "POST":
            raise HttpRefusal(405, "BAD_REQUEST", "Operations are POSTed to a reserved stream.")
        payload = await read_operation(request, self.settings.ws_max_message_bytes)
        operation_id = _operation_id((payload.get("extensions") or {}).get("operationId"))
        query = await self.operations.persisted.resolve_payload(payload)
        operation_request = Request(
            query, payload.get("operationName"), payload.get("variables") or {}
        )
        operation = await self.operations.prepare(operation_request)
        if isinstance(operation, Invalid):
            return self._refused(operation.errors)
        if operation.kind is not OperationType.SUBSCRIPTION:
            return self._refused(
                [GraphQLError(ONLY_SUBSCRIPTIONS, extensions={"code": "BAD_REQUEST"})]
            )
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
        _check(outcome, BUSY_OPERATION)
        return Response(status_code=202, headers={"cache-control": "no-store"})

    async def _cancel(self, request: HttpRequest) -> Response:
        token = _required_token(request)
        claims = await self._bearer(request)
        operation_id = _operation_id(request.query_params.get("operationId"))
        command = orjson.dumps({"stop": operation_id})
        outcome = await self.reservations.cancel(token, claims.user_id, operation_id, command)
        _check(outcome, BUSY_OPERATION)
        return Response(status_code=200, headers={"cache-control": "no-store"})

    async def _bearer(self, request: HttpRequest) -> Claims:
        services = self.operations.services
        return await admission.required_bearer(services, request.headers.get("authorization"))

    def _refused(self, errors: Iterable[GraphQLError]) -> Response:
        body = payload_text(None, errors, self.settings.production)
        return Response(body, 400, media_type="application/json")

    # GET / POST with Accept: text/event-stream: the stream itself.

    async def _serve(self, request: HttpRequest, send: Send) -> None:
        token = _required_token(request)
        claims, cookie = await self.streams.owner(request)
        stream = SingleStream(token, claims, self._check_inbox)
        seconds = (claims.expires_at - datetime.now(UTC)).total_seconds()
        outcome, waiting = await self.reservations.open(token, claims.user_id, seconds)
        _check(outcome, BUSY_STREAM)
        framing = self.streams.sse.framing
        connection = StreamConnection(
            cast(CoroutineSend, send),
            self.settings.ws_send_backlog,
            lambda: self._release(stream),
            framing,
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
                await self.reservations.close(token)
            except Exception:
                # It expires by itself when the login does; nothing can reopen it meanwhile.
                logger.warning("Forgetting an SSE reservation failed", exc_info=True)
            if self._open.get(token) is stream:
                del self._open[token]
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
        task = asyncio.create_task(self._run(stream, commands))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, stream: SingleStream, commands: list[bytes]) -> None:
        async with stream.commands:
            for raw in commands:
                if stream.connection.closing:
                    return
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
        stream.connection.send_bytes(_complete(operation_id))

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
        stream.connection.send_bytes(head + payload + b"}\n\n" + _complete(operation_id))
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


def _complete(operation_id: str) -> bytes:
    return b'event: complete\ndata: {"id":' + orjson.dumps(operation_id) + b"}\n\n"


def _required_token(request: HttpRequest) -> str:
    token = stream_token(request.scope)
    if token is None:
        raise HttpRefusal(
            400,
            "BAD_REQUEST",
            f"Name the reserved stream: a {TOKEN_HEADER} header or ?token=.",
        )
    return token


def _operation_id(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_OPERATION_ID:
        raise HttpRefusal(
            400,
            "BAD_REQUEST",
            f"operationId must be a string of 1 to {MAX_OPERATION_ID} characters "
            "(in the extensions of a POST, or the search parameters of a DELETE).",
        )
    return value


def _check(outcome: Outcome, busy: str) -> None:
    if outcome is Outcome.UNKNOWN:
        raise HttpRefusal(404, "NOT_FOUND", UNKNOWN)
    if outcome is Outcome.BUSY:
        raise HttpRefusal(409, "BAD_REQUEST", busy)
