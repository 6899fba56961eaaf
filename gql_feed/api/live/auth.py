"""Who a live connection belongs to: the token from `connection_init`.

Browsers cannot set headers on a WebSocket, so clients put the token in the init
payload, as Apollo's `connectionParams` do: `{"Authorization": "Bearer …"}` (any case,
also nested under `headers`), or the raw token as `authToken` or `token`. A token in the
upgrade request's own Authorization header (non-browser clients) is accepted too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gql_feed.services.errors import Unauthenticated
from gql_feed.services.tokens import Claims, TokenService

MISSING_TOKEN = "A token is required: send {Authorization: 'Bearer <token>'} in connection_init."  # noqa: S105


def authenticate(
    tokens: TokenService, payload: Mapping[str, Any] | None, header: str | None
) -> Claims:
    """The connection's claims; raises Unauthenticated for a missing or bad token."""
    payload = payload or {}
    bearer = _bearer(payload)
    if bearer is None and isinstance(payload.get("headers"), Mapping):
        bearer = _bearer(payload["headers"])
    if bearer is not None:
        claims = tokens.verify_bearer(bearer)
        if claims is None:
            raise Unauthenticated(MISSING_TOKEN)
        return claims
    for key in ("authToken", "token"):
        raw = payload.get(key)
        if raw is not None:
            if not isinstance(raw, str) or not raw.strip():
                raise Unauthenticated(f"{key} must be a token string.")
            token = raw.strip()
            if token.lower().startswith("bearer "):
                token = token[7:].strip()
            return tokens.verify(token)
    if header:
        claims = tokens.verify_bearer(header)
        if claims is not None:
            return claims
    raise Unauthenticated(MISSING_TOKEN)


def _bearer(values: Mapping[str, Any]) -> str | None:
    for key, value in values.items():
        if isinstance(key, str) and key.lower() == "authorization":
            if not isinstance(value, str):
                raise Unauthenticated("Authorization must be 'Bearer <token>'.")
            return value
    return None
