"""Grouped fan-out: each event is executed once per group, not once per subscriber.

Subscribers whose operation (in its normal form: see `analysis.OperationFacts.key`), operation
name, declared variables' coerced values (except a resume point) and visible viewer are
the same would receive byte-identical payloads, so they share a group; whitespace,
comments, undeclared variables or their order cannot split one. For each event the hub
hands over, the event's root value is built once, every group whose `actions` filter takes
it runs its prebuilt executor on it once (within the schema extensions' `on_execute` and
`resolve` hooks, when there are any: `live.hooks`) and encodes the result once, and
each member gets that text with its own subscription id spliced in front. The
per-subscriber work is a string concatenation and an eager socket write (see
`connection`).

Groups cost time on every event, so they are capped per process (and, by the protocol,
per connection). One group cannot hold the others back: a group whose execution has to
wait (an async resolver) finishes in a task of its own, outside the hub's lock, and its
later events queue behind it so each subscription still gets its events in order; and a
long synchronous pass over many groups lets the loop run other work every few
milliseconds.

When tracing is on, each event's pass is one span with a record per group
(`live.tracing`); when it is off, nothing of it is built.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, NamedTuple

from graphql import ExecutionResult
from graphql.execution import Executor, execute_subscription_event

from gql_feed.engine.results import INTERNAL_ERROR_PAYLOAD, result_payload
from gql_feed.events.hub import HubEvent
from gql_feed.live import metrics
from gql_feed.live.close_codes import CloseCode
from gql_feed.live.connection import SLOW_CONSUMER_REASON, Connection
from gql_feed.live.frames import OutFrame
from gql_feed.live.hooks import EventHooks
from gql_feed.live.tracing import FanOutTrace
from gql_feed.schema.types import PostEvent
from gql_feed.services.errors import FeedError

logger = logging.getLogger(__name__)

# How long one pass over the groups may keep the loop before letting other work run.
SLICE_SECONDS = 0.005


class TooManyGroups(FeedError):
    code = "TOO_MANY_GROUPS"


class GroupKey(NamedTuple):
    operation: str  # the digest of the operation's normal form (analysis.OperationFacts.key)
    operation_name: str | None
    variables: str  # declared variables' coerced values, canonical JSON, minus resume-only
    viewer_id: int | None  # only when the operation selects a viewer-dependent field


class Subscriber:
    """One live subscription: where its frames go, and the text that starts them.

    `buffer` is not None while the subscription replays from the log: live payloads
    collect there (as (event id, shared payload text)) until the replay catches up.
    `since` is the hub's last event id when it joined: it gets only later events, even
    from a fan-out that was under way when it joined (those are the replay's to send).
    """

    __slots__ = ("buffer", "connection", "ended", "group", "id", "prefix", "replay", "since")

    def __init__(self, id: str, prefix: str, connection: Connection, group: Group) -> None:
        self.id = id
        self.prefix = prefix
        self.connection = connection
        self.group = group
        self.buffer: list[tuple[int, str]] | None = None
        self.replay: asyncio.Task[None] | None = None
        self.since = 0
        # Set when the server ends the subscription itself; otherwise its connection's
        # close code tells why it ended (`end_reason`).
        self.ended: metrics.EndReason | None = None

    def send(self, event_id: int, payload: str, frames: dict[str, OutFrame] | None = None) -> None:
        """Write one event's shared payload, framed for this subscription's transport.

        `frames` shares a fan-out's frames between sockets: most clients number their
        subscriptions alike, so one event is framed a handful of times, not once a socket.
        """
        if frames is None:
            self.connection.send_frame(OutFrame(self.prefix + payload + "}"))
            return
        frame = frames.get(self.prefix)
        if frame is None:
            frame = frames[self.prefix] = OutFrame(self.prefix + payload + "}")
        self.connection.send_frame(frame)


class Group:
    """Identical subscriptions, and the executor they share.

    `backlog` is not None while an event's execution for this group is still awaited:
    it holds that event and every later one (id, and payload or awaitable), and `worker`
    writes them out in order.
    """

    __slots__ = (
        "actions",
        "backlog",
        "executor",
        "hide_suggestions",
        "hooks",
        "key",
        "members",
        "transports",
        "worker",
    )

    def __init__(
        self,
        key: GroupKey,
        executor: Executor[Any],
        actions: frozenset[str] | None,
        hide_suggestions: bool = False,
        hooks: EventHooks | None = None,
    ) -> None:
        self.key = key
        self.executor = executor
        self.hooks = hooks
        self.actions = actions
        self.hide_suggestions = hide_suggestions
        self.members: dict[Subscriber, None] = {}
        self.transports: dict[str, int] = {}  # members by their connection's transport
        self.backlog: deque[tuple[int, str | Awaitable[str]]] | None = None
        self.worker: asyncio.Task[None] | None = None

    def accepts(self, action: str) -> bool:
        return self.actions is None or action in self.actions

    def render(self, root: PostEvent) -> str | Awaitable[str]:
        """The payload text for one event; awaitable only if a resolver (or a hook) was."""
        if self.hooks is not None:
            return self._finish(self.hooks.execute(self.executor, root))
        result = execute_subscription_event(self.executor.build_per_event_executor(root))
        if isinstance(result, ExecutionResult):
            return result_payload(result, self.hide_suggestions)
        return self._finish(result)

    async def _finish(self, result: Awaitable[Any]) -> str:
        finished = await result
        if not isinstance(finished, ExecutionResult):
            raise TypeError(f"Unexpected subscription event result {type(finished).__name__}")
        return result_payload(finished, self.hide_suggestions)


class Groups:
    """All groups of this process, and the event sink that feeds them."""

    def __init__(self, buffer_limit: int, max_groups: int = 1000) -> None:
        self.buffer_limit = buffer_limit
        self.max_groups = max_groups
        self.subscribers = 0
        # By transport: subscribers, and groups with one of them at least (kept as members
        # join and leave, so a scrape of /metrics reads them without a walk).
        self.transport_subscribers: dict[str, int] = {}
        self.transport_groups: dict[str, int] = {}
        self._groups: dict[GroupKey, Group] = {}

    def __len__(self) -> int:
        return len(self._groups)

    def __iter__(self) -> Iterator[Group]:
        return iter(tuple(self._groups.values()))

    def by_transport(self) -> dict[str, tuple[int, int]]:
        """Subscribers, and groups serving at least one of them, by transport."""
        return {
            name: (count, self.transport_groups.get(name, 0))
            for name, count in self.transport_subscribers.items()
        }

    def _count(self, group: Group, transport: str, change: int) -> None:
        """One member over `transport` joined (+1) or left (-1) `group`."""
        before = group.transports.get(transport, 0)
        group.transports[transport] = before + change
        self.transport_subscribers[transport] = (
            self.transport_subscribers.get(transport, 0) + change
        )
        if before == 0 or before + change == 0:  # the group starts or stops serving it
            self.transport_groups[transport] = self.transport_groups.get(transport, 0) + change

    def join(
        self,
        key: GroupKey,
        build: Callable[[], Group],
        subscriber: Callable[[Group], Subscriber],
    ) -> Subscriber:
        """Add a subscriber to the group for `key`, creating the group if needed.

        Raises TooManyGroups when the group would be one more than the process allows.
        """
        group = self._groups.get(key)
        if group is None:
            if len(self._groups) >= self.max_groups:
                raise TooManyGroups(
                    f"This server already runs {self.max_groups} distinct subscriptions; "
                    "subscribe with an operation and variables others use, or retry later."
                )
            group = build()
            self._groups[key] = group
        member = subscriber(group)
        group.members[member] = None
        self.subscribers += 1
        self._count(group, member.connection.transport, 1)
        return member

    def leave(self, subscriber: Subscriber) -> None:
        group = subscriber.group
        if subscriber not in group.members:
            return
        del group.members[subscriber]
        self.subscribers -= 1
        self._count(group, subscriber.connection.transport, -1)
        metrics.SUBSCRIPTIONS_ENDED.labels(end_reason(subscriber)).inc()
        if not group.members and self._groups.get(group.key) is group:
            del self._groups[group.key]
            if group.worker is not None:
                group.worker.cancel()

    async def deliver(self, event: HubEvent) -> None:
        """The hub's sink: called once per event, in id order, under the hub's lock.

        An execution that must wait is left to its group's worker, so the hub moves on
        to the next event meanwhile; and once the groups have taken `SLICE_SECONDS`, the
        loop gets a turn before the next group (a ping, a subscribe), every slice.
        """
        if not self._groups:
            return
        started = time.perf_counter()
        trace = FanOutTrace.begin(event)
        try:
            frames = await self._each_group(event, trace)
        finally:
            if trace is not None:
                trace.end()
        finished = time.perf_counter()
        metrics.EVENTS_FANNED_OUT.inc()
        metrics.FRAMES_SENT.inc(frames)
        metrics.FANOUT_SECONDS.observe(finished - started)
        metrics.DELIVERY_LAG_SECONDS.observe(time.monotonic() - event.received_at)

    async def _each_group(self, event: HubEvent, trace: FanOutTrace | None) -> int:
        """Execute the event once per group that takes it and write (or defer) its frames;
        returns the frames written now."""
        slice_started = time.perf_counter()
        action = event.data["action"]
        root: PostEvent | None = None
        frames = 0
        for group in tuple(self._groups.values()):
            if not group.members or not group.accepts(action):
                continue
            if root is None:
                root = PostEvent.from_event(event.data)
            elif time.perf_counter() - slice_started > SLICE_SECONDS:
                await asyncio.sleep(0)
                slice_started = time.perf_counter()
            try:
                rendered = group.render(root)
            except Exception:
                logger.exception("Executing event %s for a live group failed", event.id)
                rendered = INTERNAL_ERROR_PAYLOAD
                if trace is not None:
                    trace.failed()
            if group.backlog is None and isinstance(rendered, str):
                members = len(group.members)
                written = self.fan_out(group, event.id, rendered)
                frames += written
                if trace is not None:
                    trace.group(members, written)
            else:
                if trace is not None:
                    trace.deferred(len(group.members))
                self._defer(group, event.id, rendered)
        return frames

    def fan_out(self, group: Group, event_id: int, payload: str) -> int:
        """Write one payload to every member (or its replay buffer); returns frames written."""
        written = 0
        frames: dict[str, OutFrame] = {}  # see Subscriber.send
        # A copy: a write may end a slow consumer, which leaves the group at once.
        for member in tuple(group.members):
            if member.since >= event_id:
                continue
            buffer = member.buffer
            if buffer is None:
                member.send(event_id, payload, frames)
                written += 1
                continue
            buffer.append((event_id, payload))
            if len(buffer) > self.buffer_limit:
                metrics.SLOW_CONSUMERS.inc()
                member.connection.close(CloseCode.TRY_AGAIN_LATER, SLOW_CONSUMER_REASON)
        return written

    def _defer(self, group: Group, event_id: int, rendered: str | Awaitable[str]) -> None:
        """Queue an event for the group's worker, behind any the worker still holds.

        At most `buffer_limit` wait: a group further behind than that ends its members
        as slow consumers (they resume with `after:`), and the event is not queued."""
        if group.backlog is None:
            group.backlog = deque()
        if len(group.backlog) >= self.buffer_limit:
            if asyncio.iscoroutine(rendered):
                rendered.close()
            metrics.SLOW_CONSUMERS.inc()
            for member in tuple(group.members):
                member.connection.close(CloseCode.TRY_AGAIN_LATER, SLOW_CONSUMER_REASON)
            return
        group.backlog.append((event_id, rendered))
        if group.worker is None:
            group.worker = asyncio.create_task(self._work(group, group.backlog))

    async def _work(
        self,
        group: Group,
        backlog: deque[tuple[int, str | Awaitable[str]]],
    ) -> None:
        """Write the group's deferred events in id order, awaiting each execution."""
        try:
            while backlog:
                event_id, rendered = backlog[0]
                if isinstance(rendered, str):
                    payload = rendered
                else:
                    try:
                        payload = await rendered
                    except Exception:
                        logger.exception("Executing event %s for a live group failed", event_id)
                        payload = INTERNAL_ERROR_PAYLOAD
                backlog.popleft()
                metrics.FRAMES_SENT.inc(self.fan_out(group, event_id, payload))
        finally:
            # No await between the last check of the backlog and this: nothing queued
            # meanwhile can be left without a worker.
            for _, rendered in backlog:
                if asyncio.iscoroutine(rendered):
                    rendered.close()
            group.backlog = None
            group.worker = None


# Why a subscription ended, by the code its connection was closed with.
END_REASONS: dict[int, metrics.EndReason] = {
    CloseCode.NORMAL: metrics.EndReason.CLIENT,  # graphql-ws's connection_terminate
    CloseCode.TRY_AGAIN_LATER: metrics.EndReason.SLOW_CONSUMER,
    CloseCode.TOKEN_EXPIRED: metrics.EndReason.AUTH_EXPIRY,
    CloseCode.GOING_AWAY: metrics.EndReason.SHUTDOWN,
}


def end_reason(subscriber: Subscriber) -> metrics.EndReason:
    if subscriber.ended is not None:
        return subscriber.ended
    code = subscriber.connection.close_code
    if code is None:
        return metrics.EndReason.CLIENT
    return END_REASONS.get(code, metrics.EndReason.ERROR)
