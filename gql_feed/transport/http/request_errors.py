"""Requests the HTTP parser refuses, answered as GraphQL errors rather than plain text.

uvicorn answers a request its parser cannot read with a plain-text 400 before the app
sees it. The one a GraphQL client meets is a GET whose URL is longer than httptools
reads (`MAX_URL_BYTES`, fixed in its compiled URL parser): a query of 60 KB,
percent-encoded, is well over it although the query itself is within
GQL_FEED_MAX_QUERY_BYTES. That request gets a 414 here, saying to POST the query, with an
`extensions.code` as every other refusal has; anything else the parser refuses a 400.

uvicorn adds up a URL's pieces without a bound; here it stops at `MAX_URL_BYTES`.
What this relies on is undocumented: uvicorn's httptools protocol calls
`send_400_response(msg)` for every parse error (an exception raised in `on_url` is one),
and keeps the URL read so far in `url` (checked against uvicorn 0.54.0). Should that
change, uvicorn's own answer remains.
"""

from __future__ import annotations

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# httptools' `parse_url` refuses anything longer (its MAX_URL_LENGTH).
MAX_URL_BYTES = (1 << 16) - 1
URL_TOO_LONG = (
    f"The URL is longer than {MAX_URL_BYTES} bytes, the most this server reads; "
    "send a long query in the body of a POST (up to GQL_FEED_MAX_QUERY_BYTES)."
)
UNREADABLE = "The HTTP request could not be read."


def refusal(status: int, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 response carrying one GraphQL error; the connection closes."""
    body = orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})
    reason = b"URI Too Long" if status == 414 else b"Bad Request"
    head = (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n" % (status, reason, len(body))
    )
    return head + body


class JsonRefusalsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing unreadable requests in GraphQL's shape."""

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_URL_BYTES:
            raise ValueError("URL too long")  # the parser reports a callback error

    def send_400_response(self, msg: str) -> None:
        url = getattr(self, "url", b"")
        if isinstance(url, bytes) and len(url) > MAX_URL_BYTES:
            response = refusal(414, "PAYLOAD_TOO_LARGE", URL_TOO_LONG)
        else:
            response = refusal(400, "BAD_REQUEST", UNREADABLE)
        self.transport.write(response)
        self.transport.close()
