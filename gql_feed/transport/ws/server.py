"""The live endpoint: both subprotocols on one WebSocket route, fed by the event hub.

The server is an ASGI endpoint (reached through `route.LiveRoute`). A call serves one
socket for its whole life: it picks the subprotocol, reads messages and hands each to
the protocol handler, and frees everything when the socket ends. Whatever a handler
raises closes only that socket (4500, reason masked, the exception logged): one broken
client never touches the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import cast

import strawberry
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from gql_feed.config import Settings
from gql_feed.engine.parsing import DocumentParser
from gql_feed.engine.persisted import PersistedDocuments
from gql_feed.events.hub import HubEvent
from gql_feed.live import metrics
from gql_feed.live.close_codes import CloseCode, CloseConnection
from gql_feed.live.connection import Connection, CoroutineSend
from gql_feed.live.operations import Operations
from gql_feed.live.ticker import Ticker
from gql_feed.schema.context import Services
from gql_feed.transport.streams.reservations import reservations_for
from gql_feed.transport.streams.single import SingleConnections
from gql_feed.transport.streams.streams import HttpStreams
from gql_feed.transport.ws.legacy_ws import LegacyWsProtocol
from gql_feed.transport.ws.protocol import INTERNAL_REASON, LiveProtocol
from gql_feed.transport.ws.transport_ws import TransportWsProtocol

logger = logging.getLogger(__name__)

# In order of preference, when a client offers both.
PROTOCOLS: tuple[type[LiveProtocol], ...] = (TransportWsProtocol, LegacyWsProtocol)
FLUSH_SECONDS = 5.0
CLOSE_ALL_SECONDS = 3.0


class LiveServer:
    def __init__(
        self,
        schema: strawberry.Schema,
        services: Services,
        settings: Settings,
        documents: PersistedDocuments | None = None,
        parser: DocumentParser | None = None,
    ) -> None:
        """`documents` should be the HTTP view's, so that both share one APQ cache, and
        `parser` the schema's, so that both share one document cache."""
        self.settings = settings
        self.services = services
        self._owns_documents = documents is None
        if documents is None:
            documents = PersistedDocuments.from_settings(settings, schema)
        self.operations = Operations(schema, services, settings, documents, parser)
        self.ticker = Ticker(settings.ws_keepalive_seconds, settings.ws_init_timeout_seconds)
        self._protocols: set[LiveProtocol] = set()
        # Subscriptions over SSE and multipart HTTP: the same groups, other framings.
        self.streams = HttpStreams(self.operations, services, settings)
        # SSE's single-connection mode: reserved streams, operations sent to them.
        self.single = SingleConnections(self.streams, reservations_for(settings))

    async def start(self) -> None:
        """Take events from the hub (already started) and start the clocks."""
        self.services.hub.add_sink(self)
        self.ticker.start()
        self.streams.start()
        await self.single.start()
        groups, streams, single = self.operations.groups, self.streams, self.single
        metrics.bind(
            lambda: len(self._protocols) + len(streams) + len(single),
            lambda: groups.subscribers,
            lambda: len(groups),
        )

    async def close_all(self, code: int, reason: str) -> None:
        """Close every live socket and stream, and wait (a little) for the last frames."""
        protocols = tuple(self._protocols)
        connections: list[Connection] = [protocol.connection for protocol in protocols]
        for connection in connections:
            connection.close(code, reason)
        connections.extend(self.streams.close_all(code, reason))
        connections.extend(self.single.close_all(code, reason))
        await asyncio.gather(*(connection.flushed(CLOSE_ALL_SECONDS) for connection in connections))

    async def stop(self) -> None:
        """Close what is left with 1001 so clients reconnect, to another server if need be."""
        await self.ticker.stop()
        await self.streams.stop()
        self.single.close_all(CloseCode.GOING_AWAY, "Server shutting down; reconnect")
        await self.single.stop()
        for protocol in tuple(self._protocols):
            protocol.connection.close(CloseCode.GOING_AWAY, "Server shutting down")
        metrics.unbind()
        if self._owns_documents:
            await self.operations.persisted.close()

    async def deliver(self, event: HubEvent) -> None:
        await self.operations.groups.deliver(event)

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
            self.operations, self.settings, self.services.tokens, scope, raw_send
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
