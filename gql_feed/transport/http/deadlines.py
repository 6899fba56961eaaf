"""A request's body must arrive within a time limit: 408 past it.

Without one, a client trickling a body (a byte now and then) held its request open for
as long as it liked, and with it whatever the request had taken: a connection, a task,
and before the writes-first gate learned to wait for bodies, the gate itself (every other
client's reads were slowed for 65 s by one anonymous multipart request). The clock starts
when the request's headers are in (their own limit is `transport.http.protocol`'s) and stops at the
body's last byte; what a response then streams (SSE, multipart) is not limited here.

As `limits.BodySizeLimit` does for a body too large, the application is told that the
client went away (it stops reading and gives up), and the client gets the refusal: a
GraphQL error body with `extensions.code` REQUEST_TIMEOUT, and the connection closed.
"""

from __future__ import annotations

import asyncio
import time

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql_feed.transport.refusal import HttpRefusal

TIMEOUT_CODE = "REQUEST_TIMEOUT"


class BodyDeadline:
    """ASGI middleware: an HTTP request body not complete within `seconds` gets 408."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.seconds
        complete = False
        timed_out = False
        response_started = False

        async def timed_receive() -> Message:
            nonlocal complete, timed_out
            if timed_out:
                return {"type": "http.disconnect"}
            if complete:
                return await receive()
            try:
                async with asyncio.timeout_at(_loop_time(deadline)):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if timed_out and not response_started:
                return  # whatever the app says about a body it never got whole
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except ClientDisconnect:
            if not timed_out:
                return  # the client left before its body was in: no one to answer
        except Exception:
            if not timed_out:
                raise
        if timed_out and not response_started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"The request body did not arrive within {self.seconds:g} seconds."
        # The rest of the body is never read, so the connection cannot be reused.
        refusal = HttpRefusal(408, TIMEOUT_CODE, message, {"connection": "close"})
        await refusal.response()(scope, receive, send)


def _loop_time(deadline: float) -> float:
    """`deadline` (time.monotonic) on the running loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline - time.monotonic())
