"""Encoded answers to queries, exact until the data changes: no time-to-live, no staleness.

Every change to a post commits one event id, gapless and in commit order, and every
process's hub sees every id. So an answer computed while this process knew event N stays
right until N+1 commits. The cache keeps the encoded JSON of successful query answers and
drops all of them the moment a newer event is known here: when this process publishes one
(`note`, before the mutation answers) and when its hub hands one on (`deliver`, before
the live fan-out, so a socket of this process never shows an event ahead of this cache).

A cached answer is served only after asking the event log for its newest id (one query
shared by every request waiting at that moment, and begun after each of them arrived) and
letting the hub catch up to it. So a client that got event N anywhere, over any process's
socket, and then reads here, never gets an answer from before N, even when this process's
bus message for N is late or lost.

What the cache may hold is read from the fields' declared policies (schema/policies.py),
through the document's analysis (engine/analysis.py): only a query whose every field
changes only with events (not `User.status`: updateStatus commits no event; not
`Query.user`, `node` or `nodes`: a signup commits none, so "no such user" can become a
user) is kept, and one that selects
a field depending on the viewer (`User.email`) is kept per viewer. A field that declares
no policy keeps the schema from being built at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from prometheus_client import Counter

from gql_feed.engine.analysis import DocumentAnalysis
from gql_feed.lru import ByteLRU

if TYPE_CHECKING:
    from gql_feed.events.hub import EventHub, HubEvent
    from gql_feed.storage.event_log import LoggedEvent

logger = logging.getLogger(__name__)

HITS = Counter("gql_feed_response_cache_hits_total", "Queries answered from the response cache")
MISSES = Counter(
    "gql_feed_response_cache_misses_total", "Cacheable queries executed, for want of a kept answer"
)
SHARED = Counter(
    "gql_feed_response_cache_shared_total",
    "Cacheable queries answered by an execution of the same query already under way",
)

ResponseKey = tuple[str, str | None, bytes, int | None]


@dataclass(frozen=True, slots=True)
class Flight:
    """One execution under way: the generation it began at, and its answer to come."""

    generation: int
    answer: asyncio.Future[bytes | None]


class ResponseCache:
    """Encoded answers by (document, operation, variables, viewer where it matters).

    `newest` reads the event log's newest id; `hub` is this process's event hub, whose
    sinks must include this cache (ahead of the live fan-out).
    """

    def __init__(self, max_bytes: int, newest: Callable[[], Awaitable[int]], hub: EventHub) -> None:
        self.enabled = max_bytes > 0
        # Every answer kept is of the current generation: `store` keeps only those, and
        # `note` drops them all as it moves the generation on.
        self.answers: ByteLRU[ResponseKey, bytes] = ByteLRU(max_bytes)
        self.newest = newest
        self.hub = hub
        # Bumped (and every answer dropped) whenever this process learns of a newer event.
        self.generation = 0
        self.known_event_id = 0
        # Executions under way, by key, with the generation each began at: a request for
        # the same key arriving meanwhile may share the answer (`join`).
        self.flights: dict[ResponseKey, Flight] = {}

    # Keys.

    def key(
        self,
        document: DocumentAnalysis,
        operation_name: str | None,
        variables: Mapping[str, object] | None,
        viewer_id: int | None,
    ) -> ResponseKey | None:
        """The key an answer to this request is kept under; None when it may not be kept."""
        if not self.enabled:
            return None
        operation = document.operation(operation_name)
        if operation is None or not operation.cacheable:
            return None
        try:
            encoded = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return None
        return (
            document.key,
            operation_name,
            encoded,
            viewer_id if operation.viewer_dependent else None,
        )

    # Answers.

    async def lookup(self, key: ResponseKey) -> bytes | None:
        """A kept answer, once the hub is known to have seen every event committed before
        this call; None on a miss (or when the log cannot be read: execution decides)."""
        if self.answers.get(key) is None:
            return None
        # Every event up to the log's newest has reached this cache (and dropped older
        # answers), or the answer is not served: the hub's own bookkeeping is not relied upon.
        answer = self.answers.get(key) if await self._fresh() else None
        if answer is not None:
            HITS.inc()
        return answer

    async def join(self, key: ResponseKey) -> bytes | None:
        """The answer of an execution of the same key already under way, or None.

        When readers keep coming while every write drops the kept answers, each miss
        would otherwise execute the same page again. An execution that began before
        this call is shared only if no event had committed between its start and this
        call (checked against the log, as `lookup` does): it then read everything this
        request must see. None also when that execution fails (the caller executes)."""
        flight = self.flights.get(key)
        if flight is None or flight.generation != self.generation:
            return None
        if not await self._fresh() or flight.generation != self.generation:
            return None
        answer = await asyncio.shield(flight.answer)
        if answer is not None:
            SHARED.inc()
        return answer

    def take_off(self, key: ResponseKey) -> Flight:
        """Call before executing: the flight others may `join`; end it with `land`."""
        MISSES.inc()
        flight = Flight(self.generation, asyncio.get_running_loop().create_future())
        self.flights[key] = flight
        return flight

    def land(self, key: ResponseKey, flight: Flight, answer: bytes | None) -> None:
        """The execution ended: its answer (None when it may not be shared) to those who
        joined it, and kept if no event arrived meanwhile."""
        if self.flights.get(key) is flight:
            del self.flights[key]
        if not flight.answer.done():
            flight.answer.set_result(answer)
        if answer is not None:
            self.store(key, flight.generation, answer)

    async def _fresh(self) -> bool:
        """Whether this process has seen every event committed before this call."""
        try:
            newest = await self.newest()
            if newest > self.known_event_id:
                await self.hub.catch_up_to(newest)
        except Exception:
            logger.warning("Could not check the event log; executing instead", exc_info=True)
            return False
        return self.known_event_id >= newest

    def store(self, key: ResponseKey, started: int, answer: bytes) -> None:
        """Keep the answer of an execution begun at generation `started`, if no event
        arrived meanwhile."""
        if started == self.generation:
            self.answers.put(key, answer, len(answer) + len(key[2]) + 128)

    # Invalidation.

    def begin_at(self, event_id: int) -> None:
        """The hub started at `event_id`: every event up to it committed before any answer."""
        self.known_event_id = max(self.known_event_id, event_id)

    def note(self, event_id: int) -> None:
        """This process committed `event_id`: drop every answer before the mutation answers."""
        if event_id > self.known_event_id:
            self.known_event_id = event_id
            self.generation += 1
            self.answers.clear()

    async def deliver(self, event: HubEvent) -> None:
        """The hub's sink: a newer event from any process drops every answer."""
        self.note(event.id)


class InvalidatingPublisher:
    """The posts' publisher: drops this process's cached answers, then publishes.

    The hub hands a published event to its sinks in a task of its own, so without this a
    read arriving right after createPost answered could still be served the old page.
    """

    def __init__(self, cache: ResponseCache, hub: EventHub) -> None:
        self.cache = cache
        self.hub = hub

    async def publish(self, event: LoggedEvent) -> None:
        self.cache.note(event.id)
        await self.hub.publish(event)
