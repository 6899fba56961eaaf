"""Resuming with `postEvents(after: id)`: replay from the log, then go live, seamlessly.

The subscriber joins its group first, with a buffer, at a moment when the hub has
delivered every event up to `upto` and nothing after: every later event reaches the
buffer. The replay then sends events `after+1 … upto` from the log (executing them for
this one subscriber: replay is rare), the buffer is flushed skipping ids already sent,
and the buffer is dropped so the next event is written straight to the socket. The
flush and the switch happen with no await in between, so no live event can slip past
(a gap) or in twice (a duplicate). Event ids are gapless and commit-ordered
(`storage.event_log`), which is what makes "everything up to `upto` is in the log" true.
"""

from __future__ import annotations

import logging

from gql_feed.engine.results import INTERNAL_ERROR_PAYLOAD
from gql_feed.events.hub import EventHub, HubEvent
from gql_feed.live.groups import Subscriber
from gql_feed.schema.types import PostEvent
from gql_feed.services.errors import EventLogExpired

logger = logging.getLogger(__name__)

BATCH = 500


async def replay(
    subscriber: Subscriber, hub: EventHub, after: int, upto: int, max_events: int
) -> None:
    """Send what the subscriber missed, then switch it to live delivery.

    Raises EventLogExpired when the resume point cannot be served from the log.
    """
    oldest, newest = await hub.log_bounds()
    if after > newest:
        raise EventLogExpired(
            f"Event {after} is unknown to this server; refetch instead of resuming."
        )
    if newest and oldest > after + 1:
        raise EventLogExpired(
            f"Events after {after} are no longer kept (oldest is {oldest}); refetch."
        )
    if upto - after > max_events:
        raise EventLogExpired(
            f"More than {max_events} events happened after {after}; refetch instead."
        )
    # The client may have seen `after` through another process, ahead of this one's
    # hub. Bring the hub up to it while still buffering (the buffer drops ids up to
    # `after` below), so no event up to `after` can reach this subscriber live, late.
    await hub.catch_up_to(after)
    group = subscriber.group
    connection = subscriber.connection
    cursor = after
    while cursor < upto and not connection.closing:
        events = await hub.read_after(cursor, min(BATCH, upto - cursor))
        if not events:
            raise EventLogExpired(f"Event {cursor + 1} is no longer kept; refetch.")
        for logged in events:
            if logged.id != cursor + 1:
                raise EventLogExpired(f"Event {cursor + 1} is no longer kept; refetch.")
            cursor = logged.id
            event = HubEvent.read(logged)  # None: a newer version's, skipped as the hub does
            if event is None or not group.accepts(event.data["action"]):
                continue
            try:
                rendered = group.render(PostEvent.from_event(event.data))
                payload = rendered if isinstance(rendered, str) else await rendered
            except Exception:
                logger.exception("Replaying event %s failed", event.id)
                payload = INTERNAL_ERROR_PAYLOAD
            subscriber.send(event.id, payload)
    # From here to the end: no await, so no live event can interleave.
    buffered = subscriber.buffer or []
    subscriber.buffer = None
    for event_id, payload in buffered:
        if event_id > cursor:
            subscriber.send(event_id, payload)
