"""Golden payloads: stored events of every version read back into the same PostEvents.

Log rows outlive deploys, and during a rolling deploy a process reads events written by
another version. The literal JSON below is what each version stored; it must keep
reading the same, whatever the code becomes. A payload of a version this code does not
know (a newer deploy's) is skipped with a logged error, and the hub goes on.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import insert

from gql_feed.events import payload
from gql_feed.events.hub import EventHub, HubEvent
from gql_feed.events.payload import PayloadError
from gql_feed.schema.ids import global_id
from gql_feed.schema.types import PostAction, PostEvent
from gql_feed.services.records import PostRecord, UserRecord
from gql_feed.storage import event_log
from gql_feed.storage.database import Database, migrate
from gql_feed.storage.models import PostEventRow
from tests.helpers.services import unique_channel

# Version 0: rows written before payloads carried a version.
V0 = (
    '{"id":1,"action":"CREATED","occurredAt":"2026-11-30T10:00:00.123456+00:00",'
    '"post":{"id":7,"title":"First light","content":"Hello, feed","imageName":"a1.png",'
    '"createdAt":"2026-11-30T10:00:00.123456+00:00","updatedAt":"2026-11-30T10:00:00.123456+00:00",'
    '"creator":{"id":3,"name":"Ada","status":"I am new!","createdAt":"2026-11-01T08:00:00+00:00"}}}'
)
# Version 1: the same fields, and "v":1 after the id.
V1 = (
    '{"id":2,"v":1,"action":"UPDATED","occurredAt":"2026-11-30T11:30:00+00:00",'
    '"post":{"id":7,"title":"First light, edited","content":"Hello, feed","imageName":"b2.png",'
    '"createdAt":"2026-11-30T10:00:00.123456+00:00","updatedAt":"2026-11-30T11:30:00+00:00",'
    '"creator":{"id":3,"name":"Ada","status":"Editing","createdAt":"2026-11-01T08:00:00+00:00"}}}'
)
# A version this code does not know: written by a newer deploy.
V2 = '{"id":3,"v":2,"kind":"post.deleted","at":1764500000,"entity":{"post":7}}'
V1_DELETED = (
    '{"id":4,"v":1,"action":"DELETED","occurredAt":"2026-11-30T12:00:00+00:00",'
    '"post":{"id":7,"title":"First light, edited","content":"Hello, feed","imageName":"b2.png",'
    '"createdAt":"2026-11-30T10:00:00.123456+00:00","updatedAt":"2026-11-30T11:30:00+00:00",'
    '"creator":{"id":3,"name":"Ada","status":"Editing","createdAt":"2026-11-01T08:00:00+00:00"}}}'
)
GOLDEN = [V0, V1, V2, V1_DELETED]


def summary(event: PostEvent) -> tuple[object, ...]:
    post, creator = event.post, event.post.creator
    return (
        event.id,
        event.action,
        event.occurred_at,
        post.id,
        post.title,
        post.content,
        post._image_name,
        post.created_at,
        post.updated_at,
        creator.id,
        creator.name,
        creator.status,
        creator.created_at,
    )


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


EXPECTED = {
    1: (
        "1",
        PostAction.CREATED,
        at("2026-11-30T10:00:00.123456+00:00"),
        global_id("Post", 7),
        "First light",
        "Hello, feed",
        "a1.png",
        at("2026-11-30T10:00:00.123456+00:00"),
        at("2026-11-30T10:00:00.123456+00:00"),
        global_id("User", 3),
        "Ada",
        "I am new!",
        at("2026-11-01T08:00:00+00:00"),
    ),
    2: (
        "2",
        PostAction.UPDATED,
        at("2026-11-30T11:30:00+00:00"),
        global_id("Post", 7),
        "First light, edited",
        "Hello, feed",
        "b2.png",
        at("2026-11-30T10:00:00.123456+00:00"),
        at("2026-11-30T11:30:00+00:00"),
        global_id("User", 3),
        "Ada",
        "Editing",
        at("2026-11-01T08:00:00+00:00"),
    ),
    4: (
        "4",
        PostAction.DELETED,
        at("2026-11-30T12:00:00+00:00"),
        global_id("Post", 7),
        "First light, edited",
        "Hello, feed",
        "b2.png",
        at("2026-11-30T10:00:00.123456+00:00"),
        at("2026-11-30T11:30:00+00:00"),
        global_id("User", 3),
        "Ada",
        "Editing",
        at("2026-11-01T08:00:00+00:00"),
    ),
}


def test_every_known_version_reads_into_the_current_shape() -> None:
    v0, v1 = payload.read(V0), payload.read(V1)
    assert v0["v"] == v1["v"] == payload.VERSION == 1
    assert v0["post"]["creator"]["name"] == "Ada"
    assert summary(PostEvent.from_event(v0)) == EXPECTED[1]
    assert summary(PostEvent.from_event(v1)) == EXPECTED[2]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (V2, "payload version 2 is unknown here"),
        ('{"id":5,"v":"1","action":"CREATED"}', "payload version '1' is unknown"),
        ('{"id":5,"v":1,"action":"EXPLODED","occurredAt":"x","post":{}}', "unknown action"),
        ('{"id":5,"v":1,"action":"CREATED","post":{}}', "'occurredAt'"),
        ("[1, 2]", "not a JSON object"),
        ("{not json", "not JSON"),
    ],
)
def test_what_cannot_be_read_is_refused_by_name(text: str, problem: str) -> None:
    with pytest.raises(PayloadError, match=problem):
        payload.read(text)


def test_the_writer_makes_the_current_version_byte_exact() -> None:
    now = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    creator = UserRecord(3, "ada@example.com", "Ada", "Here", now)
    post = PostRecord(7, "A title", "Some content", "x.png", 3, now, now)
    body = payload.event_body("CREATED", now, post.event_json(creator))
    assert list(body) == ["v", "action", "occurredAt", "post"]
    assert body["v"] == payload.VERSION
    assert "email" not in body["post"]["creator"]
    text = orjson.dumps({"id": 9, **body}).decode()
    assert text.startswith('{"id":9,"v":1,"action":"CREATED",')
    assert payload.read(text) == {"id": 9, **body}


class Rendered:
    """A sink that turns each event into the API object, as the live fan-out does."""

    def __init__(self) -> None:
        self.events: list[PostEvent] = []

    async def deliver(self, event: HubEvent) -> None:
        self.events.append(PostEvent.from_event(event.data))


def unreadable() -> float:
    return REGISTRY.get_sample_value("gql_feed_events_unreadable_total") or 0.0


async def store(db: Database, rows: list[str]) -> None:
    async with db.write() as session, session.begin():
        for text in rows:
            event_id = orjson.loads(text)["id"]
            await session.execute(
                insert(PostEventRow).values(
                    id=event_id,
                    action="CREATED",
                    post_id=7,
                    payload=text,
                    occurred_at=datetime.now(UTC),
                )
            )


async def test_stored_payloads_of_every_version_replay_through_the_hub(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database.open(database_url)
    await migrate(db.engine)
    hub = EventHub(db, "memory://", unique_channel(), poll_seconds=60.0)
    sink = Rendered()
    hub.add_sink(sink)
    await hub.start()
    unreadable_before = unreadable()
    try:
        await store(db, GOLDEN)
        with caplog.at_level(logging.ERROR, logger="gql_feed.events.hub"):
            await hub._on_bus_message("#4")  # the hub reads 1-4 from the log
            # A newer deploy's event on the bus: skipped by id, the hub carries on.
            newer = '{"id":5,"v":2,"kind":"post.created"}'
            await store(db, [newer])
            await hub._on_bus_message(newer)
            await store(db, [V1_DELETED.replace('"id":4', '"id":6', 1)])
            await hub._on_bus_message(V1_DELETED.replace('"id":4', '"id":6', 1))
        assert [summary(event) for event in sink.events[:3]] == [
            EXPECTED[1],
            EXPECTED[2],
            EXPECTED[4],
        ]
        assert [event.id for event in sink.events] == ["1", "2", "4", "6"]
        assert hub.last_id == 6
        for garbage in ("not json", '{"v":1}', "#seven"):
            await hub._on_bus_message(garbage)  # logged and ignored: nothing to go on
        assert hub.last_id == 6
        skipped = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(skipped) == 5, skipped
        assert skipped[0].startswith("Skipping event 3: payload version 2 is unknown here")
        assert skipped[1].startswith("Skipping event 5: payload version 2 is unknown here")
        assert all(line.startswith("Ignoring a bus message") for line in skipped[2:])
        # Each skipped event counts in gql_feed_events_unreadable_total (README).
        assert unreadable() == unreadable_before + 2
        # Replays (hub.read_after, then HubEvent.read) see the same.
        async with db.read() as session:
            stored = await event_log.read_after(session, 0, 10)
        read = [HubEvent.read(logged) for logged in stored]
        assert [event.id if event else None for event in read] == [1, 2, None, 4, None, 6]
        assert unreadable() == unreadable_before + 4
    finally:
        await hub.stop()
        await db.close()
