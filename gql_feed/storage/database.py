"""The database engine, sessions, and bringing the schema up to date with Alembic."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import AsyncAdaptedQueuePool, Connection, Engine, event, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant works; it names "the migration lock" among PostgreSQL advisory locks.
MIGRATION_LOCK_KEY = 0x6766_6565_6D

SessionFactory = async_sessionmaker[AsyncSession]
T = TypeVar("T")
# Threads (and pooled connections) for the SQLite reads that met a lock (`run_read`): rare,
# so two are plenty.
SQLITE_READ_THREADS = 2


@dataclass(frozen=True)
class Database:
    """One engine for reads and one for writes.

    On PostgreSQL they are the same engine. On SQLite, write transactions start with
    `BEGIN IMMEDIATE` so that two writers queue for the lock instead of failing with
    SQLITE_BUSY halfway, and they share one connection, so a process's writers queue
    in the pool; reads stay deferred so they never wait for a writer (WAL). The posts'
    writes, the frequent ones, go through `run_write` instead: on SQLite a writer thread
    with a connection of its own, where they queue for the thread. The rarer writes of
    the session factory (accounts, the log's pruning) meet them in SQLite's busy handler.
    """

    engine: AsyncEngine
    write_engine: AsyncEngine
    read: SessionFactory
    write: SessionFactory
    sqlite_reader: SqliteReader | None = None
    sqlite_writer: SqliteReader | None = None

    @classmethod
    def open(cls, url: str) -> Database:
        engine = create_engine(url)
        write_engine = create_engine(url, immediate=True) if is_sqlite(url) else engine
        return cls(
            engine=engine,
            write_engine=write_engine,
            read=create_session_factory(engine),
            write=create_session_factory(write_engine),
            sqlite_reader=SqliteReader.open(url) if is_sqlite(url) else None,
            sqlite_writer=SqliteReader.open(url, threads=1, immediate=True)
            if is_sqlite(url)
            else None,
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def run_read(self, work: Callable[[Connection], T]) -> T:
        """Run `work`, a short read (indexed, a bounded number of rows) written against a
        plain (synchronous) connection.

        The hot reads go through here. On SQLite `work` runs right here, on the event
        loop's thread, as the Node and Python peers read SQLite: a page of posts costs
        about 0.1 ms of CPU there, while handing it to a thread and back cost three times
        that under load (the hop, and the GIL passed back and forth on every row). It
        cannot wait for a lock: readers take none in WAL mode, and this connection's
        busy timeout is zero, so in the rare case SQLite answers "busy" (another connection
        holding an exclusive lock, or recovering the WAL) the read goes to a reader thread,
        which may wait. On PostgreSQL asyncpg is asynchronous already, and `work` runs
        with no thread at all.
        """
        if self.sqlite_reader is not None:
            try:
                return self.sqlite_reader.run_here(work)
            except SqliteBusy:
                return await self.sqlite_reader.run(work)
        async with self.engine.connect() as connection:
            # Autocommit: no BEGIN and ROLLBACK round trips around a read of one statement.
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            return await connection.run_sync(work)

    async def run_scan(self, work: Callable[[Connection], T]) -> T:
        """Run `work`, a read whose cost grows with a table (a `count(*)`, a deep
        `OFFSET`), where it cannot hold the event loop: on SQLite a reader thread (tens of
        milliseconds on a table of half a million rows would stall every other client);
        on PostgreSQL asyncpg, as `run_read` does."""
        if self.sqlite_reader is not None:
            return await self.sqlite_reader.run(work)
        return await self.run_read(work)

    async def run_write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` as one write transaction on a plain connection; commit if it returns.

        On SQLite the whole transaction (BEGIN IMMEDIATE to COMMIT) runs on the writer's
        one thread in one hop: through aiosqlite a createPost took about a dozen hops
        while holding SQLite's only write lock, each waiting its turn on a loop that
        readers kept busy, and writes beside readers fell to a fraction of their pace.
        Writers queue for that thread in arrival order. On PostgreSQL `work` runs in one
        transaction through asyncpg, with no thread at all.

        A transaction on a thread cannot be stopped halfway: if the caller is cancelled
        meanwhile, this waits for its end, then raises the cancellation if it rolled back
        and returns its result if it committed (the cancellation then arrives at the
        caller's next await), so that no clean-up undoes what a commit made durable.
        """
        if self.sqlite_writer is None:
            async with self.write_engine.begin() as connection:
                return await connection.run_sync(work)
        future = asyncio.ensure_future(self.sqlite_writer.run(work))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            while not future.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait((future,))
            if future.cancelled() or future.exception() is not None:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.cancel()
            return future.result()

    async def close(self) -> None:
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()
        if self.sqlite_reader is not None:
            self.sqlite_reader.close()
        if self.sqlite_writer is not None:
            self.sqlite_writer.close()


class SqliteBusy(Exception):
    """SQLite answered "busy" to a read that may not wait (`SqliteReader.run_here`)."""


class SqliteReader:
    """Plain sqlite3 connections on threads of their own, for work run in one hop each.

    A reader's connection reads outside any transaction, so every statement sees
    everything committed before it began (WAL), and no reader ever blocks the writer.
    A reader also has one connection for the event loop's own thread (`run_here`),
    which never waits. The writer (`immediate`) has one thread and one connection, and
    runs each piece of work as one `BEGIN IMMEDIATE` transaction, committed when the
    work returns.
    """

    def __init__(
        self, engine: Engine, threads: int, immediate: bool = False, here: Engine | None = None
    ) -> None:
        self.engine = engine
        self.immediate = immediate
        self.here = here
        prefix = "gql_feed-sqlite-write" if immediate else "gql_feed-sqlite-read"
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix=prefix)

    @classmethod
    def open(
        cls, url: str, threads: int = SQLITE_READ_THREADS, immediate: bool = False
    ) -> SqliteReader | None:
        """None for an in-memory database, which a second driver could not see."""
        sync_url = make_url(url).set(drivername="sqlite+pysqlite")
        if sync_url.database in (None, "", ":memory:"):
            return None
        engine = create_sync_engine(
            sync_url,
            pool_size=threads,
            max_overflow=0,
            connect_args={"timeout": 30, "check_same_thread": False},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        if immediate:
            event.listen(engine, "begin", _begin_immediate)
            return cls(engine, threads, immediate)
        # The loop's connection: a busy timeout of zero, and one connection that only the
        # loop's thread uses, one piece of work at a time (a second checkout would fail
        # at once rather than wait).
        here = create_sync_engine(
            sync_url,
            pool_size=1,
            max_overflow=0,
            pool_timeout=0,
            connect_args={"timeout": 0, "check_same_thread": False},
        )
        event.listen(here, "connect", _sqlite_pragmas)
        return cls(engine, threads, immediate, here)

    async def run(self, work: Callable[[Connection], T]) -> T:
        """`work` on a thread, in the caller's context: spans begun there (the event log's,
        the database's) are children of the caller's, as they are on PostgreSQL."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, contextvars.copy_context().run, self._run, work
        )

    def run_here(self, work: Callable[[Connection], T]) -> T:
        """Run a read on the calling thread; `SqliteBusy` instead of waiting for a lock."""
        assert self.here is not None, "only a reader runs work here"
        try:
            with self.here.connect() as connection:
                return work(connection)
        except OperationalError as error:
            if _is_busy(error):
                raise SqliteBusy(str(error.orig)) from error
            raise

    def _run(self, work: Callable[[Connection], T]) -> T:
        if self.immediate:
            with self.engine.begin() as connection:
                return work(connection)
        with self.engine.connect() as connection:
            return work(connection)

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.engine.dispose()
        if self.here is not None:
            self.here.dispose()


def _is_busy(error: OperationalError) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED, extended codes included."""
    code = getattr(error.orig, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class SchemaOutOfDate(RuntimeError):
    """The database is behind the code and we were told not to migrate."""


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, *, immediate: bool = False) -> AsyncEngine:
    """An engine tuned per backend: SQLite gets WAL and a busy timeout for concurrent writers."""
    if is_sqlite(url):
        # SQLite lets one writer in at a time. One pooled connection for writes makes
        # the others wait in the pool's queue, roughly in arrival order, instead of in
        # SQLite's busy handler, which retries with growing sleeps and let some writers
        # wait over a second while others went ahead.
        pool: dict[str, Any] = (
            {"poolclass": AsyncAdaptedQueuePool, "pool_size": 1, "max_overflow": 0}
            if immediate
            else {}
        )
        engine = create_async_engine(url, connect_args={"timeout": 30}, **pool)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        if immediate:
            event.listen(engine.sync_engine, "begin", _begin_immediate)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # Let SQLAlchemy's "begin" event decide how transactions start (see _begin_immediate).
    dbapi_connection.isolation_level = None


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade the database to the newest revision (Alembic runs synchronously, off the loop).

    Processes that start together (`serve --workers N`) take turns: the first one
    migrates while the others wait for its lock, then find the schema up to date.
    """
    async with engine.begin() as connection:
        await _lock_for_migration(connection)
        await connection.run_sync(_upgrade)


async def _lock_for_migration(connection: AsyncConnection) -> None:
    if connection.dialect.name == "postgresql":
        await connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
        )
    elif connection.dialect.name == "sqlite":
        raw = await connection.get_raw_connection()
        if not getattr(raw.driver_connection, "in_transaction", False):  # else: already begun
            await connection.exec_driver_sql("BEGIN IMMEDIATE")


def _upgrade(connection: Connection) -> None:
    """Upgrade to head, saying in one line what was done (Alembic's own lines are hushed)."""
    config = alembic_config(str(connection.engine.url))
    config.attributes["connection"] = connection
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    before = MigrationContext.configure(connection).get_current_revision()
    if before == head:
        logger.info("migrations: the database is up to date (revision %s)", head)
        return
    command.upgrade(config, "head")
    applied = reversed(list(script.iterate_revisions(head, before)))
    logger.info(
        "migrations: applied %s",
        ", ".join(f"{rev.revision} ({rev.doc.rstrip('.')})" for rev in applied),
    )


async def check_up_to_date(engine: AsyncEngine) -> None:
    """Refuse to start on an old schema when automatic migration is off."""
    async with engine.connect() as connection:
        current = await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    if current != head:
        raise SchemaOutOfDate(
            f"The database is at revision {current!r} but the code needs {head!r}: run "
            "`gql-feed migrate` or set GQL_FEED_AUTO_MIGRATE=true."
        )


def run_sync_migrations(url: str) -> None:
    """Entry point for `gql-feed migrate`."""

    async def _run() -> None:
        engine = create_engine(url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(_run())
