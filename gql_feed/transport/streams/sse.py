"""GraphQL over Server-Sent Events (graphql-sse PROTOCOL.md, distinct connections mode).

Each result is an `event: next` whose `data` is the execution result; a `postEvents`
result also carries `id: <event id>`, so a browser's `EventSource` sends it back as
`Last-Event-ID` when it reconnects and the stream resumes after it, as
`postEvents(after:)` would. `event: complete` (with the empty `data:` EventSource needs
to fire it) ends an operation that is over, after request errors for instance. A stream
the server has to end (shutdown, a slow consumer, an expired login) ends with a comment
and no `complete`: clients reconnect, and resume.
"""

from __future__ import annotations

from gql_feed.live.close_codes import CloseCode

MEDIA_TYPE = "text/event-stream; charset=utf-8"
COMPLETE = b"event: complete\ndata:\n\n"


class SseFraming:
    """The bytes of an SSE stream. Payloads are orjson's, on one line by construction."""

    media_type = MEDIA_TYPE
    transport = "sse"
    # Without a first chunk some browsers hold the stream's headers back.
    opening = b":\n\n"
    keepalive = b":\n\n"

    @staticmethod
    def next(event_id: int | None, payload: str) -> bytes:
        if event_id is None:
            return b"event: next\ndata: " + payload.encode() + b"\n\n"
        return b"id: %d\nevent: next\ndata: %s\n\n" % (event_id, payload.encode())

    @classmethod
    def result_then_complete(cls, payload: str) -> bytes:
        """A whole operation: one result (request errors, say), then its end."""
        return cls.next(None, payload) + COMPLETE

    @staticmethod
    def ending(code: int, reason: str) -> bytes:
        if code == CloseCode.NORMAL:
            return COMPLETE
        return b": " + reason.replace("\n", " ").encode() + b"\n\n"
