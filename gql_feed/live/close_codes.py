"""WebSocket close codes, named once, with the exception that asks for one.

The 44xx codes are graphql-ws PROTOCOL.md's; graphql-ws clients retry after 1001, 1013,
4403, 4408 and 4440 but never after 4400, 4401, 4406, 4409, 4429 or 4500, which mean the
client itself (or the server) is broken, nor after 1009: the client treats every 1xxx
code except 1000, 1001, 1005, 1006, 1012, 1013 and 1014 as fatal (`isFatalInternalCloseCode`
in its client.ts). 4440 is ours: the connection's token expired, so the client should come
back with a fresh one rather than retry as it is.
"""

from __future__ import annotations

from enum import IntEnum

MAX_REASON_BYTES = 123  # RFC 6455: the close frame's payload is at most 125 bytes


# The reason given with INTERNAL_SERVER_ERROR: the exception itself is logged, never sent.
INTERNAL_REASON = "Internal server error"


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    MESSAGE_TOO_BIG = 1009
    TRY_AGAIN_LATER = 1013
    BAD_REQUEST = 4400
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    SUBPROTOCOL_NOT_ACCEPTABLE = 4406
    CONNECTION_INIT_TIMEOUT = 4408
    SUBSCRIBER_ALREADY_EXISTS = 4409
    TOO_MANY_INIT_REQUESTS = 4429
    TOKEN_EXPIRED = 4440
    INTERNAL_SERVER_ERROR = 4500


class CloseConnection(Exception):
    """Raised by a message handler: the connection must end with this code and reason."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(f"{int(code)} {reason}")
        self.code = code
        self.reason = fit_reason(reason)


def fit_reason(reason: str) -> str:
    """A close reason cut to what a close frame can carry, on a character boundary."""
    encoded = reason.encode()
    if len(encoded) <= MAX_REASON_BYTES:
        return reason
    return encoded[:MAX_REASON_BYTES].decode(errors="ignore")
