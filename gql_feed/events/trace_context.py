"""The trace context a bus message carries, so that every process's fan-out joins the trace.

When tracing is on, the publisher puts the W3C context of its publish span (what the
global propagator injects: `traceparent`, and `tracestate` when there is one) at the end
of the message, as one more member of the event's JSON object:

    {"id":7,"v":1,"action":"CREATED",...,"otel":{"traceparent":"00-…-…-01"}}

An event too large to travel inline goes as its id, and with a context the id travels as
`{"id":7,"otel":{…}}` rather than `#7`: a reader of any version takes the id from it and
reads the event from the log (`payload.event_id`), so a process of an older deploy still
hears of it at once. When tracing is off nothing is added: not a byte, not an inject.
A reader cuts the context off and sees the message as it would have been without it
(`#7` again for an id: to a hub, an event that says nothing but its id means the same).

The member comes last and is spliced in and cut out as text, so the event's JSON is
neither decoded nor encoded again for it, and a reader hands on exactly the text the log
stores. It is found by its marker `,"otel":{"`, which no event can contain elsewhere:
inside a JSON string every `"` is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from opentelemetry import propagate
from opentelemetry.context import Context

from gql_feed.observability.tracing import tracing_on

MARKER = ',"otel":{"'
ID_ONLY = '{"id":'
# Where the marker may start, counted from the end: a traceparent and a tracestate (at
# most 512 characters by the W3C rules) with their keys fit well within this.
TAIL_CHARS = 1_024


def current_carrier() -> dict[str, str] | None:
    """The current span's context as the propagator writes it; None when tracing is off."""
    if not tracing_on():
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


def attach(text: str, carrier: Mapping[str, str] | None) -> str:
    """`text` (a JSON object) with the carrier as its last member, or as it is without one."""
    if not carrier:
        return text
    return f'{text[:-1]},"otel":{orjson.dumps(carrier).decode()}}}'


def detach(message: str) -> tuple[str, Context | None]:
    """The message as it would be without its carrier (`#N` for an id), and the context.

    The context is None when there was none, when it does not read, or when this
    process does not trace (the carrier is cut off all the same).
    """
    start = message.rfind(MARKER, max(0, len(message) - TAIL_CHARS))
    if start < 0 or not message.endswith("}"):
        return message, None
    text = message[:start] + "}"
    if text.startswith(ID_ONLY) and text[len(ID_ONLY) : -1].isdigit():
        text = f"#{text[len(ID_ONLY) : -1]}"
    if not tracing_on():
        return text, None
    try:
        carrier = orjson.loads(message[start + len(MARKER) - 2 : -1])
    except orjson.JSONDecodeError:
        return text, None
    if not isinstance(carrier, dict) or not all(
        isinstance(value, str) for value in carrier.values()
    ):
        return text, None
    return text, propagate.extract(carrier)
