"""uvicorn's HTTP/1.1 protocol, with the edge of the server held to GraphQL's shape.

Two things happen before the app sees a request, where uvicorn alone would answer in plain
text or not at all:

- Unreadable requests. uvicorn answers a request its parser cannot read with a plain-text
  400. The one a GraphQL client meets is a GET whose URL is longer than httptools reads
  (`MAX_URL_BYTES`, fixed in its compiled URL parser): a query of 60 KB, percent-encoded,
  is well over it although the query itself is within GQL_FEED_MAX_QUERY_BYTES. That
  request gets a JSON 414 saying to POST the query; anything else the parser refuses a
  JSON 400. uvicorn adds up a URL's pieces without a bound; here it stops at the limit.
- Slow headers. uvicorn bounds an idle keep-alive connection but not a request whose
  headers trickle in: a client sending a header byte now and then holds a connection and
  its memory for as long as it likes. So a request's headers must be complete within
  `GQL_FEED_REQUEST_HEADER_TIMEOUT_SECONDS` of the connection opening (or of the first
  byte of a later request on a kept-alive connection); past it the client gets 408
  (`REQUEST_TIMEOUT`) and the connection is closed. The body has a limit of its own
  (`transport.http.deadlines`).

The hooks this overrides are uvicorn's, not a public API: `compat.uvicorn` names them and
tests/compat/test_compat.py checks they are still there.
"""

from __future__ import annotations

import asyncio
import os

import orjson

from gql_feed.compat.uvicorn import HttpToolsProtocol

TIMEOUT_VARIABLE = "GQL_FEED_REQUEST_HEADER_TIMEOUT_SECONDS"
DEFAULT_SECONDS = 10.0
# httptools' `parse_url` refuses anything longer (its MAX_URL_LENGTH).
MAX_URL_BYTES = (1 << 16) - 1
URL_TOO_LONG = (
    f"The URL is longer than {MAX_URL_BYTES} bytes, the most this server reads; "
    "send a long query in the body of a POST (up to GQL_FEED_MAX_QUERY_BYTES)."
)
UNREADABLE = "The HTTP request could not be read."
REASONS = {400: b"Bad Request", 408: b"Request Timeout", 414: b"URI Too Long"}


def _seconds() -> float:
    """Set by `gql-feed serve` (cli) for every worker process, from the settings."""
    try:
        return float(os.environ.get(TIMEOUT_VARIABLE, DEFAULT_SECONDS))
    except ValueError:
        return DEFAULT_SECONDS


def refusal(status: int, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 response carrying one GraphQL error; the connection closes."""
    body = orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})
    head = (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n" % (status, REASONS[status], len(body))
    )
    return head + body


def timeout_response(seconds: float) -> bytes:
    message = f"The request's headers did not arrive within {seconds:g} seconds."
    return refusal(408, "REQUEST_TIMEOUT", message)


class FeedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol: unreadable requests refused in GraphQL's shape, and
    connections whose request headers come too slowly closed with 408."""

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

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_URL_BYTES:
            raise ValueError("URL too long")  # the parser reports a callback error

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        url = getattr(self, "url", b"")
        if isinstance(url, bytes) and len(url) > MAX_URL_BYTES:
            response = refusal(414, "PAYLOAD_TOO_LARGE", URL_TOO_LONG)
        else:
            response = refusal(400, "BAD_REQUEST", UNREADABLE)
        self.transport.write(response)
        self.transport.close()

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
