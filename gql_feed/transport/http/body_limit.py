"""A bound on HTTP request bodies, enforced while they stream in.

Starlette and python-multipart read a whole body (spooling uploads to disk) before any
resolver runs, so without a bound one request could fill memory or the disk. The bound
counts the bytes actually received, so a missing or understated Content-Length (chunked
transfer) does not get around it, and an overstated one is refused before reading at all.
The answer is a 413 carrying a GraphQL-shaped error, so GraphQL clients can show it.
Nothing has run by then: a refused request leaves no data and no file behind.

Starlette (1.x) has a middleware of its own (`starlette.middleware.body_limit`), checked
against 1.10 and not used: it answers in plain text ("Content Too Large", no
`extensions.code`), and it stops the app by raising a private `HTTPException` subclass out
of `receive`, which the upload parser (transport/http/view.py) would answer as a 400; here
the app is told the client went away and gives up quietly.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql_feed.transport.refusal import HttpRefusal

TOO_LARGE_CODE = "PAYLOAD_TOO_LARGE"


class BodySizeLimit:
    """ASGI middleware refusing HTTP request bodies larger than `max_bytes` with 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return

        received = 0
        refused = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # To the app the client has gone away: it stops reading and gives up.
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused and not response_started:
                return  # whatever the app says about a body it never saw whole
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise
        if refused and not response_started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = (
            f"The request body is larger than {self.max_bytes} bytes, the most this server accepts."
        )
        # The rest of the body is never read, so the connection cannot be reused.
        refusal = HttpRefusal(413, TOO_LARGE_CODE, message, {"connection": "close"})
        await refusal.response()(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
