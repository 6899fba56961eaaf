"""TokenService: HS256 tokens whose issuer, audience, subject and expiry are always
checked, and a cache of verified tokens that never outlives a token's expiry.

Expiry is reached on a clock the test moves on (PyJWT's and the service's), not waited for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from gql_feed.services import tokens as tokens_module
from gql_feed.services.errors import Unauthenticated
from gql_feed.services.tokens import Claims, TokenService
from tests.helpers.token_clock import FrozenDatetime, SkippingDatetime

SECRET = "unit-test-secret-0123456789abcdef0123456789-0123456789abcdef0123456789"
ISSUER, AUDIENCE = "gql_feed-issuer", "gql_feed-audience"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> type[SkippingDatetime]:
    clock = type("Clock", (SkippingDatetime,), {"skipped": timedelta(0)})
    monkeypatch.setattr(tokens_module, "datetime", clock)
    monkeypatch.setattr(jwt.api_jwt, "datetime", clock)
    return clock


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token actually decoded (not served from the cache)."""
    seen: list[str] = []
    real: Callable[..., Any] = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return seen


def service(ttl: int = 60) -> TokenService:
    return TokenService(SECRET, ISSUER, AUDIENCE, ttl_seconds=ttl)


def forge(claims: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def good_claims(**changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims = {"sub": "7", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + timedelta(60)}
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def refused(tokens: TokenService, token: str, message: str = "Invalid token.") -> None:
    with pytest.raises(Unauthenticated) as raised:
        tokens.verify(token)
    assert raised.value.message == message


def test_an_issued_token_carries_its_claims() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    token, expires_at = service(ttl=90).issue(42)
    after = datetime.now(UTC)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert claims["sub"] == "42"
    assert claims["exp"] - claims["iat"] == 90
    assert before + timedelta(seconds=90) <= expires_at <= after + timedelta(seconds=90)
    assert claims["exp"] == expires_at.timestamp()
    assert service().verify(token) == Claims(42, expires_at)


def test_cached_token_still_expires(clock: type[SkippingDatetime], decodes: list[str]) -> None:
    tokens = service(ttl=30)
    token, _ = tokens.issue(7)
    first = tokens.verify(token)
    assert tokens.verify(token) is first  # served from the cache
    assert decodes == [token]
    assert first.user_id == 7
    clock.advance(29)
    assert tokens.verify(token) is first
    clock.advance(2)
    refused(tokens, token, "Your token has expired; log in again.")
    refused(tokens, token, "Your token has expired; log in again.")  # and not cached again


def test_refused_tokens_are_not_cached(decodes: list[str]) -> None:
    tokens = service()
    other = TokenService("another-secret-0123456789abcdef0123456789", ISSUER, AUDIENCE, 60)
    forged, _ = other.issue(1)
    for _ in range(2):
        refused(tokens, forged)
    assert decodes == [forged, forged]


def test_the_cache_keeps_the_most_recently_used(
    monkeypatch: pytest.MonkeyPatch, decodes: list[str]
) -> None:
    monkeypatch.setattr(tokens_module, "VERIFIED_CACHE_SIZE", 2)
    tokens = service()
    a, b, c = (tokens.issue(n)[0] for n in (1, 2, 3))
    for token in (a, b, a, c):  # a used again, so b is the least recently used
        tokens.verify(token)
    assert decodes == [a, b, c]
    decodes.clear()
    assert [tokens.verify(token).user_id for token in (a, c, b)] == [1, 3, 2]
    assert decodes == [b]


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(good_claims(iss="someone-else"), id="issuer"),
        pytest.param(good_claims(aud="someone-else"), id="audience"),
        pytest.param(good_claims(exp=None), id="no expiry"),
        pytest.param(good_claims(iss=None), id="no issuer"),
        pytest.param(good_claims(aud=None), id="no audience"),
        pytest.param(good_claims(sub=None), id="no subject"),
        pytest.param(good_claims(sub="0"), id="subject 0"),
        pytest.param(good_claims(sub="-3"), id="negative subject"),
        pytest.param(good_claims(sub=str(2**63)), id="subject past 64 bits"),
        pytest.param(good_claims(sub=str(2**64 + 5)), id="subject far past 64 bits"),
        pytest.param(good_claims(sub="seven"), id="subject not a number"),
    ],
)
def test_claims_that_are_refused(claims: dict[str, Any]) -> None:
    refused(service(), forge(claims))


def test_the_largest_subject_is_accepted() -> None:
    assert service().verify(forge(good_claims(sub=str(2**63 - 1)))).user_id == 2**63 - 1
    assert service().verify(forge(good_claims(sub="1"))).user_id == 1


def test_other_algorithms_and_secrets_are_refused() -> None:
    refused(service(), forge(good_claims(), algorithm="HS512"))
    refused(
        service(),
        forge(
            good_claims(),
            secret="not-the-secret-0123456789abcdef0123456789-0123456789abcdef01234567",
        ),
    )
    unsigned = jwt.encode(good_claims(), None, algorithm="none")  # type: ignore[arg-type]
    refused(service(), unsigned)
    refused(service(), "not a token at all")


def test_an_expired_token_is_told_apart() -> None:
    past = datetime.now(UTC) - timedelta(seconds=5)
    refused(service(), forge(good_claims(exp=past)), "Your token has expired; log in again.")


def test_bearer_headers() -> None:
    tokens = service()
    token, _ = tokens.issue(5)
    assert tokens.verify_bearer(None) is None
    assert tokens.verify_bearer("") is None
    assert tokens.verify_bearer(f"Bearer {token}") == tokens.verify(token)
    assert tokens.verify_bearer(f"  bEaReR {token}  ").user_id == 5  # type: ignore[union-attr]
    for header in (
        f"Basic {token}",
        f"Token {token}",
        f"Digest {token}",
        "Bearer",
        "Bearer  ",
        token,
    ):
        with pytest.raises(Unauthenticated) as raised:
            tokens.verify_bearer(header)
        assert raised.value.message == "The Authorization header must be 'Bearer <token>'."
    with pytest.raises(Unauthenticated, match="Invalid token"):
        tokens.verify_bearer("Bearer not-a-token")


def test_a_cached_token_ends_at_its_very_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    """At the instant of `exp` a token is expired (as PyJWT has it), cached or not."""
    start = datetime.now(UTC).replace(microsecond=0)
    frozen = type("Frozen", (FrozenDatetime,), {"at": start})
    monkeypatch.setattr(tokens_module, "datetime", frozen)
    monkeypatch.setattr(jwt.api_jwt, "datetime", frozen)
    tokens = service(ttl=30)
    token, expires_at = tokens.issue(7)
    assert expires_at == start + timedelta(seconds=30)
    assert tokens.verify(token).user_id == 7
    frozen.at = expires_at - timedelta(microseconds=1)
    assert tokens.verify(token).user_id == 7
    frozen.at = expires_at
    refused(tokens, token, "Your token has expired; log in again.")


def test_cached_claims_cannot_be_changed_by_one_caller_for_all() -> None:
    tokens = service()
    token, _ = tokens.issue(7)
    claims = tokens.verify(token)
    with pytest.raises(FrozenInstanceError):
        claims.user_id = 8  # type: ignore[misc]
    assert tokens.verify(token).user_id == 7
