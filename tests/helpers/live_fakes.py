"""In-process stand-ins for the live layer's tests: a socket whose sends can be held back,
a hub that serves a fixed list of events, the operations over the served schema, and
`join`, which subscribes one of them the way a transport does."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import orjson

from gql_feed.config import Settings
from gql_feed.engine.documents import Operation
from gql_feed.engine.executable import build_schema
from gql_feed.engine.persisted import PersistedDocuments
from gql_feed.events.hub import HubEvent
from gql_feed.live.connection import Connection
from gql_feed.live.groups import Group, Subscriber
from gql_feed.live.operations import Joined, Operations, Request
from gql_feed.services.tokens import Claims
from gql_feed.storage.event_log import LoggedEvent
from tests.helpers.server import TEST_SECRET

TITLES = "subscription { postEvents { id post { title } } }"
FEED = """
subscription Feed($actions: [PostAction!], $after: ID) {
  postEvents(actions: $actions, after: $after) { id action post { id title } }
}
"""


class FakeSocket:
    """An ASGI-ish WebSocket whose sends can be held back, as a paused transport does."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {}
        self.sent: list[dict[str, Any]] = []
        self.gate: asyncio.Future[None] | None = None
        self.gone = False

    async def send(self, message: dict[str, Any]) -> None:
        if self.gone:
            raise OSError("peer gone")
        if self.gate is not None:
            await self.gate
        self.sent.append(message)

    def texts(self) -> list[str]:
        return [m.get("text") or f"close {m['code']}" for m in self.sent]


class Released:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def connection(limit: int = 3) -> tuple[Connection, FakeSocket, Released]:
    socket, released = FakeSocket(), Released()
    return Connection(socket.send, limit, released), socket, released  # type: ignore[arg-type]


def event(event_id: int, action: str = "CREATED", title: str = "A title") -> HubEvent:
    now = datetime(2024, 1, 1, tzinfo=UTC).isoformat()
    data = {
        "id": event_id,
        "action": action,
        "occurredAt": now,
        "post": {
            "id": 7,
            "title": title,
            "content": "Content",
            "imageName": "x.png",
            "createdAt": now,
            "updatedAt": now,
            "creator": {"id": 1, "name": "Ada", "status": "here", "createdAt": now},
        },
    }
    return HubEvent(event_id, orjson.dumps(data).decode(), data)


class FakeHub:
    def __init__(self, events: list[HubEvent], last_id: int = 0) -> None:
        self.events = events
        self.last_id = last_id

    async def log_bounds(self) -> tuple[int, int]:
        ids = [e.id for e in self.events]
        return (min(ids), max(ids)) if ids else (0, 0)

    async def read_after(self, after: int, limit: int) -> list[LoggedEvent]:
        return [LoggedEvent(e.id, e.payload) for e in self.events if e.id > after][:limit]

    async def catch_up_to(self, event_id: int) -> None:
        """This hub has delivered everything it will; the real one reads the log here."""
        self.last_id = max(self.last_id, event_id)


async def get_many(keys: list[int]) -> list[None]:
    return [None for _ in keys]


def operations(hub: FakeHub | None = None) -> Operations:
    settings = Settings(jwt_secret=TEST_SECRET, _env_file=None)  # type: ignore[arg-type, call-arg]
    services = SimpleNamespace(
        settings=settings, accounts=SimpleNamespace(get_many=get_many), hub=hub or FakeHub([])
    )
    return Operations(build_schema([]), services, settings, PersistedDocuments(None))  # type: ignore[arg-type]


CLAIMS = Claims(1, datetime.now(UTC) + timedelta(hours=1))


async def join(
    ops: Operations, sub_id: str, query: str = FEED, claims: Claims = CLAIMS, **variables: Any
) -> tuple[Joined, FakeSocket]:
    request = Request(query, None, variables)
    operation = await ops.prepare(request)
    assert isinstance(operation, Operation)
    conn, socket, _ = connection(limit=100)
    prefix = '{"id":"' + sub_id + '","type":"next","payload":'

    def make(group: Group) -> Subscriber:
        return Subscriber(sub_id, prefix, conn, group)

    joined = ops.subscribe(operation, request, claims, make)
    assert isinstance(joined, Joined), joined
    return joined, socket
