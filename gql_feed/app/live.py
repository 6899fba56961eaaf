"""Live delivery, put together: the hub feeds one fan-out, every transport reads from it.

One `Operations` (documents, groups, the per-event executions) serves the WebSocket, SSE,
multipart and single-connection streams alike, so an event is executed once per group
whatever transports its subscribers use. This is the only place that knows all of them:
it takes the hub's events, starts and stops the clocks, reports the gauges, and closes
every socket and stream on shutdown.
"""

from __future__ import annotations

import asyncio

import strawberry

from gql_feed.config import Settings
from gql_feed.engine.parsing import DocumentParser
from gql_feed.engine.persisted import PersistedDocuments
from gql_feed.events.hub import HubEvent
from gql_feed.live import metrics
from gql_feed.live.close_codes import CloseCode
from gql_feed.live.connection import Connection
from gql_feed.live.operations import Operations
from gql_feed.live.ticker import Ticker
from gql_feed.schema.context import Services
from gql_feed.transport.streams.reservations import reservations_for
from gql_feed.transport.streams.single import SingleConnections
from gql_feed.transport.streams.streams import HttpStreams
from gql_feed.transport.ws.server import WebSocketServer

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
        # Both WebSocket subprotocols (reached through `transport.ws.route.LiveRoute`).
        self.websockets = WebSocketServer(self.operations, settings, self.ticker)
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
        groups, websockets, streams, single = (
            self.operations.groups,
            self.websockets,
            self.streams,
            self.single,
        )
        metrics.bind(
            lambda: len(websockets) + len(streams) + len(single),
            lambda: groups.subscribers,
            lambda: len(groups),
            groups.by_transport,
        )

    async def close_all(self, code: int, reason: str) -> None:
        """Close every live socket and stream, and wait (a little) for the last frames."""
        connections: list[Connection] = self.websockets.close_all(code, reason)
        connections.extend(self.streams.close_all(code, reason))
        connections.extend(self.single.close_all(code, reason))
        await asyncio.gather(*(connection.flushed(CLOSE_ALL_SECONDS) for connection in connections))

    async def stop(self) -> None:
        """Close what is left with 1001 so clients reconnect, to another server if need be."""
        await self.ticker.stop()
        await self.streams.stop()
        self.single.close_all(CloseCode.GOING_AWAY, "Server shutting down; reconnect")
        await self.single.stop()
        self.websockets.close_all(CloseCode.GOING_AWAY, "Server shutting down")
        metrics.unbind()
        if self._owns_documents:
            await self.operations.persisted.close()

    async def deliver(self, event: HubEvent) -> None:
        await self.operations.groups.deliver(event)
