"""The live layer's parts in process: eager writes, grouping, the resume seam, documents."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from gql_feed.engine.documents import Invalid, Operation
from gql_feed.live.connection import SLOW_CONSUMER_REASON, Connection
from gql_feed.live.groups import Group, Subscriber
from gql_feed.live.operations import Request
from gql_feed.live.replay import replay
from gql_feed.live.ticker import Ticker
from gql_feed.services.errors import EventLogExpired
from gql_feed.services.tokens import Claims
from gql_feed.transport.ws.route import LiveRoute
from tests.helpers.live_fakes import (
    CLAIMS,
    FEED,
    FakeHub,
    FakeSocket,
    Released,
    connection,
    event,
    join,
    operations,
)

# Eager writes.


async def test_writes_finish_at_once_without_a_task() -> None:
    conn, socket, _ = connection()
    tasks = len(asyncio.all_tasks())
    conn.send_text("a")
    conn.send_text("b")
    assert socket.texts() == ["a", "b"]  # no await in between: written synchronously
    assert len(asyncio.all_tasks()) == tasks


async def test_a_backlogged_socket_drains_in_order_then_writes_eagerly_again() -> None:
    conn, socket, _ = connection()
    socket.gate = asyncio.get_running_loop().create_future()
    conn.send_text("1")
    conn.send_text("2")
    conn.send_text("3")
    assert socket.sent == []
    socket.gate.set_result(None)
    await conn.flushed(1)
    assert socket.texts() == ["1", "2", "3"]
    socket.gate = None
    conn.send_text("4")
    assert socket.texts()[-1] == "4"


async def test_overflowing_the_backlog_closes_with_1013_and_releases_at_once() -> None:
    conn, socket, released = connection(limit=3)
    socket.gate = asyncio.get_running_loop().create_future()
    for text in ("in flight", "q1", "q2", "q3"):
        conn.send_text(text)
    assert released.calls == 0
    conn.send_text("one too many")
    assert released.calls == 1
    assert conn.closing
    conn.send_text("ignored")
    socket.gate.set_result(None)
    await conn.flushed(1)
    assert socket.texts() == ["in flight", "close 1013"]
    assert socket.sent[-1]["reason"] == SLOW_CONSUMER_REASON


async def test_a_socket_past_its_backlog_in_bytes_is_a_slow_consumer() -> None:
    """Few frames but big ones: the byte bound closes the socket, not the frame count."""
    socket, released = FakeSocket(), Released()
    conn = Connection(socket.send, 500, released, 10_000)  # type: ignore[arg-type]
    socket.gate = asyncio.get_running_loop().create_future()
    conn.send_text("in flight")
    for _ in range(4):
        conn.send_text("x" * 2_500)  # 10,000 characters queued: at the bound, still kept
    assert released.calls == 0
    conn.send_text("y")
    assert released.calls == 1
    socket.gate.set_result(None)
    await conn.flushed(1)
    assert socket.texts() == ["in flight", "close 1013"]


async def test_a_vanished_peer_releases_everything() -> None:
    conn, socket, released = connection()
    socket.gone = True
    conn.send_text("into the void")
    assert conn.closing
    assert released.calls == 1
    conn.close(1000)
    assert released.calls == 1


# The way in.


@pytest.mark.parametrize(
    ("scope", "reaches"),
    [
        ({"type": "websocket", "path": "/graphql"}, "live"),
        ({"type": "websocket", "path": "/feed/graphql", "root_path": "/feed"}, "live"),
        ({"type": "websocket", "path": "/graphql", "root_path": "/g"}, "live"),
        ({"type": "websocket", "path": "/feed/graphql", "root_path": "/fee"}, "app"),
        ({"type": "http", "path": "/graphql"}, "app"),
        ({"type": "websocket", "path": "/other"}, "app"),
        ({"type": "lifespan"}, "app"),
    ],
)
async def test_only_live_sockets_skip_the_application(scope: dict[str, Any], reaches: str) -> None:
    reached: list[str] = []

    def recorder(name: str) -> Any:
        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            reached.append(name)

        return asgi

    async def nothing_received() -> dict[str, Any]:
        return {}

    route = LiveRoute(recorder("app"), "/graphql", recorder("live"))
    await route(scope, nothing_received, FakeSocket().send)
    assert reached == [reaches]


# The clocks.


class Clock:
    def __init__(self, init_deadline: float | None = None, expires_at: float | None = None):
        self.init_deadline = init_deadline
        self.expires_at = expires_at
        self.events: list[str] = []

    def keepalive(self) -> None:
        self.events.append("ping")

    def init_timed_out(self) -> None:
        self.events.append("init timeout")

    def token_expired(self) -> None:
        self.events.append("expired")


def test_one_keepalive_period_pings_each_connection_once_a_slice_at_a_time() -> None:
    ticker = Ticker(keepalive_seconds=10, init_timeout_seconds=3)
    assert ticker.slices == 13  # ticks of 0.75 s
    clocks = [Clock(expires_at=1e9) for _ in range(500)]
    for clock in clocks:
        ticker.add(clock)
    pinged_per_tick = []
    for tick in range(ticker.slices):
        before = sum(len(clock.events) for clock in clocks)
        ticker.tick(0.0, tick)
        pinged_per_tick.append(sum(len(clock.events) for clock in clocks) - before)
    assert all(clock.events == ["ping"] for clock in clocks)
    assert max(pinged_per_tick) - min(pinged_per_tick) <= 1  # evenly spread


def test_deadlines_are_checked_on_every_tick() -> None:
    ticker = Ticker(keepalive_seconds=10, init_timeout_seconds=3)
    waiting, late, expired = Clock(init_deadline=5), Clock(init_deadline=1), Clock(expires_at=1)
    for clock in (waiting, late, expired):
        ticker.add(clock)
    ticker.tick(2.0, 0)
    assert (waiting.events, late.events, expired.events) == ([], ["init timeout"], ["expired"])


# Grouping.


async def test_one_execution_per_group_and_the_same_text_for_every_member(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ops = operations()
    renders: list[Group] = []
    original = Group.render

    def counting(self: Group, root: Any) -> Any:
        renders.append(self)
        return original(self, root)

    monkeypatch.setattr(Group, "render", counting)
    everything = [await join(ops, f"all{n}") for n in range(3)]
    # A resume point does not change what live events look like: same group.
    resumed, resumed_socket = await join(ops, "resumed", after="0")
    deletes = [await join(ops, f"del{n}", actions=["DELETED"]) for n in range(2)]
    assert len(ops.groups) == 2
    assert ops.groups.subscribers == 6
    assert resumed.after == 0
    assert resumed.subscriber.group is everything[0][0].subscriber.group

    await ops.groups.deliver(event(1, "CREATED"))
    assert len(renders) == 1  # the DELETED-only group did not even run
    frames = [socket.texts() for _, socket in everything]
    assert frames[0] == [
        '{"id":"all0","type":"next","payload":{"data":{"postEvents":'
        '{"id":"1","action":"CREATED","post":{"id":"UG9zdDo3","title":"A title"}}}}}'
    ]  # the post's global id: base64 of "Post:7"
    payloads = [text[0].split(",", 2)[2] for text in frames]
    assert len(set(payloads)) == 1
    assert resumed_socket.sent == []  # still replaying: buffered
    assert resumed.subscriber.buffer is not None
    assert [event_id for event_id, _ in resumed.subscriber.buffer] == [1]
    assert all(socket.sent == [] for _, socket in deletes)

    await ops.groups.deliver(event(2, "DELETED"))
    assert len(renders) == 3
    assert all(len(socket.sent) == 1 for _, socket in deletes)

    for joined, _ in [*everything, (resumed, None), *deletes]:
        ops.unsubscribe(joined.subscriber)
    assert len(ops.groups) == 0
    assert ops.groups.subscribers == 0


async def test_viewer_dependent_operations_are_grouped_per_viewer() -> None:
    ops = operations()
    query = "subscription { postEvents { post { creator { email } } } }"
    await join(ops, "a1", query, CLAIMS)
    await join(ops, "a2", query, CLAIMS)
    await join(ops, "b", query, Claims(2, CLAIMS.expires_at))
    await join(ops, "c", FEED, Claims(2, CLAIMS.expires_at))
    await join(ops, "d", FEED, CLAIMS)
    assert len(ops.groups) == 3


async def test_invalid_variables_are_errors_not_groups() -> None:
    ops = operations()
    operation = await ops.prepare(Request(FEED))
    assert isinstance(operation, Operation)
    conn, _, _ = connection()
    errors = ops.subscribe(
        operation,
        Request(FEED, None, {"actions": ["EXPLODED"]}),
        CLAIMS,
        lambda group: Subscriber("x", "", conn, group),
    )
    assert isinstance(errors, list)
    assert "EXPLODED" in errors[0].message
    assert len(ops.groups) == 0


# The resume seam.


async def test_replay_then_buffer_with_no_gap_and_no_duplicate() -> None:
    logged = [event(n) for n in range(1, 8)]
    ops = operations(FakeHub(logged, last_id=5))
    joined, socket = await join(ops, "r", after="2")
    subscriber = joined.subscriber
    # Live events arrive while replaying: 5 (also in the replay) was mid-fan-out, 6 and 7 new.
    for live in logged[4:]:
        await ops.groups.deliver(live)
    await replay(subscriber, ops.services.hub, 2, joined.upto, max_events=100)  # type: ignore[arg-type]
    ids = [orjson.loads(m["text"])["payload"]["data"]["postEvents"]["id"] for m in socket.sent]
    assert ids == ["3", "4", "5", "6", "7"]
    assert subscriber.buffer is None
    await ops.groups.deliver(event(8))
    assert orjson.loads(socket.sent[-1]["text"])["payload"]["data"]["postEvents"]["id"] == "8"


@pytest.mark.parametrize(
    ("after", "max_events"),
    [(3, 100), (99, 100), (10, 2)],
    ids=["pruned", "unknown", "too-many"],
)
async def test_replay_refuses_what_the_log_cannot_serve(after: int, max_events: int) -> None:
    hub = FakeHub([event(n) for n in range(10, 21)], last_id=20)
    ops = operations(hub)
    joined, _ = await join(ops, "r", after=str(after))
    with pytest.raises(EventLogExpired):
        await replay(joined.subscriber, hub, after, joined.upto, max_events)  # type: ignore[arg-type]


# Documents.


async def test_documents_are_validated_once_and_analysed() -> None:
    ops = operations()
    first = await ops.prepare(Request(FEED))
    assert first is await ops.prepare(Request(FEED))
    assert isinstance(first, Operation)
    assert first.after_only_variables == {"after"}
    assert not first.viewer_dependent

    invalid = await ops.prepare(Request("subscription { postEvents { nope } }"))
    assert isinstance(invalid, Invalid)

    fragment = await ops.prepare(
        Request(
            "subscription { ...F } fragment F on Subscription "
            "{ postEvents { post { creator { email } } } }"
        )
    )
    assert isinstance(fragment, Operation)
    assert fragment.viewer_dependent
    assert fragment.root_field is not None
    assert fragment.root_field.name.value == "postEvents"

    upload = await ops.prepare(
        Request("mutation($i: UpdatePostInput!) { updatePost(id: 1, input: $i) { id } }")
    )
    assert isinstance(upload, Operation)
    assert not upload.sends_upload({"i": {"title": "Only a title"}})
    assert upload.sends_upload({"i": {"title": "t", "image": "not a file"}})


async def test_subscribers_and_groups_are_counted_by_transport_as_they_join_and_leave() -> None:
    ops = operations()
    first, _ = await join(ops, "a")
    second, _ = await join(ops, "b")
    other, _ = await join(ops, "c", actions=["DELETED"])
    assert ops.groups.by_transport() == {"websocket": (3, 2)}
    ops.unsubscribe(first.subscriber)
    assert ops.groups.by_transport() == {"websocket": (2, 2)}
    ops.unsubscribe(second.subscriber)
    ops.unsubscribe(other.subscriber)
    assert ops.groups.by_transport() == {"websocket": (0, 0)}
