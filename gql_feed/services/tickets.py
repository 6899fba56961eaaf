"""Stream tickets: how a page whose `EventSource` cannot send headers proves who it is.

A long-lived access token in a URL ends up in server logs, proxy logs and browser
history. So an authenticated client asks for a ticket (the `streamTicket` mutation) and
puts that in the stream's URL instead: it is good for `TICKET_SECONDS`, opens one stream
only (a second use is refused), and cannot be used as an access token (its audience
differs). The stream it opens ends when the access token it came from would have expired.

A browser's `EventSource` reconnects by itself with the same URL, so with the ticket
already spent. The answer that opened the stream therefore sets an HttpOnly,
SameSite=Strict cookie bound to this ticket (`resume_cookie`): the same browser may
reopen the ticket's stream until the access token expires, while the URL alone, found in
a log, opens nothing.

Spent tickets are remembered until they expire: in Redis when the event bus is Redis
(so every process refuses a ticket any one of them took), otherwise in this process.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import jwt

from gql_feed.services.errors import Unauthenticated
from gql_feed.services.tokens import ALGORITHM, MAX_ID, Claims

TICKET_SECONDS = 60
COOKIE_PREFIX = "gql_feed_stream_"
SPENT = "This stream ticket was already used, or has expired: ask for a new one (streamTicket)."


class SpentTickets(Protocol):
    async def spend(self, ticket_id: str, until: float) -> bool:
        """Mark a ticket used; False if it already was."""


class LocalSpentTickets:
    """Spent tickets of this process, each forgotten once it has expired anyway."""

    def __init__(self) -> None:
        self._spent: OrderedDict[str, float] = OrderedDict()

    async def spend(self, ticket_id: str, until: float) -> bool:
        now = time.time()
        while self._spent:
            oldest, expiry = next(iter(self._spent.items()))
            if expiry > now:
                break
            del self._spent[oldest]
        if ticket_id in self._spent:
            return False
        self._spent[ticket_id] = until
        return True


class RedisSpentTickets:
    """Spent tickets shared by every process on the bus's Redis (SET NX with an expiry)."""

    def __init__(self, url: str, prefix: str) -> None:
        from redis.asyncio import Redis

        self.redis = Redis.from_url(url)
        self.prefix = prefix

    async def spend(self, ticket_id: str, until: float) -> bool:
        seconds = max(1, int(until - time.time()) + 1)
        return bool(await self.redis.set(self.prefix + ticket_id, b"1", nx=True, ex=seconds))

    async def close(self) -> None:
        await self.redis.aclose()


@dataclass(frozen=True, slots=True)
class Admission:
    """Who opened a stream; `cookie` (name, value, max-age) is set on a first use."""

    claims: Claims
    cookie: tuple[str, str, int] | None


@dataclass(frozen=True)
class StreamTickets:
    secret: str
    issuer: str
    audience: str
    spent: SpentTickets = field(default_factory=LocalSpentTickets)

    @property
    def _ticket_audience(self) -> str:
        return self.audience + ":stream-ticket"

    @property
    def _cookie_audience(self) -> str:
        return self.audience + ":stream-resume"

    def issue(self, claims: Claims) -> tuple[str, datetime]:
        """A ticket for the holder of `claims`, valid for TICKET_SECONDS at most."""
        now = datetime.now(UTC).replace(microsecond=0)
        expires_at = min(now + timedelta(seconds=TICKET_SECONDS), claims.expires_at)
        payload = {
            "sub": str(claims.user_id),
            "iss": self.issuer,
            "aud": self._ticket_audience,
            "iat": now,
            "exp": expires_at,
            "jti": secrets.token_urlsafe(16),
            "tex": int(claims.expires_at.timestamp()),
        }
        return jwt.encode(payload, self.secret, algorithm=ALGORITHM), expires_at

    async def admit(self, ticket: str, cookies: dict[str, str]) -> Admission:
        """The stream's owner; raises Unauthenticated for a bad, spent or expired ticket."""
        payload = self._decode(ticket, self._ticket_audience, verify_exp=False)
        ticket_id = payload["jti"]
        if not isinstance(ticket_id, str) or not ticket_id.isascii() or len(ticket_id) > 64:
            raise Unauthenticated("Invalid stream ticket.")
        token_expiry = datetime.fromtimestamp(payload["tex"], UTC)
        claims = Claims(_user_id(payload), token_expiry)
        now = time.time()
        if token_expiry.timestamp() <= now:
            raise Unauthenticated("The login behind this stream ticket has expired.")
        cookie_name = COOKIE_PREFIX + ticket_id
        if payload["exp"] > now and await self.spent.spend(ticket_id, payload["exp"]):
            cookie = self._cookie(ticket_id, claims)
            return Admission(claims, (cookie_name, cookie, int(token_expiry.timestamp() - now)))
        resume = cookies.get(cookie_name)
        if resume is not None:
            proof = self._decode(resume, self._cookie_audience, verify_exp=True)
            if proof["jti"] == ticket_id and _user_id(proof) == claims.user_id:
                return Admission(claims, None)
        raise Unauthenticated(SPENT)

    def _cookie(self, ticket_id: str, claims: Claims) -> str:
        payload = {
            "sub": str(claims.user_id),
            "iss": self.issuer,
            "aud": self._cookie_audience,
            "exp": claims.expires_at,
            "jti": ticket_id,
        }
        return jwt.encode(payload, self.secret, algorithm=ALGORITHM)

    def _decode(self, value: str, audience: str, *, verify_exp: bool) -> dict[str, Any]:
        try:
            payload: dict[str, Any] = jwt.decode(
                value,
                self.secret,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                audience=audience,
                options={
                    "require": ["exp", "iss", "aud", "sub", "jti"],
                    "verify_exp": verify_exp,
                },
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated(SPENT) from None
        except jwt.PyJWTError:
            raise Unauthenticated("Invalid stream ticket.") from None
        if audience == self._ticket_audience and not isinstance(payload.get("tex"), int):
            raise Unauthenticated("Invalid stream ticket.")
        return payload


def _user_id(payload: dict[str, Any]) -> int:
    try:
        user_id = int(payload["sub"])
    except (TypeError, ValueError):
        raise Unauthenticated("Invalid stream ticket.") from None
    if not 0 < user_id < MAX_ID:
        raise Unauthenticated("Invalid stream ticket.")
    return user_id
