"""The event payload: one typed, versioned schema for every writer and reader of events.

An event's JSON is written once (by the service, into the log row, in the change's
transaction) and read back by every process's hub, by replays, and by whoever reads
the log later. Log rows outlive deploys, and during a rolling deploy processes of
different versions read each other's events, so the JSON carries its version `v`:

- version 0: rows written before the field existed; no `v`, otherwise the fields below.
- version 1: `{"id", "v": 1, "action", "occurredAt", "post": {..., "creator": {...}}}`.

Readers accept every known version (`read` turns each into the current shape) and
refuse a newer one with `PayloadError`: the hub logs it and goes on with the next
event, rather than failing on a field it does not know. A change to the shape means a
new version here, an upgrade step from the previous one, and a golden payload in
tests/events/test_event_payload.py.

The stored text is `orjson.dumps({"id": N, **body})`, byte for byte (see
`storage.event_log`), and is decoded once per process however many subscribers it has.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypedDict, cast

import orjson

VERSION = 1
# Versions this code can read, oldest first.
KNOWN_VERSIONS = (0, 1)

Action = Literal["CREATED", "UPDATED", "DELETED"]
ACTIONS: frozenset[str] = frozenset(("CREATED", "UPDATED", "DELETED"))


class UserPayload(TypedDict):
    """What an event may say about a user: never the email."""

    id: int
    name: str
    status: str
    createdAt: str  # ISO 8601


class PostPayload(TypedDict):
    id: int
    title: str
    content: str
    imageName: str
    createdAt: str
    updatedAt: str
    creator: UserPayload


class EventBody(TypedDict):
    """The event as the writer hands it to the log, which puts its `id` in front."""

    v: int
    action: Action
    occurredAt: str
    post: PostPayload


class EventPayload(TypedDict):
    """The event as stored, sent on the bus and read back: the body with its log id."""

    id: int
    v: int
    action: Action
    occurredAt: str
    post: PostPayload


class PayloadError(ValueError):
    """The text is not an event this code can read (malformed, or a newer version)."""


def event_body(action: Action, occurred_at: datetime, post: PostPayload) -> EventBody:
    """The one place an event is made: always in the current version."""
    return {"v": VERSION, "action": action, "occurredAt": occurred_at.isoformat(), "post": post}


def read(text: str | bytes) -> EventPayload:
    """Decode a stored or published event of any known version, in the current shape.

    Only the envelope is checked here (once per event and process, on the hub's path):
    the post inside is read field by field where it is turned into API objects.
    """
    try:
        data: Any = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise PayloadError(f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise PayloadError("not a JSON object")
    version = data.get("v", 0)
    if type(version) is not int or version not in KNOWN_VERSIONS:
        raise PayloadError(
            f"payload version {version!r} is unknown here (known: "
            f"{', '.join(map(str, KNOWN_VERSIONS))}); a newer deploy wrote it"
        )
    if version == 0:
        data = {**data, "v": 1}  # the same fields as version 1
    for key, kind in (("id", int), ("action", str), ("occurredAt", str), ("post", dict)):
        if not isinstance(data.get(key), kind):
            raise PayloadError(f"version {version} payload without a valid {key!r}")
    if data["action"] not in ACTIONS:
        raise PayloadError(f"unknown action {data['action']!r}")
    return cast(EventPayload, data)


def event_id(text: str) -> int:
    """The id of a published event, before (and whether or not) it can be read whole."""
    try:
        found = orjson.loads(text).get("id")
    except (orjson.JSONDecodeError, AttributeError):
        found = None
    if type(found) is not int:
        raise PayloadError("a bus message without an event id")
    return found
