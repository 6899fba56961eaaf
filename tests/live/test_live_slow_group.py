"""One group whose execution has to wait holds back neither the hub nor the other groups."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from gql_feed.live.groups import Group
from tests.helpers.live_fakes import TITLES, event, join, operations


def ids(texts: list[str]) -> list[str]:
    return [text.split('"postEvents":{"id":"', 1)[1].split('"', 1)[0] for text in texts]


async def test_a_slow_group_finishes_later_in_order_while_the_others_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ops = operations()
    fast, fast_socket = await join(ops, "fast")
    slow, slow_socket = await join(ops, "slow", TITLES)
    late, late_socket = await join(ops, "late", TITLES)
    slow_group = slow.subscriber.group
    assert late.subscriber.group is slow_group
    assert fast.subscriber.group is not slow_group
    gate = asyncio.Event()
    original = Group.render

    def render(self: Group, root: Any) -> Any:
        rendered = original(self, root)
        if self is not slow_group or root.id != "1":
            return rendered

        async def waits() -> str:  # as an async resolver waiting on I/O would
            await gate.wait()
            return rendered if isinstance(rendered, str) else await rendered

        return waits()

    monkeypatch.setattr(Group, "render", render)

    # The hub hands over events 1 and 2; neither call waits for the slow group.
    await asyncio.wait_for(ops.groups.deliver(event(1)), 1)
    await asyncio.wait_for(ops.groups.deliver(event(2)), 1)
    assert ids(fast_socket.texts()) == ["1", "2"]
    assert slow_socket.sent == []  # event 2 is ready, but waits behind event 1
    # A subscriber that leaves meanwhile gets nothing more.
    ops.unsubscribe(late.subscriber)

    gate.set()
    for _ in range(100):
        if len(slow_socket.sent) == 2:
            break
        await asyncio.sleep(0.01)
    assert ids(slow_socket.texts()) == ["1", "2"]
    assert late_socket.sent == []
    assert slow_group.backlog is None
    assert slow_group.worker is None

    # Back to writing at once.
    await ops.groups.deliver(event(3))
    assert ids(slow_socket.texts()) == ["1", "2", "3"]
    assert ids(fast_socket.texts()) == ["1", "2", "3"]


async def test_a_subscriber_gets_only_events_after_it_joined() -> None:
    """Joining while a fan-out is under way (it yields between groups) must not bring the
    event being fanned out: the hub had already passed it, so a resume replays it."""
    ops = operations()
    _, first_socket = await join(ops, "first")
    ops.services.hub.last_id = 1  # type: ignore[misc]
    second, second_socket = await join(ops, "second")
    assert second.subscriber.since == 1
    await ops.groups.deliver(event(1))
    await ops.groups.deliver(event(2))
    assert ids(first_socket.texts()) == ["1", "2"]
    assert ids(second_socket.texts()) == ["2"]


async def test_a_long_pass_over_many_groups_lets_the_loop_run_between_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ops = operations()
    sockets = [
        (await join(ops, str(n), f"subscription {{ e{n}: postEvents {{ id }} }}"))[1]
        for n in range(6)
    ]
    original = Group.render

    def heavy(self: Group, root: Any) -> Any:
        time.sleep(0.004)  # a group whose execution takes a while, synchronously
        return original(self, root)

    monkeypatch.setattr(Group, "render", heavy)
    written_when_other_work_ran: list[int] = []

    async def other_work() -> None:
        while True:
            written_when_other_work_ran.append(sum(len(s.sent) for s in sockets))
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    await ops.groups.deliver(event(1))
    other.cancel()
    assert all(len(socket.sent) == 1 for socket in sockets)
    # The other task ran while the pass was under way, not only before and after it.
    assert any(0 < written < len(sockets) for written in written_when_other_work_ran)
