"""SQLite reads run on the event loop's thread, and never make it wait for a lock."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import Connection, text

from gql_feed.storage.database import Database, migrate


def count_users(connection: Connection) -> int:
    return int(connection.execute(text("SELECT count(*) FROM users")).scalar_one())


async def test_a_locked_database_sends_the_read_to_a_thread(tmp_path: Path) -> None:
    path = tmp_path / "feed.db"
    db = Database.open(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate(db.engine)
        assert await db.run_read(count_users) == 0
        assert db.sqlite_reader is not None
        here = db.sqlite_reader.here
        assert here is not None

        # Another process's connection in exclusive locking mode keeps every reader out
        # (SQLITE_BUSY) until it lets go, even in WAL mode. It needs every other
        # connection closed to get there.
        here.dispose()
        db.sqlite_reader.engine.dispose()
        await db.engine.dispose()
        locker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        locker.execute("PRAGMA locking_mode=EXCLUSIVE")
        locker.execute("BEGIN EXCLUSIVE")
        locker.execute(
            "INSERT INTO users (email, name, password_hash, status, created_at) "
            "VALUES ('a@example.com', 'A', 'x', 'I am new!', '2026-12-01 00:00:00')"
        )

        def let_go() -> None:
            time.sleep(0.5)
            locker.execute("COMMIT")
            locker.close()

        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        threading.Thread(target=let_go).start()
        started = time.monotonic()
        found = await db.run_read(count_users)
        waited = time.monotonic() - started
        ticking.cancel()

        assert found == 1  # read after the lock went, on a reader thread
        assert waited >= 0.4
        # The loop kept turning while the read waited: about 50 ticks in 0.5 s.
        assert ticks >= 10
        assert await db.run_read(count_users) == 1  # and here again afterwards
    finally:
        await db.close()
