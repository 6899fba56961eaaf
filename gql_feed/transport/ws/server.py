"""GraphQL over WebSocket: both subprotocols on one route.

The server is an ASGI endpoint (reached through `route.LiveRoute`). A call serves one
socket for its whole life: it picks the subprotocol, reads messages and hands each to
the protocol handler, and frees everything when the socket ends. Whatever a handler
raises closes only that socket (4500, reason masked, the exception logged): one broken
client never touches the others.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import cast

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from gql_feed.config import Settings
from gql_feed.live.close_codes import INTERNAL_REASON, CloseCode, CloseConnection
from gql_feed.live.connection import Connection, CoroutineSend
from gql_feed.live.operations import Operations
from gql_feed.live.ticker import Ticker
from gql_feed.transport.ws.legacy_ws import LegacyWsProtocol
from gql_feed.transport.ws.protocol import LiveProtocol
from gql_feed.transport.ws.transport_ws import TransportWsProtocol

logger = logging.getLogger(__name__)

# In order of preference, when a client offers both.
PROTOCOLS: tuple[type[LiveProtocol], ...] = (TransportWsProtocol, LegacyWsProtocol)
FLUSH_SECONDS = 5.0


class WebSocketServer:
    def __init__(self, operations: Operations, settings: Settings, ticker: Ticker) -> None:
        self.operations = operations
        self.settings = settings
        self.ticker = ticker
        self._protocols: set[LiveProtocol] = set()

    def __len__(self) -> int:
        return len(self._protocols)

    def close_all(self, code: int, reason: str) -> list[Connection]:
        """Close every socket; their connections, to wait for their last frames."""
        connections = [protocol.connection for protocol in tuple(self._protocols)]
        for connection in connections:
            connection.close(code, reason)
        return connections

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        protocol_class = choose(scope.get("subprotocols") or ())
        try:
            if protocol_class is None:
                await websocket.accept()
                await websocket.close(
                    CloseCode.SUBPROTOCOL_NOT_ACCEPTABLE, "Subprotocol not acceptable"
                )
                return
            await websocket.accept(subprotocol=protocol_class.subprotocol)
        except (WebSocketDisconnect, OSError):
            return  # gone during the handshake
        # ASGI servers' send callables are coroutine functions (see `connection`).
        raw_send = cast(CoroutineSend, send)
        protocol = protocol_class(
            self.operations, self.settings, self.operations.services.tokens, scope, raw_send
        )
        self._protocols.add(protocol)
        self.ticker.add(protocol)
        try:
            await self._serve(websocket, protocol)
        except Exception:
            logger.exception("A live connection failed")
            protocol.connection.close(CloseCode.INTERNAL_SERVER_ERROR, INTERNAL_REASON)
        finally:
            protocol.connection.lost()
            self.ticker.remove(protocol)
            self._protocols.discard(protocol)
            await protocol.connection.flushed(FLUSH_SECONDS)

    async def _serve(self, websocket: WebSocket, protocol: LiveProtocol) -> None:
        connection = protocol.connection
        limit = self.settings.ws_max_message_bytes
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if connection.closing:
                continue
            text = message.get("text")
            try:
                if text is None:
                    raise CloseConnection(CloseCode.BAD_REQUEST, "Messages must be text frames")
                if len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit):
                    raise CloseConnection(
                        CloseCode.MESSAGE_TOO_BIG, f"Message larger than {limit} bytes"
                    )
                pending = protocol.receive(text)
                if pending is not None:
                    await pending
            except CloseConnection as close:
                connection.close(close.code, close.reason)
            except Exception:
                logger.exception("Handling a live message failed")
                connection.close(CloseCode.INTERNAL_SERVER_ERROR, INTERNAL_REASON)


def choose(offered: Sequence[str]) -> type[LiveProtocol] | None:
    for protocol in PROTOCOLS:
        if protocol.subprotocol in offered:
            return protocol
    return None
