"""One reserved stream of the single-connection mode: its operations and their frames.

Each operation's results go out wrapped with its id (`ReservedSubscriber`); the group's
payload is encoded once for all of a group's members (`Encoded`). The helpers below read
what a request names: the reservation's token and an operation's id.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from starlette.datastructures import Headers
from starlette.requests import Request as HttpRequest
from starlette.types import Scope

from gql_feed.live.close_codes import CloseCode
from gql_feed.live.frames import OutFrame
from gql_feed.live.groups import Group, Subscriber
from gql_feed.services.tokens import Claims
from gql_feed.transport.refusal import HttpRefusal
from gql_feed.transport.streams.reservations import Outcome
from gql_feed.transport.streams.sse import SseFraming
from gql_feed.transport.streams.stream_connection import StreamConnection

TOKEN_HEADER = "x-graphql-event-stream-token"  # noqa: S105
MAX_OPERATION_ID = 128
UNKNOWN = (
    "No stream is reserved under this token (it expired, its stream ended, or it is "
    "another login's): reserve one with PUT."
)
CROWDED = (
    "Too many operations (or bytes of them) wait for this stream: open it with GET, or "
    "let it take those first."
)


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
        self, stream: SingleStream, operation_id: str, group: Group, encoded: Encoded
    ) -> None:
        super().__init__(operation_id, "", stream.connection, group)
        self.stream = stream
        self.encoded = encoded
        self.head = b'event: next\ndata: {"id":' + orjson.dumps(operation_id) + b',"payload":'

    def send(self, event_id: int, payload: str, frames: dict[str, OutFrame] | None = None) -> None:
        self.stream.connection.send_bytes(self.head + self.encoded.of(payload) + b"}\n\n")


class Encoded:
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
        "runner",
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
        # Commands are run in order, one at a time (a stop may follow its start closely),
        # by one task (`runner`), at most MAX_QUEUED_COMMANDS waiting.
        self.commands: deque[bytes] = deque()
        self.runner: asyncio.Task[None] | None = None
        self.connection: StreamConnection  # set by SingleConnections.open

    def keepalive(self) -> None:
        self.connection.send_bytes(SseFraming.keepalive)
        self.checks(self)

    def init_timed_out(self) -> None:
        """Streams are authenticated before they start: there is no init to wait for."""

    def token_expired(self) -> None:
        self.connection.close(CloseCode.TOKEN_EXPIRED, "Token expired: log in again")


def complete_frame(operation_id: str) -> bytes:
    return b'event: complete\ndata: {"id":' + orjson.dumps(operation_id) + b"}\n\n"


def required_token(request: HttpRequest) -> str:
    token = stream_token(request.scope)
    if token is None:
        raise HttpRefusal(
            400,
            "BAD_REQUEST",
            f"Name the reserved stream: a {TOKEN_HEADER} header or ?token=.",
        )
    return token


def operation_id_of(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_OPERATION_ID:
        raise HttpRefusal(
            400,
            "BAD_REQUEST",
            f"operationId must be a string of 1 to {MAX_OPERATION_ID} characters "
            "(in the extensions of a POST, or the search parameters of a DELETE).",
        )
    return value


def check_outcome(outcome: Outcome, busy: str) -> None:
    if outcome is Outcome.CROWDED:
        raise HttpRefusal(429, "TOO_MANY_REQUESTS", CROWDED, {"retry-after": "1"})
    if outcome is Outcome.UNKNOWN:
        raise HttpRefusal(404, "NOT_FOUND", UNKNOWN)
    if outcome is Outcome.BUSY:
        raise HttpRefusal(409, "BAD_REQUEST", busy)
