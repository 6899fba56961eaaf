"""The urql recipe (examples/urql) against a real server, with urql's defaults: its Accept
header on every request, `cacheExchange` and `fetchExchange`. It logs in, reads, writes
and receives another user's posts, over `fetchSubscriptions` and over graphql-sse's
`subscriptionExchange`."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from tests.helpers.live import create_post, wait_for_values, wait_until_idle
from tests.helpers.node_clients import npm_installed
from tests.helpers.recipes import EXAMPLES, PASSWORD, recipe
from tests.helpers.server import LiveServer

URQL_ACCEPT = (
    "application/graphql-response+json, application/graphql+json, application/json, "
    "text/event-stream, multipart/mixed"
)


@pytest.fixture(scope="module")
def example() -> Path:
    return npm_installed(EXAMPLES / "urql", "the urql example")


@pytest.mark.parametrize("mode", ["fetch", "sse"])
async def test_urql_with_its_defaults(example: Path, live_server: LiveServer, mode: str) -> None:
    email = f"urql-{uuid.uuid4().hex[:10]}@example.com"
    await asyncio.to_thread(live_server.signup_and_login, email, "Uma")
    writer, _ = await asyncio.to_thread(live_server.signup_and_login, None, "Writer")
    env = {
        "GQL_FEED_URL": live_server.graphql_url,
        "FEED_EMAIL": email,
        "FEED_PASSWORD": PASSWORD,
        "FEED_MODE": mode,
        "FEED_STATUS": f"Reading over {mode}",
        "FEED_EXIT_AFTER": "2",
    }
    async with recipe(example, "feed.mjs", **env) as run:
        logged_in = await run.next("logged-in")
        assert logged_in["user"]["name"] == "Uma"
        ready = await run.next("ready")
        assert ready["me"]["name"] == "Uma"
        wrote = await run.next("wrote")
        assert wrote["user"]["status"] == f"Reading over {mode}"
        await run.next("subscribed")
        await wait_for_values(live_server, subscriptions=1)
        posts = [await create_post(live_server, writer, f"For urql {n}") for n in range(2)]
        events = await run.events(2)
        assert [e["post"]["id"] for e in events] == [p["id"] for p in posts]
        assert [e["action"] for e in events] == ["CREATED", "CREATED"]
        assert int(events[1]["id"]) == int(events[0]["id"]) + 1
        assert await asyncio.wait_for(run.process.wait(), 20) == 0

    answers = run.of("response")
    # urql's own Accept on every operation; queries and mutations come back as JSON.
    json_answers = [a for a in answers if a["accept"] == URQL_ACCEPT]
    assert len(json_answers) >= 3, answers
    assert all(a["status"] == 200 for a in answers), answers
    kinds = [a["contentType"].split(";")[0] for a in json_answers]
    assert kinds[:3] == ["application/graphql-response+json"] * 3, answers
    streamed = [a for a in answers if a["contentType"].startswith("text/event-stream")]
    assert len(streamed) == 1, answers  # the subscription, and only it
    await wait_until_idle(live_server)
