"""Live post events over WebSocket: our own small protocol layer, grouped fan-out.

strawberry parses, validates and executes; this package speaks the two subprotocols
over Starlette's WebSocket and delivers each event to thousands of sockets cheaply.
"""

from gql_feed.api.live.close_codes import CloseCode
from gql_feed.api.live.server import LiveServer

__all__ = ["CloseCode", "LiveServer"]
