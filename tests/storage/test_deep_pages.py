"""`posts(page:)` cannot make the event loop pay for the size of the table.

Its OFFSET walks every row before the page and its `count(*)` every row, so on a big
table each distinct page held the loop (about 50 ms at 500k posts, 330 ms at 2M). Now a
page reaches at most `GQL_FEED_MAX_PAGE_OFFSET` posts deep (BAD_USER_INPUT past it), and
once the table holds more than `LOOP_SCAN_ROWS` posts, or before its size is known, the
read runs on a reader thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import httpx
from sqlalchemy import event

from gql_feed.services.posts import PostService
from gql_feed.storage.database import Database, migrate
from tests.helpers.live import signup
from tests.helpers.server import TLS, LiveServer

PAGE = "query($p: Int!) { posts(page: $p, perPage: 50) { totalPosts posts { id } } }"
BIG = 30_000  # three times services.posts.LOOP_SCAN_ROWS
LOOP_STALL_SECONDS = 0.5  # a generous sanity bound, not a measurement


def fill(path: Path, posts: int) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO users (email, name, password_hash, status, created_at) "
            "VALUES ('a@example.com', 'A', 'x', 'I am new!', '2026-12-01 00:00:00')"
        )
        connection.executemany(
            "INSERT INTO posts (title, content, image_name, creator_id, created_at, updated_at)"
            " VALUES (?, 'Some content', 'x.png', 1, '2026-12-01 00:00:00', '2026-12-01 00:00:00')",
            ((f"Post {n}",) for n in range(posts)),
        )


async def test_a_page_past_the_deepest_is_refused(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory()
    token, _ = await signup(server)
    async with httpx.AsyncClient(timeout=30, verify=TLS) as http:
        auth = {"authorization": f"Bearer {token}"}

        async def page(number: int) -> dict[str, Any]:
            body = {"query": PAGE, "variables": {"p": number}}
            response = await http.post(server.graphql_url, json=body, headers=auth)
            assert response.status_code == 200
            answer: dict[str, Any] = response.json()
            return answer

        deepest = await page(201)  # starts after 10,000 posts: the deepest allowed
        assert "errors" not in deepest, deepest
        refused = await page(202)
        assert refused["data"] is None
        error = refused["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "feed(first:, after:)" in error["extensions"]["fields"]["page"]


async def test_counting_a_big_table_leaves_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "feed.db"
    db = Database.open(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate(db.engine)
        fill(path, BIG)
        reader = db.sqlite_reader
        assert reader is not None
        assert reader.here is not None
        loop_thread = threading.get_ident()
        counted_on: list[bool] = []

        def on_execute(*args: object) -> None:
            statement = str(args[2])
            if "count(" in statement:
                counted_on.append(threading.get_ident() == loop_thread)

        event.listen(reader.here, "before_cursor_execute", on_execute)
        event.listen(reader.engine, "before_cursor_execute", on_execute)
        posts = PostService(db, cast(Any, None), cast(Any, None), 50, 100)

        # Eight readers at once, each its own page, while the loop is watched.
        stalls: list[float] = []

        async def watch() -> None:
            while True:
                before = time.monotonic()
                await asyncio.sleep(0.005)
                stalls.append(time.monotonic() - before)

        watcher = asyncio.create_task(watch())
        for _ in range(3):
            pages = await asyncio.gather(*(posts.page(n, 50) for n in range(190, 198)))
            assert all(page.total == BIG for page in pages)
        watcher.cancel()
        assert counted_on
        assert not any(counted_on), counted_on
        assert max(stalls) < LOOP_STALL_SECONDS
    finally:
        await db.close()


async def test_a_small_table_is_still_read_on_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "feed.db"
    db = Database.open(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate(db.engine)
        fill(path, 120)
        posts = PostService(db, cast(Any, None), cast(Any, None), 50, 100)
        loop_thread = threading.get_ident()
        where: list[bool] = []
        reader = db.sqlite_reader
        assert reader is not None
        assert reader.here is not None
        for engine in (reader.here, reader.engine):
            event.listen(
                engine,
                "before_cursor_execute",
                lambda *_: where.append(threading.get_ident() == loop_thread),
            )
        first = await posts.page(1, 50)  # the size unknown yet: on a thread
        second = await posts.page(2, 50)  # small: here
        assert (first.total, second.total) == (120, 120)
        assert where == [False, True]
    finally:
        await db.close()
