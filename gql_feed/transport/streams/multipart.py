"""Apollo's multipart HTTP subscriptions (`multipart/mixed;subscriptionSpec="1.0"`).

The body is a multipart/mixed stream with boundary `graphql`. Each part is a JSON object:
`{"payload": <execution result>}` for a result, `{}` for the heartbeat sent every
HEARTBEAT_SECONDS, and `{"payload": null, "errors": [...]}` for a fatal transport error,
after which the stream ends. Apollo Client (`readMultipartBody`) hands a part on only
when it sees the boundary after it, so every part is followed at once by the next
`\\r\\n--graphql`; the last boundary gets its closing `--`. Lines end in CRLF.
"""

from __future__ import annotations

import orjson

from gql_feed.live.close_codes import CloseCode

BOUNDARY = b"\r\n--graphql"
PART = b"\r\nContent-Type: application/json\r\n\r\n"
END = b"--\r\n"
HEARTBEAT_SECONDS = 5.0
MEDIA_TYPE = 'multipart/mixed;boundary="graphql";subscriptionSpec="1.0"'

# Why the server ended a stream, as an `extensions.code` a client can act on.
ENDING_CODES: dict[int, str] = {
    CloseCode.GOING_AWAY: "SHUTTING_DOWN",
    CloseCode.TRY_AGAIN_LATER: "SLOW_CONSUMER",
    CloseCode.TOKEN_EXPIRED: "UNAUTHENTICATED",
}


def part(body: bytes) -> bytes:
    return PART + body + BOUNDARY


class MultipartFraming:
    media_type = MEDIA_TYPE
    transport = "multipart"
    opening = BOUNDARY
    keepalive = part(b"{}")

    @staticmethod
    def next(event_id: int | None, payload: str) -> bytes:
        return PART + b'{"payload":' + payload.encode() + b"}" + BOUNDARY

    @classmethod
    def result_then_complete(cls, payload: str) -> bytes:
        return cls.next(None, payload) + END

    @staticmethod
    def ending(code: int, reason: str) -> bytes:
        if code == CloseCode.NORMAL:
            return END
        error = {
            "message": reason,
            "extensions": {"code": ENDING_CODES.get(code, "INTERNAL_SERVER_ERROR")},
        }
        return part(orjson.dumps({"payload": None, "errors": [error]})) + END
