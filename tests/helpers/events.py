"""Events in a real event log, and a sink that notes what a hub delivers."""

from __future__ import annotations

from datetime import UTC, datetime

from gql_feed.events.hub import HubEvent
from gql_feed.storage import event_log
from gql_feed.storage.database import Database
from gql_feed.storage.event_log import LoggedEvent


class Collector:
    def __init__(self) -> None:
        self.ids: list[int] = []
        self.events: list[HubEvent] = []

    async def deliver(self, event: HubEvent) -> None:
        self.ids.append(event.id)
        self.events.append(event)


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
