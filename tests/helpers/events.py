"""Events in a real event log, and a sink that notes what a hub delivers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from gql_feed.events.hub import HubEvent
from gql_feed.storage import event_log
from gql_feed.storage.database import Database
from gql_feed.storage.event_log import LoggedEvent


class Collector:
    """A sink that notes each event handed to it (and its id), in order."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.events: list[HubEvent] = []
        self._delivered = asyncio.Condition()

    async def deliver(self, event: HubEvent) -> None:
        self.ids.append(event.id)
        self.events.append(event)
        async with self._delivered:
            self._delivered.notify_all()

    async def wait_for(self, event_id: int) -> None:
        """Until the event `event_id` has been handed on."""
        async with self._delivered:
            await self._delivered.wait_for(lambda: event_id in self.ids)


async def log_event(db: Database, post_id: int, content: str = "x") -> LoggedEvent:
    now = datetime.now(UTC)
    async with db.write() as session, session.begin():
        return await event_log.append(
            session,
            action="CREATED",
            post_id=post_id,
            occurred_at=now,
            body={
                "action": "CREATED",
                "occurredAt": now.isoformat(),
                "post": {"id": post_id, "content": content},
            },
        )
