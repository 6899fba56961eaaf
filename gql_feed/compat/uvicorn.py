"""uvicorn's undocumented behaviour that gql_feed relies on.

Checked against uvicorn 0.54.0 with ws="websockets-sansio"; watched by tests/compat/test_compat.py.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any, Final

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as HttpToolsProtocol

logger = logging.getLogger(__name__)

SignalHandler = Callable[[int, FrameType | None], Any]


def server_sigterm_handler() -> SignalHandler | None:
    """uvicorn's SIGTERM handler, when the application runs under a `uvicorn.Server`.

    What this relies on is undocumented: `Server.serve` installs `Server.handle_exit` for
    SIGINT and SIGTERM (`capture_signals`, with `signal.signal`) before it runs the
    lifespan startup, and puts the previous handlers back when it returns; so during the
    startup the handler in place is uvicorn's, and one installed then, in its stead, is
    the one a SIGTERM reaches (runtime/shutdown.py wraps it). None when the handler in
    place is not a `uvicorn.Server`'s (another server, or none).
    """
    handler = signal.getsignal(signal.SIGTERM)
    if isinstance(getattr(handler, "__self__", None), uvicorn.Server) and callable(handler):
        return handler
    return None


SENT: Final = object()
"""What `start_send` returns when the frame was written without suspending."""


def start_send(coro: Coroutine[Any, Any, None]) -> object:
    """Run an ASGI `send` coroutine up to its first suspension: `SENT`, or what it yielded.

    What this relies on is undocumented: uvicorn's WebSocket `send` writes the frame into
    the transport and returns without suspending unless the transport is paused (the peer
    reads too slowly: `await self.writable.wait()` only waits while the event is clear).
    That is what makes fanning a frame out to thousands of sockets cost no task and no
    event-loop round trip per socket (live/connection.py). Were it to suspend every
    time, every frame would take the drain path: still correct, much slower. This holds
    for the default `websockets-sansio` implementation only: uvicorn's deprecated
    `websockets` one suspends even while the peer reads.
    Exceptions from the coroutine propagate.
    """
    try:
        return coro.send(None)
    except StopIteration:
        return SENT


_SANSIO_ATTRIBUTES = ("transport", "conn", "writable", "close_sent", "disconnected")


class DirectWriter:
    """Writes pre-built frames to the transport under one uvicorn WebSocket connection.

    What this relies on is undocumented: the ASGI `send` callable that uvicorn's
    `websockets-sansio` implementation hands the application is a bound method of its
    `WebSocketsSansIOProtocol`, whose `transport`, `conn` (websockets' sans-I/O
    `ServerProtocol`), `writable` (cleared while the transport is paused), `close_sent`
    and `disconnected` are read here. A frame written this way (live/frames.py) is
    exactly what `send` would write for `{"type": "websocket.send", "text": ...}` without
    per-message deflate: an unmasked text frame with FIN set. `reach` returns None
    whenever any of that does not hold: another implementation (`websockets`, `wsproto`),
    per-message deflate negotiated (its compressor keeps state from frame to frame), or
    a uvicorn whose protocol no longer looks like this.
    """

    __slots__ = ("_protocol",)

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol

    @classmethod
    def reach(cls, send: Callable[..., Any]) -> DirectWriter | None:
        """The writer under an accepted socket's ASGI `send`, or None (use `send`)."""
        protocol = getattr(send, "__self__", None)
        if protocol is None or not _is_sansio_protocol(protocol):
            return None
        if any(not hasattr(protocol, name) for name in _SANSIO_ATTRIBUTES):
            _warn_once("uvicorn's websockets-sansio protocol changed shape")
            return None
        if getattr(protocol.conn, "extensions", None):
            return None  # per-message deflate: frames depend on the connection's state
        return cls(protocol)

    def status(self) -> bool | None:
        """True: writable now. False: backed up (the caller falls back to `send`,
        which waits). None: closing or gone, nothing more can be written."""
        protocol = self._protocol
        if protocol.close_sent or protocol.disconnected or protocol.transport.is_closing():
            return None
        return bool(protocol.writable.is_set())

    def write(self, data: bytes) -> None:
        self._protocol.transport.write(data)


def _is_sansio_protocol(protocol: object) -> bool:
    try:
        from uvicorn.protocols.websockets.websockets_sansio_impl import (
            WebSocketsSansIOProtocol,
        )
    except ImportError:  # pragma: no cover - an uvicorn without it
        return False
    return isinstance(protocol, WebSocketsSansIOProtocol)


_warned = False


def _warn_once(what: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        logger.warning("%s: live frames go through the ordinary ASGI send", what)


# uvicorn's HTTP/1.1 protocol on httptools (what `uvicorn[standard]` picks), from a module
# uvicorn does not export; checked against 0.54.0. `transport.http.protocol` subclasses it
# and overrides these methods (parser callbacks and uvicorn's own plain-text refusal),
# reading the `url`, `transport` and `loop` attributes they set.
HTTP_PROTOCOL_HOOKS = (
    "connection_made",
    "connection_lost",
    "on_message_begin",
    "on_url",
    "on_headers_complete",
    "send_400_response",
)
