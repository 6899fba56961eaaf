"""README promises over HTTP that no other test holds to: what the response cache never
keeps, busy password hashing, the size bound of stream requests, GQL_FEED_PUBLIC_URL."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from gql_feed.config import Settings
from tests.helpers.asgi import app_client, codes, create_post, login, signup, user_with_token
from tests.helpers.metrics import metric_samples
from tests.helpers.server import TLS, LiveServer

Factory = Callable[..., LiveServer]
PAGE = "query { posts(page: 1, perPage: 10) { totalPosts posts { id title } } }"


def cache_counts(server: LiveServer) -> tuple[float, float]:
    samples = metric_samples(server)
    return (
        samples["gql_feed_response_cache_hits_total"],
        samples["gql_feed_response_cache_misses_total"],
    )


# The response cache keeps JSON queries over POST only.


def test_answers_are_never_kept_for_get_multipart_batches_or_mutations(
    live_server: LiveServer,
) -> None:
    token, _ = live_server.signup_and_login()
    live_server.create_post(token, "Something to read")
    auth = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=live_server.url, headers=auth, timeout=30, verify=TLS) as http:
        # The same POST twice is kept: the cache is on here.
        before = cache_counts(live_server)
        for _ in range(2):
            assert "errors" not in http.post("/graphql", json={"query": PAGE}).json()
        assert cache_counts(live_server)[0] == before[0] + 1

        kinds: dict[str, Callable[[], httpx.Response]] = {
            "GET": lambda: http.get(
                "/graphql", params={"query": PAGE}, headers={"apollo-require-preflight": "1"}
            ),
            "multipart": lambda: http.post(
                "/graphql",
                data={"operations": json.dumps({"query": PAGE}), "map": "{}"},
                files={"unused": ("x", b"", "application/octet-stream")},
                headers={"apollo-require-preflight": "1"},
            ),
            "batch": lambda: http.post("/graphql", json=[{"query": PAGE}, {"query": PAGE}]),
            "mutation": lambda: http.post(
                "/graphql", json={"query": 'mutation { updateStatus(status: "Same") { status } }'}
            ),
        }
        for kind, send in kinds.items():
            before = cache_counts(live_server)
            for _ in range(2):
                response = send()
                assert response.status_code == 200, (kind, response.text)
                assert "errors" not in response.text, (kind, response.text)
            assert cache_counts(live_server) == before, f"a {kind} answer touched the cache"


def test_a_cache_of_zero_bytes_is_off(live_server_factory: Factory) -> None:
    server = live_server_factory(GQL_FEED_RESPONSE_CACHE_BYTES="0")
    token, _ = server.signup_and_login()
    server.create_post(token, "Read twice")
    for _ in range(3):
        assert "errors" not in server.graphql(PAGE, None, token)
    assert cache_counts(server) == (0, 0)


# Busy password hashing.


async def test_busy_password_hashing_is_refused_and_counts_as_no_failure(
    settings: Settings,
) -> None:
    """One hashing thread and no queue: of concurrent logins, those that would wait are
    refused at once ("the server is busy", retryAfter 1), and are no failed logins: the
    account is not locked by them."""
    max_failures = 3
    async with app_client(
        settings,
        password_hash_threads=1,
        password_hash_queue=0,
        login_max_failures=max_failures,
        login_lockout_seconds=60,
    ) as http:
        email = f"{uuid.uuid4().hex[:10]}@example.com"
        await signup(http, email)
        answers = await asyncio.gather(*(login(http, email, "wrong password") for _ in range(8)))
        busy = [body for body in answers if "busy" in str(body.get("errors"))]
        failed = [body for body in answers if codes(body) == ["UNAUTHENTICATED"]]
        assert busy, answers
        assert len(failed) < max_failures, "the test needs fewer real failures than the lock"
        assert len(busy) + len(failed) >= max_failures, answers  # had they counted, a lock
        for body in busy:
            [error] = body["errors"]
            assert error["extensions"] == {"code": "TOO_MANY_REQUESTS", "retryAfter": 1}
            assert error["message"].startswith("The server is busy"), error
        # Once they have all answered, the busy ones left no failure behind.
        body = await login(http, email)
        assert body["data"]["login"]["user"]["email"] == email, body


# Stream requests over GQL_FEED_WS_MAX_MESSAGE_BYTES.


def test_stream_requests_over_the_message_bound_are_413(live_server_factory: Factory) -> None:
    limit = 2_000
    server = live_server_factory(GQL_FEED_WS_MAX_MESSAGE_BYTES=str(limit))
    token, _ = server.signup_and_login()
    padding = "# " + "x" * limit + "\n"
    query = padding + "subscription { postEvents { id } }"
    auth = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=30, verify=TLS) as http:
        requests: dict[str, Callable[[], httpx.Response]] = {
            "SSE POST": lambda: http.post(
                "/graphql", json={"query": query}, headers={"accept": "text/event-stream"}
            ),
            "SSE GET": lambda: http.get(
                "/graphql", params={"query": query}, headers={"accept": "text/event-stream"}
            ),
            "multipart": lambda: http.post(
                "/graphql",
                json={"query": query},
                headers={"accept": 'multipart/mixed;subscriptionSpec="1.0"'},
            ),
        }
        for kind, send in requests.items():
            response = send()
            assert response.status_code == 413, (kind, response.text[:200])
        # Under the bound, the same stream opens.
        with http.stream(
            "POST",
            "/graphql",
            json={"query": "subscription { postEvents { id } }"},
            headers={"accept": "text/event-stream"},
        ) as response:
            assert response.status_code == 200


# GQL_FEED_PUBLIC_URL.


async def test_image_urls_are_built_on_the_public_url(settings: Settings) -> None:
    async with app_client(settings, public_url="https://media.example.com/feed/") as http:
        token, _ = await user_with_token(http)
        body: dict[str, Any] = await create_post(http, token)
        assert "errors" not in body, body
        image_url = body["data"]["createPost"]["imageUrl"]
        assert image_url.startswith("https://media.example.com/feed/"), image_url
        feed = await http.post(
            "/graphql",
            json={"query": "{ posts { posts { imageUrl } } }"},
            headers={"authorization": f"Bearer {token}"},
        )
        assert feed.json()["data"]["posts"]["posts"][0]["imageUrl"] == image_url
