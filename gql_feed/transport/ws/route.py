"""The live endpoint's way in: WebSocket requests for the GraphQL path skip the router.

Every ASGI layer a request passes through stays on the stack, as a suspended coroutine,
for as long as the request lasts. For an HTTP request that is milliseconds; for a live
socket it is hours, times thousands of sockets. Starlette's router and exception
middleware would keep about 4 KB of frames and closures per socket (and wrap each
frame the fan-out writes in one more coroutine). This middleware comes first in the
application's list (only Starlette's own error middleware wraps it) and hands the live
endpoint the server's own `receive` and `send`; everything else goes on to the
application. Its `__call__` returns the next awaitable instead of awaiting it, so it
adds no frame of its own. Neither CORS nor the request-body limit applies to
WebSockets, so a live socket skips nothing it needed.
"""

from __future__ import annotations

from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send


class LiveRoute:
    def __init__(self, app: ASGIApp, path: str, endpoint: ASGIApp) -> None:
        self.app = app
        self.path = path
        self.endpoint = endpoint

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "websocket" and self._route_path(scope) == self.path:
            return self.endpoint(scope, receive, send)
        return self.app(scope, receive, send)

    @staticmethod
    def _route_path(scope: Scope) -> str:
        """The path below the mount point, as Starlette's router matches it."""
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if not root or not path.startswith(root):
            return path
        rest = path[len(root) :]
        return rest if rest == "" or rest.startswith("/") else path
