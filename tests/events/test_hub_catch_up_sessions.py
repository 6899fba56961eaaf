"""Catch-up reads the log, closes the session, then delivers: no transaction stays open.

Fanning a batch of up to 500 events out may take seconds; a read session kept open
meanwhile sits "idle in transaction" on PostgreSQL (holding back vacuum) and keeps a
pooled connection from everyone else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from gql_feed.events.hub import EventHub, HubEvent
from gql_feed.storage.database import Database, migrate
from tests.helpers.events import log_event
from tests.helpers.services import fresh_postgres_database, unique_channel


class SlowSink:
    """Takes its time over each event, and looks at the database while it does."""

    def __init__(self, db: Database, look: object) -> None:
        self.db = db
        self.look = look
        self.ids: list[int] = []
        self.checked_out: list[int] = []
        self.in_transaction: list[int] = []

    async def deliver(self, event: HubEvent) -> None:
        await asyncio.sleep(0.05)
        self.ids.append(event.id)
        self.checked_out.append(self.db.engine.pool.checkedout())  # type: ignore[attr-defined]
        if self.look is not None:
            self.in_transaction.append(await self.look())  # type: ignore[operator]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


async def deliver_a_catch_up_batch(db: Database, sink: SlowSink) -> None:
    hub = EventHub(db, "memory://", unique_channel(), poll_seconds=60.0)
    hub.add_sink(sink)
    await hub.start()
    try:
        # The bus's connection runs a catch-up of its own, holding the hub's lock from the
        # moment the connection is made: the events are written once it has ended, so
        # that no write of theirs holds a connection while it delivers.
        await asyncio.wait_for(hub.bus.connected.wait(), 10)
        async with hub._lock:
            pass
        events = [await log_event(db, n) for n in range(6)]
        # The bus brings only the last one: the five before it come from the log.
        await hub._on_bus_message(events[-1].payload)
    finally:
        await hub.stop()
    assert sink.ids == [event.id for event in events]


@pytest.mark.postgres
async def test_no_session_idles_in_a_transaction_while_a_batch_is_delivered(
    postgres_url: str,
) -> None:
    db = Database.open(postgres_url)
    await migrate(db.engine)
    name = make_url(postgres_url).database
    watcher = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgres://"))

    async def idle_in_transaction() -> int:
        count: int = await watcher.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = $1 AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()",
            name,
        )
        return count

    try:
        sink = SlowSink(db, idle_in_transaction)
        await deliver_a_catch_up_batch(db, sink)
        assert sink.in_transaction == [0] * 6
        assert sink.checked_out == [0] * 6
    finally:
        await watcher.close()
        await db.close()


async def test_no_pooled_connection_is_held_while_a_batch_is_delivered(
    database_url: str,
) -> None:
    db = Database.open(database_url)
    await migrate(db.engine)
    try:
        sink = SlowSink(db, None)
        await deliver_a_catch_up_batch(db, sink)
        assert sink.checked_out == [0] * 6
    finally:
        await db.close()
