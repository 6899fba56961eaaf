"""TokenService: the verified-token cache never outlives a token's expiry."""

from __future__ import annotations

import time

import pytest

from gql_feed.services.errors import Unauthenticated
from gql_feed.services.tokens import TokenService

SECRET = "unit-test-secret-0123456789abcdef0123456789"


def test_cached_token_still_expires() -> None:
    tokens = TokenService(SECRET, "gql_feed", "gql_feed", ttl_seconds=1)
    token, expires_at = tokens.issue(7)
    first = tokens.verify(token)
    assert tokens.verify(token) is first  # served from the cache
    assert first.user_id == 7
    time.sleep(max(0.0, expires_at.timestamp() - time.time()) + 0.05)
    with pytest.raises(Unauthenticated):
        tokens.verify(token)


def test_refused_tokens_are_not_cached() -> None:
    tokens = TokenService(SECRET, "gql_feed", "gql_feed", ttl_seconds=60)
    other = TokenService("another-secret-0123456789abcdef0123456789", "gql_feed", "gql_feed", 60)
    forged, _ = other.issue(1)
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            tokens.verify(forged)
