"""Grouped fan-out: each event is executed once per group, not once per subscriber.

Subscribers whose operation text, operation name, variables (except a resume point)
and visible viewer are the same would receive byte-identical payloads, so they share a
group. For each event the hub hands over, the event's root value is built once, every
group whose `actions` filter takes it runs its prebuilt graphql-core executor on it
once and encodes the result once, and each member gets that text with its own
subscription id spliced in front. The per-subscriber work is a string concatenation
and an eager socket write (see `connection`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from graphql import ExecutionResult
from graphql.execution import Executor, execute_subscription_event

from gql_feed.api.live import metrics
from gql_feed.api.live.close_codes import CloseCode
from gql_feed.api.live.connection import SLOW_CONSUMER_REASON, Connection
from gql_feed.api.live.results import INTERNAL_ERROR_PAYLOAD, result_payload
from gql_feed.api.types import PostEvent
from gql_feed.events.hub import HubEvent

logger = logging.getLogger(__name__)


class GroupKey(NamedTuple):
    query: str
    operation_name: str | None
    variables: str  # canonical JSON, sorted keys, without resume-only variables
    viewer_id: int | None  # only when the operation selects a viewer-dependent field


class Subscriber:
    """One live subscription: where its frames go, and the text that starts them.

    `buffer` is not None while the subscription replays from the log: live payloads
    collect there (as (event id, shared payload text)) until the replay catches up.
    """

    __slots__ = ("buffer", "connection", "group", "id", "prefix", "replay")

    def __init__(self, id: str, prefix: str, connection: Connection, group: Group) -> None:
        self.id = id
        self.prefix = prefix
        self.connection = connection
        self.group = group
        self.buffer: list[tuple[int, str]] | None = None
        self.replay: asyncio.Task[None] | None = None

    def send(self, event_id: int, payload: str) -> None:
        """Write one event's shared payload, framed for this subscription's transport."""
        self.connection.send_text(self.prefix + payload + "}")


class Group:
    """Identical subscriptions, and the executor they share."""

    __slots__ = ("actions", "executor", "hide_suggestions", "key", "members")

    def __init__(
        self,
        key: GroupKey,
        executor: Executor[Any],
        actions: frozenset[str] | None,
        hide_suggestions: bool = False,
    ) -> None:
        self.key = key
        self.executor = executor
        self.actions = actions
        self.hide_suggestions = hide_suggestions
        self.members: dict[Subscriber, None] = {}

    def accepts(self, action: str) -> bool:
        return self.actions is None or action in self.actions

    def render(self, root: PostEvent) -> str | Awaitable[str]:
        """The payload text for one event; awaitable only if a resolver was async."""
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

    def __init__(self, buffer_limit: int) -> None:
        self.buffer_limit = buffer_limit
        self.subscribers = 0
        self._groups: dict[GroupKey, Group] = {}

    def __len__(self) -> int:
        return len(self._groups)

    def join(
        self,
        key: GroupKey,
        build: Callable[[], Group],
        subscriber: Callable[[Group], Subscriber],
    ) -> Subscriber:
        """Add a subscriber to the group for `key`, creating the group if needed."""
        group = self._groups.get(key)
        if group is None:
            group = build()
            self._groups[key] = group
        member = subscriber(group)
        group.members[member] = None
        self.subscribers += 1
        return member

    def leave(self, subscriber: Subscriber) -> None:
        group = subscriber.group
        if subscriber not in group.members:
            return
        del group.members[subscriber]
        self.subscribers -= 1
        if not group.members and self._groups.get(group.key) is group:
            del self._groups[group.key]

    async def deliver(self, event: HubEvent) -> None:
        """The hub's sink: called once per event, in id order."""
        if not self._groups:
            return
        started = time.perf_counter()
        action = event.data["action"]
        root: PostEvent | None = None
        frames = 0
        for group in tuple(self._groups.values()):
            if not group.members or not group.accepts(action):
                continue
            if root is None:
                root = PostEvent.from_event(event.data)
            try:
                rendered = group.render(root)
                payload = rendered if isinstance(rendered, str) else await rendered
            except Exception:
                logger.exception("Executing event %s for a live group failed", event.id)
                payload = INTERNAL_ERROR_PAYLOAD
            frames += self.fan_out(group, event.id, payload)
        finished = time.perf_counter()
        metrics.EVENTS_FANNED_OUT.inc()
        metrics.FRAMES_SENT.inc(frames)
        metrics.FANOUT_SECONDS.observe(finished - started)
        metrics.DELIVERY_LAG_SECONDS.observe(time.monotonic() - event.received_at)

    def fan_out(self, group: Group, event_id: int, payload: str) -> int:
        """Write one payload to every member (or its replay buffer); returns frames written."""
        written = 0
        # A copy: a write may end a slow consumer, which leaves the group at once.
        for member in tuple(group.members):
            buffer = member.buffer
            if buffer is None:
                member.send(event_id, payload)
                written += 1
                continue
            buffer.append((event_id, payload))
            if len(buffer) > self.buffer_limit:
                metrics.SLOW_CONSUMERS.inc()
                member.connection.close(CloseCode.TRY_AGAIN_LATER, SLOW_CONSUMER_REASON)
        return written
