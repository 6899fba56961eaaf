"""Write transactions run in one hop (`Database.run_write`): what a cancelled caller sees.

On SQLite the transaction runs on the writer's thread, which cannot be stopped halfway.
A caller cancelled meanwhile must learn what really happened: a committed write is
returned (so its clean-up does not undo it, e.g. remove the new post's image), and the
cancellation arrives at the caller's next await; a rolled-back one raises it at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from gql_feed.storage.database import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database.open(f"sqlite+aiosqlite:///{tmp_path / 'feed.db'}")
    await database.run_write(lambda c: c.execute(text("CREATE TABLE probe (n INTEGER)")))
    try:
        yield database
    finally:
        await database.close()


def stored(db: Database) -> list[int]:
    assert db.sqlite_reader is not None
    with db.sqlite_reader.engine.connect() as connection:
        return [row.n for row in connection.execute(text("SELECT n FROM probe"))]


async def cancel_midway(db: Database, fail: bool) -> tuple[asyncio.Task[None], list[int]]:
    started, release = threading.Event(), threading.Event()
    outcome: list[int] = []

    def work(connection: Connection) -> int:
        started.set()
        release.wait(10)
        connection.execute(text("INSERT INTO probe VALUES (7)"))
        if fail:
            raise RuntimeError("the transaction fails after the cancellation")
        return 7

    async def caller() -> None:
        outcome.append(await db.run_write(work))
        await asyncio.sleep(0)  # where the held-back cancellation arrives
        outcome.append(-1)  # never reached

    task = asyncio.create_task(caller())
    while not started.is_set():
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.sleep(0.05)
    assert not task.done(), "the caller must wait for the transaction's end"
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    return task, outcome


async def test_cancelled_caller_of_a_committed_write_gets_its_result(db: Database) -> None:
    task, outcome = await cancel_midway(db, fail=False)
    assert task.cancelled()
    assert outcome == [7]
    assert stored(db) == [7]


async def test_cancelled_caller_of_a_failed_write_is_cancelled_at_once(db: Database) -> None:
    task, outcome = await cancel_midway(db, fail=True)
    assert task.cancelled()
    assert outcome == []
    assert stored(db) == []


async def test_writes_commit_in_arrival_order(db: Database) -> None:
    def insert(n: int) -> Callable[[Connection], int]:
        def work(connection: Connection) -> int:
            connection.execute(text("INSERT INTO probe VALUES (:n)"), {"n": n})
            return n

        return work

    results = await asyncio.gather(*(db.run_write(insert(n)) for n in range(20)))
    assert results == list(range(20))
    assert stored(db) == list(range(20))
