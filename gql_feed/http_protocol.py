"""uvicorn's HTTP protocol, with a time limit on each request's headers.

uvicorn bounds an idle keep-alive connection (`timeout_keep_alive`) but not a request
whose headers trickle in: a client sending a header byte now and then holds a connection
and its memory for as long as it likes, and many such clients hold the server's file
descriptors. So a request's headers must be complete within
`GQL_FEED_REQUEST_HEADER_TIMEOUT_SECONDS` of the connection opening (or of the first byte
of a later request on a kept-alive connection); past it the client gets 408 with a
GraphQL error body (`extensions.code` REQUEST_TIMEOUT) and the connection is closed. The
body has a limit of its own (`api.deadlines`).

This subclasses uvicorn's httptools protocol (the one uvicorn picks when httptools is
installed, as `uvicorn[standard]` does) and relies on its parser callbacks
`on_message_begin` / `on_headers_complete` and on `connection_made` /
`connection_lost`; tests/test_request_deadlines.py fails if that stops working.
"""

from __future__ import annotations

import asyncio
import os

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

TIMEOUT_VARIABLE = "GQL_FEED_REQUEST_HEADER_TIMEOUT_SECONDS"
DEFAULT_SECONDS = 10.0


def _seconds() -> float:
    """Set by `gql-feed serve` (cli) for every worker process, from the settings."""
    try:
        return float(os.environ.get(TIMEOUT_VARIABLE, DEFAULT_SECONDS))
    except ValueError:
        return DEFAULT_SECONDS


def timeout_response(seconds: float) -> bytes:
    body = orjson.dumps(
        {
            "errors": [
                {
                    "message": f"The request's headers did not arrive within {seconds:g} seconds.",
                    "extensions": {"code": "REQUEST_TIMEOUT"},
                }
            ]
        }
    )
    return (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
    )


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's protocol, closing connections whose request headers come too slowly."""

    header_seconds = _seconds()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.header_seconds, self._headers_late)

    def _disarm(self) -> None:
        timer, self._header_timer = getattr(self, "_header_timer", None), None
        if timer is not None:
            timer.cancel()

    def _headers_late(self) -> None:
        self._header_timer = None
        transport = self.transport
        if transport.is_closing():
            return
        transport.write(timeout_response(self.header_seconds))
        transport.close()
