"""Hands the live layer the server's own ASGI `send` for WebSocket connections.

Starlette's exception middleware wraps `send` in one more coroutine per message, and
Starlette's `WebSocket.send` adds its state checks. For a reply that is nothing, but a
fan-out writes thousands of frames per event, and those two layers were a tenth of
the time per frame. This middleware sits outside them and records the unwrapped
callable in the scope; the live layer writes through it (see `connection`).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

RAW_SEND = "gql_feed.raw_send"


class ExposeRawSend:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[RAW_SEND] = send
        await self.app(scope, receive, send)
