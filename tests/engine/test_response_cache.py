"""The response cache against real servers: kept answers are never stale, never another's.

Hits are seen through /metrics, so each test shows the cache was in play, not bypassed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.server import LiveServer
from tests.helpers.services import fresh_postgres_database

PAGE = (
    "query Page($page: Int!, $perPage: Int!) { posts(page: $page, perPage: $perPage) "
    "{ totalPosts posts { id title content creator { id name } } } }"
)
WITH_EMAIL = "query { posts(page: 1, perPage: 10) { posts { id creator { id email } } } }"
WITH_STATUS = "query { posts(page: 1, perPage: 10) { posts { id creator { id status } } } }"
FIRST_PAGE = {"page": 1, "perPage": 10}


def hits(server: LiveServer) -> float:
    for line in httpx.get(f"{server.url}/metrics", timeout=10).text.splitlines():
        if line.startswith("gql_feed_response_cache_hits_total "):
            return float(line.split()[1])
    raise AssertionError("no response cache metric")


def titles(body: dict[str, Any]) -> list[str]:
    assert "errors" not in body, body
    return [post["title"] for post in body["data"]["posts"]["posts"]]


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


def read_twice(server: LiveServer, token: str | None, query: str = PAGE) -> dict[str, Any]:
    """The same read twice; the second is the one a kept answer would serve."""
    first = server.graphql(query, FIRST_PAGE if "$page" in query else None, token)
    second = server.graphql(query, FIRST_PAGE if "$page" in query else None, token)
    assert first == second
    return second


def test_a_read_after_a_write_shows_the_write(live_server: LiveServer) -> None:
    token, _ = live_server.signup_and_login()
    live_server.create_post(token, "First post here")
    before = hits(live_server)
    assert titles(read_twice(live_server, token))[0] == "First post here"
    assert hits(live_server) > before

    created = live_server.create_post(token, "Second post here")
    assert titles(live_server.graphql(PAGE, FIRST_PAGE, token))[0] == "Second post here"
    read_twice(live_server, token)

    live_server.update_post(token, created["id"], "Second post, edited")
    assert titles(live_server.graphql(PAGE, FIRST_PAGE, token))[0] == "Second post, edited"
    read_twice(live_server, token)

    live_server.delete_post(token, created["id"])
    after_delete = live_server.graphql(PAGE, FIRST_PAGE, token)
    assert "Second post, edited" not in titles(after_delete)
    assert titles(after_delete)[0] == "First post here"


def test_a_viewer_dependent_field_is_never_served_to_another_viewer(
    live_server: LiveServer,
) -> None:
    ann_token, ann_id = live_server.signup_and_login(name="Ann")
    bob_token, bob_id = live_server.signup_and_login(name="Bob")
    live_server.create_post(ann_token, "Ann writes here")
    live_server.create_post(bob_token, "Bob writes here")
    before = hits(live_server)
    for token, own_id in ((ann_token, ann_id), (bob_token, bob_id), (ann_token, ann_id)):
        posts = read_twice(live_server, token, WITH_EMAIL)["data"]["posts"]["posts"]
        emails = {post["creator"]["id"]: post["creator"]["email"] for post in posts}
        assert emails[own_id] is not None
        assert all(email is None for user, email in emails.items() if user != own_id)
    assert hits(live_server) >= before + 3


def test_a_status_change_shows_at_once(live_server: LiveServer) -> None:
    """`User.status` changes without an event, so an answer selecting it is never kept
    (no hit), while the same server keeps the page without it (a hit: the cache is on)."""
    token, user_id = live_server.signup_and_login()
    live_server.create_post(token, "A post with a status")
    before = hits(live_server)
    read_twice(live_server, token, WITH_STATUS)
    assert hits(live_server) == before, "an answer with a status was served from the cache"
    read_twice(live_server, token)
    assert hits(live_server) > before, "the cache is off: this test would prove nothing"
    changed = live_server.graphql(
        'mutation { updateStatus(status: "Busy writing") { status } }', None, token
    )
    assert changed["data"]["updateStatus"]["status"] == "Busy writing"
    posts = live_server.graphql(WITH_STATUS, None, token)["data"]["posts"]["posts"]
    assert {post["creator"]["status"] for post in posts if post["creator"]["id"] == user_id} == {
        "Busy writing"
    }
    me = live_server.graphql("query { me { status } }", None, token)
    assert me["data"]["me"]["status"] == "Busy writing"


def test_errors_are_not_kept(live_server: LiveServer) -> None:
    token, _ = live_server.signup_and_login()
    before = hits(live_server)
    for _ in range(3):
        body = live_server.graphql(PAGE, {"page": 0, "perPage": 10}, token)
        assert codes(body) == ["BAD_USER_INPUT"]
    assert hits(live_server) == before


def test_a_kept_answer_is_never_served_without_a_valid_token(live_server: LiveServer) -> None:
    token, _ = live_server.signup_and_login()
    live_server.create_post(token, "Only for members")
    read_twice(live_server, token)
    before = hits(live_server)
    for bad in (None, "not-a-token", token[:-4] + "AAAA"):
        body = live_server.graphql(PAGE, FIRST_PAGE, bad)
        assert codes(body) == ["UNAUTHENTICATED"]
        assert body.get("data") is None
    assert hits(live_server) == before


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


def test_another_process_write_shows_even_when_its_event_never_arrives(
    shared_database: str, live_server_factory: Callable[..., LiveServer]
) -> None:
    """Two processes on one database, each with a bus of its own (memory://) and a poll
    too slow to matter: the reader hears of the writer's event only by asking the log,
    which every cached answer does before it is served."""
    env = {"GQL_FEED_DATABASE_URL": shared_database, "GQL_FEED_EVENT_POLL_SECONDS": "3600"}
    writer = live_server_factory(**env)
    reader = live_server_factory(**env)
    token, _ = writer.signup_and_login()
    writer.create_post(token, "Before the reader looked")
    # The reader's first answer is dropped unserved once it learns, from the log, of the
    # writer's events; the answers after that are kept.
    assert titles(reader.graphql(PAGE, FIRST_PAGE, token))[0] == "Before the reader looked"
    before = hits(reader)
    assert titles(read_twice(reader, token))[0] == "Before the reader looked"
    assert hits(reader) > before

    created = writer.create_post(token, "While the reader kept a page")
    assert titles(reader.graphql(PAGE, FIRST_PAGE, token))[0] == "While the reader kept a page"
    writer.delete_post(token, created["id"])
    assert titles(reader.graphql(PAGE, FIRST_PAGE, token))[0] == "Before the reader looked"
