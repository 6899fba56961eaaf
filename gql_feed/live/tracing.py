"""One span per event and process for the fan-out, with a record per group, never per socket.

A trace that followed every delivery would cost a span per subscriber and event: with
thousands of subscribers, more than the delivery itself. So an event's fan-out in this
process is one CONSUMER span (the messaging conventions' `process`), and each group it
reaches adds one span event to it: how many subscribers the group had, how many frames
it wrote, and how long after the fan-out began its last frame was handed to its sockets
(written at once, or in the next flush: `gql_feed_live_flush_seconds`).

The span is a child of the publish span the event carries (`HubEvent.trace`), in this
process or another, so one trace runs from the mutation's request to the socket writes;
it also links that span, as the conventions ask of a consumer, so a tool that shows
links rather than parents across processes finds the cause as well. An event that
carries no context (its publisher did not trace) starts a trace of its own.

Nothing is built when tracing is off: `begin` returns None, and the fan-out checks for
that once per group.
"""

from __future__ import annotations

import time

from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, StatusCode, get_current_span

from gql_feed.events.hub import HubEvent
from gql_feed.observability.tracing import TRACER, tracing_on

SPAN_NAME = "process postEvents"
GROUP_EVENT = "group"


class FanOutTrace:
    """The span of one event's fan-out in this process, and its per-group records."""

    __slots__ = ("frames", "groups", "span", "started")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.started = time.perf_counter()
        self.groups = 0
        self.frames = 0

    @classmethod
    def begin(cls, event: HubEvent) -> FanOutTrace | None:
        """The event's fan-out span, or None when tracing is off."""
        if not tracing_on():
            return None
        parent = event.trace if event.trace is not None else Context()
        publish = get_current_span(parent).get_span_context()
        links = [Link(publish)] if publish.is_valid else None
        span = TRACER.start_span(
            SPAN_NAME,
            context=parent,
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={
                "messaging.operation.type": "process",
                "messaging.operation.name": "deliver",
                "messaging.message.id": str(event.id),
                "gql_feed.event.action": event.data["action"],
            },
        )
        return cls(span)

    def group(self, subscribers: int, frames: int) -> None:
        """A group's frames are written: record it (after its last write, so the time is
        the time to that write)."""
        self.groups += 1
        self.frames += frames
        self.span.add_event(
            GROUP_EVENT,
            {
                "gql_feed.group.subscribers": subscribers,
                "gql_feed.group.frames": frames,
                "gql_feed.group.last_write_seconds": time.perf_counter() - self.started,
            },
        )

    def deferred(self, subscribers: int) -> None:
        """A group whose execution must wait: its frames leave later, from its worker."""
        self.groups += 1
        self.span.add_event(
            GROUP_EVENT,
            {"gql_feed.group.subscribers": subscribers, "gql_feed.group.deferred": True},
        )

    def failed(self) -> None:
        self.span.set_status(StatusCode.ERROR, "executing the event for a group failed")

    def end(self) -> None:
        self.span.set_attribute("gql_feed.fanout.groups", self.groups)
        self.span.set_attribute("gql_feed.fanout.frames", self.frames)
        self.span.end()
