"""Who a live connection belongs to: the token from `connection_init`.

Browsers cannot set headers on a WebSocket, so clients put the token in the init
payload, as Apollo's `connectionParams` do: `{"Authorization": "Bearer …"}` (any case,
also nested under `headers`), or the raw token as `authToken` or `token`. A token in the
upgrade request's own Authorization header (non-browser clients) is accepted too.

A good token whose user no longer exists (removed from the database, or never there) is
refused like a bad one; whether it exists comes from the process's memory of known users
(`accounts.known_users`), so a reconnect storm makes no query per connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gql_feed.services.accounts import ACCOUNT_GONE
from gql_feed.services.errors import Unauthenticated
from gql_feed.services.known_users import KnownUsers
from gql_feed.services.tokens import Claims, TokenService

MISSING_TOKEN = "A token is required: send {Authorization: 'Bearer <token>'} in connection_init."  # noqa: S105


async def authenticate(
    tokens: TokenService,
    known_users: KnownUsers,
    payload: Mapping[str, Any] | None,
    header: str | None,
) -> Claims:
    """The connection's claims; Unauthenticated for a missing or bad token, or a user
    that does not exist."""
    claims = token_claims(tokens, payload, header)
    if not await known_users.exists(claims.user_id):
        raise Unauthenticated(ACCOUNT_GONE)
    return claims


def token_claims(
    tokens: TokenService, payload: Mapping[str, Any] | None, header: str | None
) -> Claims:
    """The claims of the token the client sent; Unauthenticated for a missing or bad one."""
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
