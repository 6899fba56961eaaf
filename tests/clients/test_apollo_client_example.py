"""The Apollo Client example (examples/apollo-client) against a real server, with Node.

Another user creates, edits and deletes a post over HTTP; after each, the example's
normalized cache must show it: the new post prepended to the first page, the edit merged
into `Post:<id>`, the deleted post gone from the page and evicted from the cache.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest

from tests.helpers.node_clients import npm_installed
from tests.helpers.paths import REPO
from tests.helpers.recipes import Recipe
from tests.helpers.server import LiveServer

EXAMPLE = REPO / "examples" / "apollo-client"
PASSWORD = "correct horse battery"  # what LiveServer.signup_and_login uses


@pytest.fixture(scope="module")
def example() -> Path:
    """The example, ready to run."""
    return npm_installed(EXAMPLE, "the Apollo Client example")


async def test_cache_follows_another_users_changes(example: Path, live_server: LiveServer) -> None:
    email = f"reader-{uuid.uuid4().hex[:10]}@example.com"
    await asyncio.to_thread(live_server.signup_and_login, email, "Reader")
    writer, _ = await asyncio.to_thread(live_server.signup_and_login, None, "Writer")
    older = await asyncio.to_thread(live_server.create_post, writer, "Already there")

    process = await asyncio.create_subprocess_exec(
        "node",
        "feed.mjs",
        cwd=example,
        env={
            **os.environ,
            "GQL_FEED_URL": live_server.graphql_url,
            "FEED_EMAIL": email,
            "FEED_PASSWORD": PASSWORD,
            "FEED_PER_PAGE": "5",
            "FEED_EXIT_AFTER": "3",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    run = Recipe(process)
    try:
        logged_in = await run.next("logged-in")
        assert logged_in["user"]["name"] == "Reader"
        ready = await run.next("ready")
        total = ready["page"]["totalPosts"]
        assert ready["page"]["posts"][0]["id"] == older["id"]
        assert f"Post:{older['id']}" in ready["posts"]

        created = await asyncio.to_thread(live_server.create_post, writer, "Fresh from HTTP")
        key = f"Post:{created['id']}"
        event = await run.next("event")
        assert (event["action"], event["postId"]) == ("CREATED", created["id"])
        assert event["page"]["totalPosts"] == total + 1
        assert [p["id"] for p in event["page"]["posts"][:2]] == [created["id"], older["id"]]
        assert event["page"]["posts"][0]["creator"]["name"] == "Writer"
        assert event["posts"][key]["title"] == "Fresh from HTTP"

        await asyncio.to_thread(live_server.update_post, writer, created["id"], "Edited title")
        event = await run.next("event")
        assert (event["action"], event["postId"]) == ("UPDATED", created["id"])
        assert event["posts"][key]["title"] == "Edited title"  # merged by Post:id
        assert event["page"]["posts"][0]["title"] == "Edited title"  # the page sees it
        assert event["page"]["totalPosts"] == total + 1

        await asyncio.to_thread(live_server.delete_post, writer, created["id"])
        event = await run.next("event")
        assert (event["action"], event["postId"]) == ("DELETED", created["id"])
        assert key not in event["posts"]  # evicted and collected
        assert f"Post:{older['id']}" in event["posts"]
        assert [p["id"] for p in event["page"]["posts"]][:1] == [older["id"]]
        assert event["page"]["totalPosts"] == total

        assert await asyncio.wait_for(process.wait(), 20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
