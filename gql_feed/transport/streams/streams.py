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
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import orjson
from graphql import GraphQLError, OperationType
from starlette.datastructures import Headers
from starlette.requests import Request as HttpRequest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql_feed.config import Settings
from gql_feed.engine import admission
from gql_feed.engine.admission import ResumeCookie
from gql_feed.engine.documents import Invalid
from gql_feed.engine.requests import MalformedRequest, OperationPayload, operation_payload
from gql_feed.engine.results import feed_error, payload_text
from gql_feed.live.close_codes import INTERNAL_REASON, CloseCode
from gql_feed.live.connection import Connection, CoroutineSend
from gql_feed.live.frames import OutFrame
from gql_feed.live.groups import Group, Subscriber
from gql_feed.live.operations import Operations, Request, resume_point
from gql_feed.live.ticker import Ticker
from gql_feed.schema.context import Services
from gql_feed.services.errors import BadUserInput, EventLogExpired
from gql_feed.services.tokens import Claims
from gql_feed.transport.refusal import ADMISSION_ERRORS, HttpRefusal, refusal_of
from gql_feed.transport.streams.multipart import HEARTBEAT_SECONDS, MultipartFraming
from gql_feed.transport.streams.sse import SseFraming

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 5.0
ONLY_SUBSCRIPTIONS = (
    "Only subscriptions stream over this transport; send queries and mutations as "
    "ordinary HTTP requests (application/json)."
)
NOT_JSON = "Send the operation as JSON (content-type: application/json)."
OPERATION_PARAMS = ("query", "operationName", "documentId")
JSON_PARAMS = ("variables", "extensions")


class Framing(Protocol):
    """The bytes of one transport: `sse.SseFraming`, `multipart.MultipartFraming`."""

    media_type: str
    opening: bytes
    keepalive: bytes

    def next(self, event_id: int | None, payload: str) -> bytes: ...

    def result_then_complete(self, payload: str) -> bytes: ...

    def ending(self, code: int, reason: str) -> bytes: ...


class SharedFrames:
    """A framing that encodes each event's frame once, for every stream of a group.

    The fan-out hands every member of a group the same payload object in a row, so the
    last frame made is the one the next member needs: one comparison, no new bytes.
    """

    __slots__ = ("_event_id", "_frame", "_payload", "framing", "ticker")

    def __init__(self, framing: Framing, ticker: Ticker) -> None:
        self.framing = framing
        self.ticker = ticker
        self._event_id = -1
        self._payload = ""
        self._frame = b""

    def next(self, event_id: int, payload: str) -> bytes:
        if payload is not self._payload or event_id != self._event_id:
            self._frame = self.framing.next(event_id, payload)
            self._payload = payload
            self._event_id = event_id
        return self._frame


class StreamConnection(Connection):
    """A `Connection` whose frames are chunks of one HTTP response body."""

    __slots__ = ("framing",)

    def __init__(
        self,
        send: CoroutineSend,
        backlog_limit: int,
        release: Callable[[], None],
        framing: Framing,
    ) -> None:
        super().__init__(send, backlog_limit, release)
        self.framing = framing

    def send_bytes(self, data: bytes) -> None:
        if self.closing:
            return
        message: Message = {"type": "http.response.body", "body": data, "more_body": True}
        if self._drainer is None:
            self._write(message)
        else:
            self._enqueue(message)

    def send_text(self, text: str) -> None:
        self.send_bytes(text.encode())

    def close_message(self, code: int, reason: str) -> Message:
        body = self.framing.ending(code, reason)
        return {"type": "http.response.body", "body": body, "more_body": False}


class StreamSubscriber(Subscriber):
    """A group member whose frames are its stream's (the same bytes for the whole group)."""

    __slots__ = ("frames", "stream_connection")

    def __init__(self, connection: StreamConnection, group: Group, frames: SharedFrames) -> None:
        super().__init__("", "", connection, group)
        self.stream_connection = connection
        self.frames = frames

    def send(self, event_id: int, payload: str, frames: dict[str, OutFrame] | None = None) -> None:
        self.stream_connection.send_bytes(self.frames.next(event_id, payload))


class HttpStream:
    """One streamed subscription: what the ticker needs, and how to let go of it."""

    __slots__ = ("connection", "expires_at", "init_deadline", "operations", "subscriber")

    def __init__(self, operations: Operations) -> None:
        self.operations = operations
        self.init_deadline: float | None = None
        self.expires_at: float | None = None
        self.subscriber: StreamSubscriber | None = None
        self.connection: StreamConnection  # set by HttpStreams.serve

    def keepalive(self) -> None:
        self.connection.send_bytes(self.connection.framing.keepalive)

    def init_timed_out(self) -> None:
        """Streams are authenticated before they start: there is no init to wait for."""

    def token_expired(self) -> None:
        self.connection.close(CloseCode.TOKEN_EXPIRED, "Token expired: log in again")

    def release(self) -> None:
        self.expires_at = None
        subscriber, self.subscriber = self.subscriber, None
        if subscriber is not None:
            self.operations.unsubscribe(subscriber)
            if subscriber.replay is not None:
                subscriber.replay.cancel()


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
        accept = headers.get("accept")
        if not accept:
            return None
        for media_range in accept.split(","):
            essence, _, parameters = media_range.partition(";")
            essence = essence.strip().lower()
            if essence == "text/event-stream":
                return self.sse
            if essence == "multipart/mixed" and _has_subscription_spec(parameters):
                return self.multipart
        return None

    async def serve(self, scope: Scope, receive: Receive, send: Send, frames: SharedFrames) -> None:
        request = HttpRequest(scope, receive)
        try:
            payload, claims, cookie = await self._admit(request)
            resume_after = _last_event_id(request.headers)
            query = await self.operations.persisted.resolve_payload(payload)
        except ADMISSION_ERRORS as error:
            await refusal_of(error).response()(scope, receive, send)
            return
        operation_request = Request(
            query, payload.get("operationName"), payload.get("variables") or {}
        )
        operation = await self.operations.prepare(operation_request)
        stream = HttpStream(self.operations)
        framing = frames.framing
        connection = StreamConnection(
            cast(CoroutineSend, send), self.settings.ws_send_backlog, stream.release, framing
        )
        stream.connection = connection
        headers = [
            (b"content-type", framing.media_type.encode()),
            (b"cache-control", b"no-cache, no-store"),
            (b"x-accel-buffering", b"no"),  # nginx: pass each chunk on at once
        ]
        if cookie is not None:
            headers.append((b"set-cookie", cookie_header(request, *cookie)))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        connection.send_bytes(framing.opening)
        try:
            errors = self._subscribe(
                stream, frames, operation, operation_request, claims, resume_after
            )
            if errors is not None:
                connection.send_bytes(framing.next(None, self._errors(errors)))
                connection.close(CloseCode.NORMAL)
            else:
                self._streams.add(stream)
                frames.ticker.add(stream)
            # Until the client goes, or the response is complete (closed by us).
            while (await receive())["type"] != "http.disconnect":
                pass
        finally:
            connection.lost()
            frames.ticker.remove(stream)
            self._streams.discard(stream)
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


async def read_operation(request: HttpRequest, limit: int) -> OperationPayload:
    """The operation a GET's query string or a JSON POST body carries, checked.

    Raises HttpRefusal (400, 413, 415) saying what is wrong.
    """
    data: dict[str, Any]
    if request.method == "GET":
        params = request.query_params
        if len(request.scope.get("query_string", b"")) > limit:
            raise _too_big(limit)
        data = {name: params.get(name) for name in OPERATION_PARAMS}
        for name in JSON_PARAMS:
            raw = params.get(name)
            data[name] = _json(raw, name) if raw else None
    else:
        content_type = request.headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            raise HttpRefusal(415, "BAD_REQUEST", NOT_JSON)
        body = await _read_body(request, limit)
        parsed = _json(body, "body")
        if not isinstance(parsed, dict):
            raise HttpRefusal(400, "BAD_REQUEST", "The body must be one operation (an object).")
        data = parsed
    try:
        return operation_payload(data, "request payload")
    except MalformedRequest as bad:
        raise HttpRefusal(400, "BAD_REQUEST", str(bad)) from None


class StreamsOrView:
    """`/graphql` over HTTP: streaming subscriptions to `HttpStreams`, the requests of
    SSE's single-connection mode (PUT, DELETE, or naming a reserved stream) to `single`,
    the rest to the view."""

    def __init__(self, view: ASGIApp, streams: HttpStreams, single: ASGIApp) -> None:
        self.view = view
        self.streams = streams
        self.single = single

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["method"] in ("PUT", "DELETE") or _names_a_reservation(scope):
                await self.single(scope, receive, send)
                return
            frames = self.streams.frames_for(Headers(scope=scope))
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


def _has_subscription_spec(parameters: str) -> bool:
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "subscriptionspec" and value.strip().strip('"') == "1.0":
            return True
    return False


def _last_event_id(headers: Headers) -> int | None:
    raw = headers.get("last-event-id")
    if raw is None or not raw.strip():
        return None
    try:
        return resume_point(raw.strip())
    except BadUserInput:
        raise HttpRefusal(
            400, "BAD_USER_INPUT", "Last-Event-ID must be an event id from a PostEvent."
        ) from None


def _json(raw: str | bytes, name: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise HttpRefusal(400, "BAD_REQUEST", f"The {name} is not valid JSON.") from None


def _too_big(limit: int) -> HttpRefusal:
    return HttpRefusal(413, "PAYLOAD_TOO_LARGE", f"The operation is larger than {limit} bytes.")


async def _read_body(request: HttpRequest, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_big(limit)
    return bytes(body)


def cookie_header(request: HttpRequest, name: str, value: str, age: int) -> bytes:
    """The resume cookie: this path only, never sent cross-site, unreadable by scripts."""
    scope = request.scope
    path = scope.get("root_path", "") + scope["path"]
    secure = "; Secure" if request.url.scheme == "https" else ""
    return (
        f"{name}={value}; Max-Age={age}; Path={path}; HttpOnly; SameSite=Strict{secure}"
    ).encode("latin-1")
