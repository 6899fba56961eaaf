"""Password guessing: failures are counted per account and per client address; past the
allowance both are refused with TOO_MANY_REQUESTS for a while, even the right password."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from gql_feed.config import Settings
from tests.helpers.asgi import PASSWORD, codes, gql, login, signup
from tests.helpers.clock import SkippingClock

MAX_FAILURES = 3
WRONG = "not the password"

Clients = Callable[[str], Any]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"login_max_failures": MAX_FAILURES, "login_lockout_seconds": 60}
    )


@pytest.fixture
def from_address(client: httpx.AsyncClient) -> Callable[[str], Any]:
    """`async with from_address("198.51.100.7") as http`: the same app, another client."""

    @asynccontextmanager
    async def connect(address: str) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=client.app, client=(address, 40000))  # type: ignore[attr-defined]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http

    return connect


async def account(http: httpx.AsyncClient) -> str:
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    await signup(http, email)
    return email


def refused(body: dict[str, Any]) -> None:
    assert codes(body) == ["TOO_MANY_REQUESTS"], body
    assert body.get("data") is None
    error = body["errors"][0]
    assert 0 < error["extensions"]["retryAfter"] <= 60
    assert "try again in" in error["message"]
    assert "eyJ" not in json.dumps(body), "no token (a JWT starts eyJ) anywhere in a refusal"


async def test_failures_lock_the_account_even_for_the_right_password(
    client: httpx.AsyncClient, from_address: Clients
) -> None:
    email = await account(client)
    other = await account(client)
    async with from_address("198.51.100.1") as guesser:
        for _ in range(MAX_FAILURES):
            assert codes(await login(guesser, email, WRONG)) == ["UNAUTHENTICATED"]
        refused(await login(guesser, email, WRONG))
    # The owner, from elsewhere, is refused too: the lock is on the account.
    async with from_address("203.0.113.9") as owner:
        refused(await login(owner, email))
        # Another account is unaffected.
        body = await login(owner, other)
        assert body["data"]["login"]["token"], body


async def test_failures_lock_the_client_address(
    client: httpx.AsyncClient, from_address: Clients
) -> None:
    """Guessing many accounts from one address (even unknown ones) locks the address."""
    victim = await account(client)
    async with from_address("198.51.100.2") as guesser:
        for _ in range(MAX_FAILURES):
            unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
            assert codes(await login(guesser, unknown, WRONG)) == ["UNAUTHENTICATED"]
        refused(await login(guesser, victim))
    async with from_address("203.0.113.10") as someone_else:
        body = await login(someone_else, victim)
        assert body["data"]["login"]["token"], body


async def test_success_resets_the_accounts_count(
    client: httpx.AsyncClient, from_address: Clients
) -> None:
    """The right password clears the account's failures, wherever they came from."""
    email = await account(client)
    for round_ in range(3):
        for guess in range(MAX_FAILURES - 1):
            async with from_address(f"198.51.100.{30 + 10 * round_ + guess}") as guesser:
                assert codes(await login(guesser, email, WRONG)) == ["UNAUTHENTICATED"]
        async with from_address(f"203.0.113.{20 + round_}") as owner:
            body = await login(owner, email)
            assert body["data"]["login"]["token"], body


async def test_a_real_account_buys_no_guesses_at_others(
    client: httpx.AsyncClient, from_address: Clients
) -> None:
    """An attacker with one account of their own, logging in to it between guesses at
    other accounts from one address, is still locked out after the allowance: a success
    takes back only its own count, not the address's failures."""
    own = await account(client)
    victims = [await account(client) for _ in range(MAX_FAILURES + 1)]
    async with from_address("198.51.100.40") as attacker:
        for victim in victims[:MAX_FAILURES]:
            body = await login(attacker, own)
            assert body["data"]["login"]["token"], body
            assert codes(await login(attacker, victim, WRONG)) == ["UNAUTHENTICATED"]
        refused(await login(attacker, victims[-1], WRONG))
        refused(await login(attacker, own))
    # The victims themselves, elsewhere, are unaffected: each had one failure only.
    async with from_address("203.0.113.40") as owner:
        body = await login(owner, victims[0])
        assert body["data"]["login"]["token"], body


async def test_successes_alone_never_lock_an_address(
    client: httpx.AsyncClient, from_address: Clients
) -> None:
    """Many people behind one address (an office's NAT) logging in rightly are never refused."""
    emails = [await account(client) for _ in range(MAX_FAILURES * 2)]
    async with from_address("198.51.100.41") as office:
        for email in emails:
            body = await login(office, email)
            assert body["data"]["login"]["token"], body


async def test_the_lock_expires(
    client: httpx.AsyncClient, from_address: Clients, throttle_clock: SkippingClock
) -> None:
    """The lock is longer than a password check takes on a busy machine (seconds), or it
    could run out before the refusal is even asked for. Its time then passes on the
    throttle's clock, without waiting for it."""
    throttle = client.app.state.services.accounts.throttle  # type: ignore[attr-defined]
    throttle.lockout_seconds = 6
    email = await account(client)
    async with from_address("198.51.100.4") as http:
        for _ in range(MAX_FAILURES):
            await login(http, email, WRONG)
        body = await login(http, email)
        assert codes(body) == ["TOO_MANY_REQUESTS"]
        retry_after = body["errors"][0]["extensions"]["retryAfter"]
        assert 0 < retry_after <= 6
        throttle_clock.advance(retry_after + 0.1)
        body = await login(http, email)
        assert body["data"]["login"]["token"], body


async def test_aliased_guesses_get_no_extra_tries(
    client: httpx.AsyncClient, from_address: Clients
) -> None:
    """Mutation fields run one after another and `login` is non-null, so the first failure
    ends the operation: a flood of aliases is one guess, and the lock still comes."""
    email = await account(client)
    guesses = " ".join(
        f'g{i}: login(email: "{email}", password: "guess {i}") {{ token }}' for i in range(8)
    )
    async with from_address("198.51.100.5") as http:
        for _ in range(MAX_FAILURES):
            body = await gql(http, f"mutation {{ {guesses} }}")
            assert body.get("data") is None
            assert codes(body) == ["UNAUTHENTICATED"]
        refused(await gql(http, f"mutation {{ {guesses} }}"))


async def test_locked_login_changes_nothing(
    client: httpx.AsyncClient, from_address: Clients, throttle_clock: SkippingClock
) -> None:
    """A refused login issues no token and leaves the locked account as it was: once the
    lock has run out, its owner logs in with the same password and finds it unchanged."""
    email = await account(client)
    async with from_address("198.51.100.6") as http:
        for _ in range(MAX_FAILURES):
            await login(http, email, WRONG)
        refused(await login(http, email, PASSWORD))
        refused(await login(http, email, PASSWORD))
    throttle_clock.advance(61)
    async with from_address("203.0.113.11") as http:
        body = await login(http, email)
        assert body["data"]["login"]["user"]["email"] == email, body
        token = body["data"]["login"]["token"]
        me = await gql(http, "{ me { email status } }", token=token)
        assert me["data"]["me"] == {"email": email, "status": "I am new!"}


async def test_concurrent_guesses_stop_at_the_allowance(
    client: httpx.AsyncClient, from_address: Clients
) -> None:
    email = await account(client)
    guess = {
        "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
    }
    batch = [{**guess, "variables": {"e": email, "p": f"guess {i}"}} for i in range(8)]
    async with from_address("198.51.100.8") as http:
        response = await http.post("/graphql", json=batch)
    results = [codes(body) for body in response.json()]
    assert len(results) == len(batch), results
    assert results.count(["UNAUTHENTICATED"]) <= MAX_FAILURES, results
    refusals = results.count(["TOO_MANY_REQUESTS"])
    assert refusals >= len(batch) - MAX_FAILURES, results
    assert refusals + results.count(["UNAUTHENTICATED"]) == len(batch), results
