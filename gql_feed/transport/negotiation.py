"""Content negotiation for `/graphql`: the `Accept` header read as RFC 9110 says.

Every media range carries a weight (`q`, 1 unless given; `q=0` means "not acceptable").
An offer takes the weight of the most specific range that matches it (`type/subtype` with
parameters, then `type/subtype`, then `type/*`, then `*/*`); the best weight wins, and
between equal weights the range the client listed first, then the server's order.

The answers a client can get (GraphQL over HTTP, graphql-sse, Apollo's multipart
subscriptions) are named here once, so the view and the streams choose alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

JSON = "application/json"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
EVENT_STREAM = "text/event-stream"
MULTIPART = "multipart/mixed"
# Queries and mutations: `*/*` (and no Accept at all) gets application/json, as the spec asks.
JSON_TYPES = (JSON, GRAPHQL_RESPONSE_JSON)
# Only Apollo's multipart protocol streams subscriptions as multipart: a range must say so.
MULTIPART_PARAMETER = ("subscriptionspec", "1.0")
# A longer Accept header is read as none at all (application/json).
MAX_HEADER_CHARS = 4096
# Subscriptions: between equal weights and positions, SSE first.
STREAM_TYPES = (EVENT_STREAM, MULTIPART)
# HTTP token characters (RFC 9110), for parsing a content type as browsers do.
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True, slots=True)
class MediaRange:
    type: str
    subtype: str
    parameters: tuple[tuple[str, str], ...]
    weight: float
    position: int

    def specificity(self, type_: str, subtype: str) -> int:
        """How closely this range names the offer (0: it does not match it)."""
        if self.type == "*":
            return 1 if self.subtype == "*" else 0
        if self.type != type_:
            return 0
        if self.subtype == "*":
            return 2
        if self.subtype != subtype:
            return 0
        return 4 if self.parameters else 3


@lru_cache(maxsize=256)
def parse_accept(header: str | None) -> tuple[MediaRange, ...]:
    """The media ranges of an Accept header; unreadable ranges are skipped, not fatal.

    Cached: a client sends the same header with every request."""
    if not header or len(header) > MAX_HEADER_CHARS:
        return ()
    ranges: list[MediaRange] = []
    for position, item in enumerate(_split(header, ",")):
        pieces = _split(item, ";")
        if not pieces:
            continue
        essence, *raw_parameters = pieces
        type_, slash, subtype = essence.strip().lower().partition("/")
        if not slash or not type_ or not subtype or (type_ == "*" and subtype != "*"):
            continue
        weight = 1.0
        parameters: list[tuple[str, str]] = []
        for raw in raw_parameters:
            name, _, value = raw.partition("=")
            name = name.strip().lower()
            value = value.strip().strip('"')
            if name == "q":
                weight = _weight(value)
            elif name:
                parameters.append((name, value))
        ranges.append(MediaRange(type_, subtype, tuple(parameters), weight, position))
    return tuple(ranges)


def choose(
    ranges: Sequence[MediaRange],
    offers: Sequence[str],
    *,
    explicit: bool = False,
    required: Mapping[str, tuple[str, str]] | None = None,
) -> str | None:
    """The offer the client prefers, or None if it accepts none of them.

    `explicit`: only ranges naming the offer's type and subtype count (a wildcard never
    opens a stream). `required`: by offer, a parameter a range naming it must carry."""
    best: tuple[float, int, int] | None = None
    chosen = None
    for preference, offer in enumerate(offers):
        type_, _, subtype = offer.partition("/")
        needed = required.get(offer) if required else None
        match: MediaRange | None = None
        for media_range in ranges:
            specificity = media_range.specificity(type_, subtype)
            if specificity == 0 or (explicit and specificity < 3):
                continue
            if needed is not None and needed not in media_range.parameters:
                continue
            if match is None or specificity > match.specificity(type_, subtype):
                match = media_range
        if match is None or match.weight <= 0:
            continue
        rank = (-match.weight, match.position, preference)
        if best is None or rank < best:
            best, chosen = rank, offer
    return chosen


def json_type(ranges: Sequence[MediaRange]) -> str | None:
    """The JSON media type to answer a query or mutation with; None when the client names
    types and refuses both (no Accept, or no readable range, is `application/json`)."""
    if not ranges:
        return JSON
    return choose(ranges, JSON_TYPES)


def stream_type(ranges: Sequence[MediaRange]) -> str | None:
    """`text/event-stream` or `multipart/mixed` (Apollo's protocol), if the client names one."""
    return choose(ranges, STREAM_TYPES, explicit=True, required={MULTIPART: MULTIPART_PARAMETER})


@lru_cache(maxsize=256)
def accepted(header: str | None) -> tuple[str | None, str | None]:
    """(`json_type`, `stream_type`) of an Accept header, cached as `parse_accept` is."""
    ranges = parse_accept(header)
    return json_type(ranges), stream_type(ranges)


def _weight(value: str) -> float:
    """A `q` value: 0 to 1 with at most three decimals; anything else counts as 1."""
    try:
        weight = float(value)
    except ValueError:
        return 1.0
    if not 0.0 <= weight <= 1.0:
        return 1.0
    return weight


def _split(text: str, separator: str) -> list[str]:
    """`text` split on `separator` outside quoted strings."""
    if '"' not in text:
        return [part for part in (p.strip() for p in text.split(separator)) if part]
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part for part in (p.strip() for p in parts) if part]


def media_type(content_type: str) -> str | None:
    """`type/subtype` of a `Content-Type` value, lower-cased; None when it does not parse.
    One reading for the CSRF check and the streams' body sniffing, so they never disagree
    about what a request declared."""
    essence = content_type.split(";", 1)[0].strip(" \t\r\n")
    type_, slash, subtype = essence.partition("/")
    if not slash or not type_ or not subtype or not set(type_ + subtype) <= _TOKEN:
        return None
    return essence.lower()
