"""The client address behind the per-address limits: X-Forwarded-For counts only from a
proxy named in GQL_FEED_FORWARDED_ALLOW_IPS, so a client cannot rename itself per guess."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx

from tests.helpers.server import LiveServer

LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }"


def guess_from(server: LiveServer, forwarded_for: str) -> str | None:
    """One wrong login for a fresh email, claiming another address; the error code, if any."""
    response = httpx.post(
        server.graphql_url,
        json={"query": LOGIN, "variables": {"e": f"{uuid.uuid4().hex}@example.com", "p": "x"}},
        headers={"x-forwarded-for": forwarded_for},
        timeout=30,
    )
    errors = response.json().get("errors") or [{}]
    code: str | None = errors[0].get("extensions", {}).get("code")
    return code


def test_a_client_cannot_name_itself_someone_else(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory(GQL_FEED_LOGIN_MAX_FAILURES="2")
    codes = [guess_from(server, f"203.0.113.{n}") for n in range(1, 5)]
    # Unknown emails are wrong logins; every guess counts against 127.0.0.1 whatever it claims.
    assert codes[:2] == ["UNAUTHENTICATED", "UNAUTHENTICATED"]
    assert codes[2:] == ["TOO_MANY_REQUESTS", "TOO_MANY_REQUESTS"]


def test_a_named_proxy_forwards_the_clients_address(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory(
        GQL_FEED_LOGIN_MAX_FAILURES="2", GQL_FEED_FORWARDED_ALLOW_IPS='["127.0.0.1"]'
    )
    codes = [guess_from(server, f"203.0.113.{n}") for n in range(1, 5)]
    assert codes == ["UNAUTHENTICATED"] * 4
    codes = [guess_from(server, "198.51.100.9") for _ in range(3)]
    assert codes == ["UNAUTHENTICATED", "UNAUTHENTICATED", "TOO_MANY_REQUESTS"]
