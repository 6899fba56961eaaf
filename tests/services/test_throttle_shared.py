"""Login and signup throttles count across processes when the bus is Redis.

Each app instance here stands for a process of `gql-feed serve --workers N` (or another
host on the same bus): with per-process counts every one of them gave the full allowance,
so N workers multiplied every limit by N.
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest

from gql_feed.config import Settings
from gql_feed.services.errors import TooManyAttempts
from gql_feed.services.throttle import Counts, LoginThrottle
from tests.helpers.asgi import PASSWORD, app_client, codes, gql, login, signup
from tests.helpers.server import TEST_SECRET
from tests.helpers.services import redis_url, unique_channel

pytestmark = pytest.mark.redis

WRONG = "not the password"
SIGNUP = "mutation($i: SignupInput!) { signup(input: $i) { id } }"


def shared_bus_settings(tmp_path: Path, **update: object) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'feed.db'}",
        upload_dir=tmp_path / "uploads",
        jwt_secret=TEST_SECRET,  # type: ignore[arg-type]
        gc_freeze=False,
        broadcast_url=redis_url(),
        broadcast_channel=unique_channel(),
        _env_file=None,  # type: ignore[call-arg]
        **update,
    )


async def test_failed_logins_on_two_apps_count_against_one_allowance(tmp_path: Path) -> None:
    settings = shared_bus_settings(tmp_path, login_max_failures=4, login_lockout_seconds=60)
    async with app_client(settings) as one, app_client(settings) as two:
        email = f"{uuid.uuid4().hex[:10]}@example.com"
        await signup(one, email)
        for http in (one, two, one, two):
            assert codes(await login(http, email, WRONG)) == ["UNAUTHENTICATED"]
        for http in (one, two):  # the allowance is spent on both, even the right password
            body = await login(http, email)
            assert codes(body) == ["TOO_MANY_REQUESTS"], body
            assert 0 < body["errors"][0]["extensions"]["retryAfter"] <= 60


async def test_signups_on_two_apps_count_against_one_allowance(tmp_path: Path) -> None:
    settings = shared_bus_settings(tmp_path, signup_max_per_address=2)
    async with app_client(settings) as one, app_client(settings) as two:
        await signup(one)
        await signup(two)
        for http in (one, two):
            email = f"{uuid.uuid4().hex[:10]}@example.com"
            body = await gql(
                http, SIGNUP, {"i": {"email": email, "name": "A", "password": PASSWORD}}
            )
            assert codes(body) == ["TOO_MANY_REQUESTS"], body


async def test_apps_on_other_channels_of_one_redis_count_apart(tmp_path: Path) -> None:
    """The counts belong to one deployment (its bus channel), not to the Redis server."""
    first = shared_bus_settings(tmp_path, signup_max_per_address=1)
    second = first.model_copy(update={"broadcast_channel": unique_channel()})
    async with app_client(first) as one, app_client(second) as two:
        await signup(one)
        await signup(two)


async def test_a_redis_that_does_not_answer_leaves_the_counts_in_this_process() -> None:
    """A broker outage must not turn logins and signups into server errors: the counts
    are kept in the process meanwhile, and still lock out a guesser."""
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens there now
    counts = Counts.for_bus(f"redis://127.0.0.1:{port}/0", "gql_feed:throttle")
    throttle = LoginThrottle(max_failures=2, lockout_seconds=60, counts=counts)
    try:
        await throttle.attempt("ann@example.com", "10.0.0.1")
        await throttle.attempt("ann@example.com", "10.0.0.1")
        with pytest.raises(TooManyAttempts):
            await throttle.attempt("ann@example.com", "10.0.0.1")
    finally:
        await counts.close()
