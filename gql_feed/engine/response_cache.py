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

What the cache may not hold, because it can change without an event:
- `User.status` (updateStatus commits no event) and `Query.me` (the viewer themself);
- `Query.user`, `Query.node` and `Query.nodes` (a signup commits no event, so "no such
  user" can become a user).
A document that selects any of them is always executed. A document that selects a field
whose value depends on the viewer (`VIEWER_DEPENDENT_FIELDS`) is kept per viewer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    parse,
    visit,
)
from prometheus_client import Counter

from gql_feed.engine.normalize import document_key
from gql_feed.lru import ByteLRU
from gql_feed.schema.types import VIEWER_DEPENDENT_FIELDS

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

# Fields whose value can change without an event id being committed (see the docstring).
UNVERSIONED_FIELDS = frozenset(
    {("Query", "me"), ("Query", "user"), ("Query", "node"), ("Query", "nodes"), ("User", "status")}
)
# What one remembered document (its text and facts) is taken to weigh besides its text.
DOCUMENT_OVERHEAD_BYTES = 512
# Documents remembered by text, as a share of the answers' bytes.
DOCUMENT_SHARE = 8

ResponseKey = tuple[str, str | None, bytes, int | None]


@dataclass(frozen=True, slots=True)
class Flight:
    """One execution under way: the generation it began at, and its answer to come."""

    generation: int
    answer: asyncio.Future[bytes | None]


@dataclass(frozen=True, slots=True)
class OperationFacts:
    """What caching one operation of a document needs to know."""

    cacheable: bool
    viewer_dependent: bool


@dataclass(frozen=True, slots=True)
class DocumentFacts:
    key: str
    operations: Mapping[str | None, OperationFacts]

    def operation(self, name: str | None) -> OperationFacts | None:
        """The operation a request names; with no name, the document's only one."""
        if name is None and len(self.operations) == 1:
            return next(iter(self.operations.values()))
        return self.operations.get(name) if name is not None else None


class _SelectedFields(Visitor):
    """Every (parent type, field) an operation selects, fragments included."""

    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.fields: set[tuple[str, str]] = set()

    def enter_field(self, node: FieldNode, *_: object) -> None:
        parent = self.type_info.get_parent_type()
        if parent is not None:
            self.fields.add((get_named_type(parent).name, node.name.value))


def document_facts(schema: GraphQLSchema, document: DocumentNode) -> DocumentFacts:
    """Facts per operation. Fragments are followed: a field selected through a fragment
    spread counts for every operation of the document, which can only make an operation
    less cacheable, never wrongly cacheable."""
    fragments: set[tuple[str, str]] = set()
    per_operation: dict[str | None, set[tuple[str, str]]] = {}
    kinds: dict[str | None, OperationType] = {}
    for definition in document.definitions:
        type_info = TypeInfo(schema)
        fields = _SelectedFields(type_info)
        visit(definition, TypeInfoVisitor(type_info, fields))
        if isinstance(definition, OperationDefinitionNode):
            name = definition.name.value if definition.name else None
            per_operation[name] = fields.fields
            kinds[name] = definition.operation
        else:
            fragments |= fields.fields
    operations = {}
    for name, selected in per_operation.items():
        reached = selected | fragments
        operations[name] = OperationFacts(
            cacheable=kinds[name] is OperationType.QUERY and not reached & UNVERSIONED_FIELDS,
            viewer_dependent=bool(reached & VIEWER_DEPENDENT_FIELDS),
        )
    return DocumentFacts(document_key(document), operations)


class ResponseCache:
    """Encoded answers by (document, operation, variables, viewer where it matters).

    `newest` reads the event log's newest id; `hub` is this process's event hub, whose
    sinks must include this cache (ahead of the live fan-out). `max_tokens` bounds the
    parse of a document this cache has not seen, as it bounds execution's own.
    """

    def __init__(
        self,
        schema: GraphQLSchema,
        max_bytes: int,
        newest: Callable[[], Awaitable[int]],
        hub: EventHub,
        max_tokens: int | None = None,
    ) -> None:
        self.schema = schema
        self.max_tokens = max_tokens
        self.enabled = max_bytes > 0
        self.answers: ByteLRU[ResponseKey, tuple[int, bytes]] = ByteLRU(max_bytes)
        self.documents: ByteLRU[str, DocumentFacts | None] = ByteLRU(
            max(max_bytes // DOCUMENT_SHARE, 1)
        )
        self.newest = newest
        self.hub = hub
        # Bumped (and every answer dropped) whenever this process learns of a newer event.
        self.generation = 0
        self.known_event_id = 0
        # Executions under way, by key, with the generation each began at: a request for
        # the same key arriving meanwhile may share the answer (`join`).
        self.flights: dict[ResponseKey, Flight] = {}

    # Keys.

    def facts(self, query: str) -> DocumentFacts | None:
        """Facts about a document text, parsed once per text; None if it does not parse
        (execution then reports why, and nothing is stored)."""
        facts = self.documents.get(query)
        if facts is None and query not in self.documents:
            try:
                facts = document_facts(self.schema, parse(query, max_tokens=self.max_tokens))
            except GraphQLError:
                facts = None
            self.documents.put(query, facts, len(query) + DOCUMENT_OVERHEAD_BYTES)
        return facts

    def key(
        self,
        query: str,
        operation_name: str | None,
        variables: Mapping[str, object] | None,
        viewer_id: int | None,
    ) -> ResponseKey | None:
        """The key an answer to this request is kept under; None when it may not be kept."""
        if not self.enabled:
            return None
        facts = self.facts(query)
        operation = facts.operation(operation_name) if facts else None
        if facts is None or operation is None or not operation.cacheable:
            return None
        try:
            encoded = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return None
        return (
            facts.key,
            operation_name,
            encoded,
            viewer_id if operation.viewer_dependent else None,
        )

    # Answers.

    async def lookup(self, key: ResponseKey) -> bytes | None:
        """A kept answer, once the hub is known to have seen every event committed before
        this call; None on a miss (or when the log cannot be read: execution decides)."""
        if self._current(key) is None:
            return None
        # Every event up to the log's newest has reached this cache (and dropped older
        # answers), or the answer is not served: the hub's own bookkeeping is not relied upon.
        answer = self._current(key) if await self._fresh() else None
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
            self.answers.put(key, (started, answer), len(answer) + len(key[2]) + 128)

    def _current(self, key: ResponseKey) -> bytes | None:
        entry = self.answers.get(key)
        if entry is None or entry[0] != self.generation:
            return None
        return entry[1]

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
