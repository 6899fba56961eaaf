"""One subscription's HTTP response, as the fan-out sees it: a connection and a subscriber.

A `StreamSubscriber` only wraps the group's shared payload in its transport's frame, and
that frame is encoded once per group and event (`SharedFrames`), then written to every
stream with the same eager write and the same bounded backlog as a WebSocket's
(`StreamConnection`, a `Connection` whose messages are body chunks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from starlette.types import Message

from gql_feed.live.close_codes import CloseCode
from gql_feed.live.connection import DEFAULT_BYTE_LIMIT, Connection, CoroutineSend
from gql_feed.live.frames import OutFrame
from gql_feed.live.groups import Group, Subscriber
from gql_feed.live.operations import Operations
from gql_feed.live.ticker import Ticker


class Framing(Protocol):
    """The bytes of one transport: `sse.SseFraming`, `multipart.MultipartFraming`."""

    media_type: str
    transport: str  # as the metrics name it: "sse", "multipart"
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
        byte_limit: int = DEFAULT_BYTE_LIMIT,
    ) -> None:
        super().__init__(send, backlog_limit, release, byte_limit)
        self.framing = framing

    @property
    def transport(self) -> str:
        return self.framing.transport

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
