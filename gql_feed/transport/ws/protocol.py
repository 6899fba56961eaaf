"""What both subprotocols share: one connection's state, and running its operations.

A subclass per subprotocol validates each message into its typed dict and dispatches it
to one `handle_<type>` method; those call `authenticate`, `start` and `stop` here. The
only differences left to the subclasses are message names and error framing.

Per connection there is no task while it is idle: a live subscription is an entry in
its group. A task exists only while an operation being prepared waits (an APQ lookup in
Redis: the socket's other messages must not wait behind it), while a query or mutation
runs, or while a resumed subscription replays from the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson
from graphql import GraphQLError, OperationType
from starlette.types import Scope

from gql_feed.config import Settings
from gql_feed.engine import admission
from gql_feed.engine.document_refusals import DocumentRefused
from gql_feed.engine.documents import Invalid, Operation
from gql_feed.engine.requests import OperationPayload
from gql_feed.engine.results import feed_error, json_text
from gql_feed.live.close_codes import INTERNAL_REASON, CloseCode, CloseConnection
from gql_feed.live.connection import Connection, CoroutineSend, Resume
from gql_feed.live.groups import Group, Subscriber
from gql_feed.live.operations import Operations, Request
from gql_feed.services.errors import BadUserInput, EventLogExpired, FeedError
from gql_feed.services.tokens import Claims, TokenService

logger = logging.getLogger(__name__)

NO_UPLOADS = "Files cannot be uploaded over a WebSocket; send this mutation over HTTP."


class TooManySubscriptions(FeedError):
    code = "TOO_MANY_SUBSCRIPTIONS"


class Starting:
    """An operation from its subscribe message to its first answer: being prepared, or
    (a query or mutation) running. `task` is set once it had to wait (see `start`)."""

    __slots__ = ("task",)

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None


async def _finish(resume: Resume) -> None:
    await resume


class LiveProtocol(ABC):
    # Thousands of these live at once: no per-instance __dict__.
    __slots__ = (
        "_prepared",
        "_stream_owner",
        "active",
        "claims",
        "connection",
        "expires_at",
        "init_deadline",
        "init_received",
        "operations",
        "scope",
        "settings",
        "tokens",
    )
    subprotocol: ClassVar[str]
    next_type: ClassVar[str]  # "next", or legacy "data"

    def __init__(
        self,
        operations: Operations,
        settings: Settings,
        tokens: TokenService,
        scope: Scope,
        send: CoroutineSend,
    ) -> None:
        self.operations = operations
        self.settings = settings
        self.tokens = tokens
        self.scope = scope
        self.connection = Connection(
            send, settings.ws_send_backlog, self.release, settings.ws_send_backlog_bytes
        )
        self.claims: Claims | None = None
        self.init_received = False
        self.init_deadline: float | None = time.monotonic() + settings.ws_init_timeout_seconds
        self.expires_at: float | None = None
        self.active: dict[str, Subscriber | Starting] = {}
        # Set once the last operation to start has its document (see _prepare_and_run).
        self._prepared: asyncio.Future[None] | None = None
        # The user this connection counts as a stream for (live.quotas), once known.
        self._stream_owner: int | None = None

    # Messages in.

    def receive(self, text: str) -> Awaitable[None] | None:
        """Parse one message and hand it to its handler.

        Handling is synchronous: an operation that must wait carries on as a task of its
        own (`start`), so no message waits behind another one's I/O. The one exception is
        `connection_init`, returned for the caller to await: until the connection is
        acknowledged nothing else it sends could be served anyway.
        """
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise CloseConnection(CloseCode.BAD_REQUEST, "Invalid message: not JSON") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise CloseConnection(CloseCode.BAD_REQUEST, "Invalid message: no type")
        return self.dispatch(message)

    @abstractmethod
    def dispatch(self, message: dict[str, Any]) -> Awaitable[None] | None:
        """Validate the message for its type and call its `handle_<type>` method."""

    # Messages out.

    @abstractmethod
    def keepalive(self) -> None: ...

    @abstractmethod
    def send_error(self, op_id: str, errors: list[GraphQLError]) -> None:
        """End operation `op_id` with request errors, the subprotocol's way."""

    def send_json(self, message: Mapping[str, Any]) -> None:
        self.connection.send_text(json_text(message))

    def send_complete(self, op_id: str) -> None:
        self.send_json({"id": op_id, "type": "complete"})

    def next_prefix(self, op_id: str) -> str:
        """A result frame up to its payload: the payload and a closing brace follow."""
        return '{"id":' + json_text(op_id) + ',"type":"' + self.next_type + '","payload":'

    # The ticker's clocks.

    def init_timed_out(self) -> None:
        self.connection.close(
            CloseCode.CONNECTION_INIT_TIMEOUT, "Connection initialisation timeout"
        )

    def token_expired(self) -> None:
        self.connection.close(CloseCode.TOKEN_EXPIRED, "Token expired")

    # Shared steps.

    async def authenticate(self, payload: Mapping[str, Any] | None) -> None:
        """Accept the connection's token; raises FeedError when there is no good one."""
        claims = await admission.connection_init(
            self.operations.services, payload, self._upgrade_authorization()
        )
        remaining = (claims.expires_at - datetime.now(UTC)).total_seconds()
        if not self.connection.closing:
            self.operations.quotas.open_stream(claims.user_id)  # TooManyStreams past the cap
            self._stream_owner = claims.user_id
        self.claims = claims
        self.expires_at = time.monotonic() + remaining
        self.init_deadline = None

    def _upgrade_authorization(self) -> str | None:
        """The upgrade request's Authorization header, read from the scope only when needed."""
        for name, value in self.scope["headers"]:
            if name == b"authorization":
                return bytes(value).decode("latin-1")
        return None

    @property
    def client(self) -> str:
        address = self.scope.get("client")
        return str(address[0]) if address else "unknown"

    def check_init(self) -> None:
        if self.init_received:
            raise CloseConnection(
                CloseCode.TOO_MANY_INIT_REQUESTS, "Too many initialisation requests"
            )
        self.init_received = True

    def start(self, op_id: str, payload: OperationPayload, claims: Claims) -> None:
        """Run what the client asked for under `op_id` (which the caller checked is free).

        The caller has checked that the connection is authenticated (`claims`). The
        operation runs at once, inside this message's handling, up to the first point
        where it has to wait (an APQ lookup in Redis, a query's database reads): usually
        there is none, and a subscriber is in its group before the next message is read.
        If there is one, the rest runs as a task, so the socket's next messages (a ping, a
        `complete` for this very id) are handled without waiting behind it.
        """
        if self.expires_at is not None and time.monotonic() >= self.expires_at:
            raise CloseConnection(CloseCode.TOKEN_EXPIRED, "Token expired")
        if len(self.active) >= self.settings.ws_max_subscriptions:
            limit = self.settings.ws_max_subscriptions
            refusal = TooManySubscriptions(f"At most {limit} operations per connection.")
            self.send_error(op_id, [feed_error(refusal)])
            return
        starting = Starting()
        self.active[op_id] = starting
        run = self._start(op_id, starting, payload, claims)
        try:
            waiting_on = run.send(None)
        except StopIteration:
            return
        starting.task = asyncio.create_task(_finish(Resume(run, waiting_on)))

    async def _start(
        self, op_id: str, starting: Starting, payload: OperationPayload, claims: Claims
    ) -> None:
        try:
            await self._prepare_and_run(op_id, starting, payload, claims)
        except Exception:
            logger.exception("Starting a live operation failed")
            self.connection.close(CloseCode.INTERNAL_SERVER_ERROR, INTERNAL_REASON)

    async def _prepare_and_run(
        self, op_id: str, starting: Starting, payload: OperationPayload, claims: Claims
    ) -> None:
        prepared = await self._prepare(op_id, starting, payload)
        if prepared is None:
            return
        request, operation = prepared
        if self.connection.closing or self.active.get(op_id) is not starting:
            return
        if isinstance(operation, Invalid):
            self._fail(op_id, starting, operation.errors)
        elif operation.kind is OperationType.SUBSCRIPTION:
            self._subscribe(op_id, starting, operation, request, claims)
        elif operation.sends_upload(request.variables):
            self._fail(op_id, starting, [feed_error(BadUserInput({"image": NO_UPLOADS}))])
        else:
            await self._run_once(op_id, starting, request, claims)

    async def _prepare(
        self, op_id: str, starting: Starting, payload: OperationPayload
    ) -> tuple[Request, Operation | Invalid] | None:
        """The operation's document, found and checked in the order the messages came.

        A client may send a query with its APQ hash and, right behind it, the hash alone,
        expecting the first to have registered it. Only this step waits for the one
        before it; pings and `complete`s never do.
        """
        before, mine = self._prepared, asyncio.get_running_loop().create_future()
        self._prepared = mine
        try:
            if before is not None and not before.done():
                # Shielded: this operation may be cancelled while it waits (its own
                # `complete`), and that must not cancel the one before it's future,
                # which that one then could not resolve (InvalidStateError: 4500).
                await asyncio.shield(before)
            try:
                query = await self.operations.persisted.resolve_payload(payload)
            except DocumentRefused as refusal:
                self._fail(op_id, starting, [feed_error(refusal)])
                return None
            request = Request(query, payload.get("operationName"), payload.get("variables") or {})
            return request, await self.operations.prepare(request)
        finally:
            mine.set_result(None)
            if self._prepared is mine:
                self._prepared = None

    def _fail(self, op_id: str, starting: Starting, errors: list[GraphQLError]) -> None:
        """End the operation still starting under `op_id` with request errors."""
        if self.active.get(op_id) is starting:
            del self.active[op_id]
            self.send_error(op_id, errors)

    def stop(self, op_id: str) -> bool:
        """End an operation the client no longer wants; False if it was not running."""
        entry = self.active.pop(op_id, None)
        if entry is None:
            return False
        self._discard(entry)
        return True

    def release(self) -> None:
        """The connection is over: free every operation now (called once, by Connection)."""
        self.init_deadline = self.expires_at = None  # nothing left for the ticker to do
        owner, self._stream_owner = self._stream_owner, None
        if owner is not None:
            self.operations.quotas.close_stream(owner)
        active, self.active = self.active, {}
        for entry in active.values():
            self._discard(entry)

    def _subscribe(
        self,
        op_id: str,
        starting: Starting,
        operation: Operation,
        request: Request,
        claims: Claims,
    ) -> None:
        prefix = self.next_prefix(op_id)
        connection = self.connection

        def make_subscriber(group: Group) -> Subscriber:
            return Subscriber(op_id, prefix, connection, group)

        held = {entry.group.key for entry in self.active.values() if isinstance(entry, Subscriber)}
        joined = self.operations.subscribe(operation, request, claims, make_subscriber, held)
        if isinstance(joined, list):
            self._fail(op_id, starting, joined)
            return
        subscriber = joined.subscriber
        self.active[op_id] = subscriber
        if joined.after is not None:
            subscriber.replay = asyncio.create_task(
                self._replay(subscriber, joined.after, joined.upto)
            )

    async def _replay(self, subscriber: Subscriber, after: int, upto: int) -> None:
        try:
            await self.operations.replay(subscriber, after, upto)
        except EventLogExpired as expired:
            subscriber.replay = None
            if self.active.get(subscriber.id) is subscriber:
                self.stop(subscriber.id)
                self.send_error(subscriber.id, [feed_error(expired)])
        except Exception:
            logger.exception("Replaying events for a live subscription failed")
            self.connection.close(CloseCode.INTERNAL_SERVER_ERROR, INTERNAL_REASON)
        finally:
            subscriber.replay = None

    async def _run_once(
        self, op_id: str, starting: Starting, request: Request, claims: Claims
    ) -> None:
        try:
            payload = await self.operations.execute(request, claims, self.client)
        except Exception:
            logger.exception("A query or mutation over the WebSocket failed")
            self.connection.close(CloseCode.INTERNAL_SERVER_ERROR, INTERNAL_REASON)
            return
        if self.active.get(op_id) is not starting:
            return
        del self.active[op_id]
        self.connection.send_text(self.next_prefix(op_id) + payload + "}")
        self.send_complete(op_id)

    def _discard(self, entry: Subscriber | Starting) -> None:
        if isinstance(entry, Subscriber):
            self.operations.unsubscribe(entry)
            if entry.replay is not None:
                entry.replay.cancel()
        elif entry.task is not None:
            # Not at once: a task cancelled before its first step never reaches the
            # operation's coroutine (driven by hand so far), which would then be closed
            # with GeneratorExit instead of cancelled where it waits. Its first step was
            # scheduled first, so this comes after it.
            asyncio.get_running_loop().call_soon(entry.task.cancel)
