"""JWT access tokens: HS256 only, with issuer, audience and expiry always checked."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import jwt

from gql_feed.services.errors import Unauthenticated

ALGORITHM = "HS256"
MAX_ID = 2**63  # ids are 64-bit database integers
VERIFIED_CACHE_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class Claims:
    user_id: int
    expires_at: datetime


@dataclass(frozen=True)
class TokenService:
    secret: str
    issuer: str
    audience: str
    ttl_seconds: int
    _verified: OrderedDict[str, Claims] = field(default_factory=OrderedDict, compare=False)

    def issue(self, user_id: int) -> tuple[str, datetime]:
        now = datetime.now(UTC).replace(microsecond=0)
        expires_at = now + timedelta(seconds=self.ttl_seconds)
        claims = {
            "sub": str(user_id),
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": expires_at,
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM), expires_at

    def verify(self, token: str) -> Claims:
        """Decode a token; any problem at all is the same UNAUTHENTICATED answer.

        Tokens already verified are remembered (bounded, least recently used dropped)
        until they expire: a reconnect storm, or one user's many tabs, presents the same
        token thousands of times, and decoding and checking it costs far more than a
        dictionary look-up. Only tokens that passed every check are kept.
        """
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at > datetime.now(UTC):
                self._verified.move_to_end(token)
                return known
            del self._verified[token]
        claims = self._decode(token)
        self._verified[token] = claims
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    def _decode(self, token: str) -> Claims:
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
            user_id = int(claims["sub"])
            if not 0 < user_id < MAX_ID:
                raise ValueError("subject out of range")
            return Claims(user_id, datetime.fromtimestamp(claims["exp"], UTC))
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("Your token has expired; log in again.") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise Unauthenticated("Invalid token.") from None

    def verify_bearer(self, header: str | None) -> Claims | None:
        """Claims from an `Authorization: Bearer …` value; None when there is no header."""
        if not header:
            return None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("The Authorization header must be 'Bearer <token>'.")
        return self.verify(token.strip())
