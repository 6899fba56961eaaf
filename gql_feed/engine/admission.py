"""Who is asking: the first stage of every request, written once for every transport.

Each transport finds the credential where its clients put it: an `Authorization` header
(HTTP, SSE, multipart, single-connection requests), a `connection_init` payload (the
WebSocket: browsers cannot set headers on one, so clients put the token there, as
Apollo's `connectionParams` do: `{"Authorization": "Bearer …"}` in any case, also nested
under `headers`, or the raw token as `authToken` or `token`; the upgrade request's own
header is accepted too), or a stream ticket and its resume cookie (a browser's
`EventSource`). Whatever the credential, the same two checks follow here and nowhere
else: the token (or ticket) is good, and its user still exists. So every transport
refuses what any transport refuses: a removed user's token, ticket or cookie opens no
stream, joins no group and runs no operation.

Whether a user exists comes from the process's memory of known users
(`accounts.known_users`), so a reconnect storm makes no query per connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gql_feed.schema.context import Context, Services
from gql_feed.services.accounts import ACCOUNT_GONE
from gql_feed.services.errors import FeedError, Unauthenticated
from gql_feed.services.tokens import Claims, TokenService

MISSING_TOKEN = "A token is required: send {Authorization: 'Bearer <token>'} in connection_init."  # noqa: S105
MISSING_CREDENTIAL = (
    "A login is required: send 'Authorization: Bearer <token>', or (for EventSource) "
    "a ticket from the streamTicket mutation as ?ticket=…"
)
NEEDS_BEARER = "A login is required: send 'Authorization: Bearer <token>'."

# (name, value, max-age in seconds) of the cookie that lets a browser's stream resume.
ResumeCookie = tuple[str, str, int]


async def bearer(services: Services, header: str | None) -> Claims | None:
    """The claims of an `Authorization: Bearer` header, or None without one.

    Unauthenticated for a malformed header, a bad or expired token, or a removed user."""
    claims = services.tokens.verify_bearer(header)
    if claims is None:
        return None
    return await _still_a_user(services, claims)


async def http_context(services: Services, header: str | None, client: str) -> Context:
    """An HTTP operation's context. A bad token is kept, not raised: only the fields that
    need a login fail, so `login` and `signup` still work beside a dead token."""
    try:
        claims = await bearer(services, header)
    except FeedError as error:
        return Context(services, None, error, client)
    return Context(services, claims, None, client)


async def required_bearer(services: Services, header: str | None) -> Claims:
    """As `bearer`, but a missing header is refused too."""
    claims = await bearer(services, header)
    if claims is None:
        raise Unauthenticated(NEEDS_BEARER)
    return claims


async def stream_owner(
    services: Services, header: str | None, ticket: str | None, cookies: Mapping[str, str]
) -> tuple[Claims, ResumeCookie | None]:
    """Who opens a stream: a bearer header, or else a ticket (with its resume cookie)."""
    if header:
        claims = await bearer(services, header)
        if claims is not None:
            return claims, None
    if ticket:
        admitted = await services.tickets.admit(ticket, dict(cookies))
        return await _still_a_user(services, admitted.claims), admitted.cookie
    raise Unauthenticated(MISSING_CREDENTIAL)


async def connection_init(
    services: Services, payload: Mapping[str, Any] | None, header: str | None
) -> Claims:
    """A WebSocket's claims, from its `connection_init` payload or upgrade header."""
    return await _still_a_user(services, token_claims(services.tokens, payload, header))


async def _still_a_user(services: Services, claims: Claims) -> Claims:
    if not await services.accounts.known_users.exists(claims.user_id):
        raise Unauthenticated(ACCOUNT_GONE)
    return claims


def token_claims(
    tokens: TokenService, payload: Mapping[str, Any] | None, header: str | None
) -> Claims:
    """The claims of the token a `connection_init` payload (or else the upgrade request's
    header) carries; Unauthenticated for a missing, malformed or bad one."""
    payload = payload or {}
    bearer_value = _authorization(payload)
    if bearer_value is None and isinstance(payload.get("headers"), Mapping):
        bearer_value = _authorization(payload["headers"])
    if bearer_value is not None:
        claims = tokens.verify_bearer(bearer_value)
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


def _authorization(values: Mapping[str, Any]) -> str | None:
    for key, value in values.items():
        if isinstance(key, str) and key.lower() == "authorization":
            if not isinstance(value, str):
                raise Unauthenticated("Authorization must be 'Bearer <token>'.")
            return value
    return None
