"""The GraphQL side of the socket: validated operations, grouped subscriptions, one-shot runs.

Both subprotocols call in here with what a client asked for; nothing here knows how a
message is framed. Subscribing is synchronous once the document is prepared (a cached
lookup), so a live subscriber is added to its group without any await.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import orjson
import strawberry
from graphql import GraphQLError
from graphql.execution import get_argument_values, get_variable_values

from gql_feed.compat.strawberry import build_executor, graphql_schema
from gql_feed.config import Settings
from gql_feed.engine.documents import DocumentCache, Invalid, Operation
from gql_feed.engine.parsing import DocumentParser
from gql_feed.engine.persisted import PersistedDocuments
from gql_feed.engine.results import feed_error, payload_text
from gql_feed.live.groups import Group, GroupKey, Groups, Subscriber, TooManyGroups
from gql_feed.live.hooks import EventHooks, acts_while_executing
from gql_feed.live.metrics import EndReason
from gql_feed.live.quotas import UserQuotas
from gql_feed.live.replay import replay
from gql_feed.observability.metrics import observe_operation
from gql_feed.schema.context import Context, Services
from gql_feed.services.errors import BadUserInput, EventLogExpired
from gql_feed.services.tokens import Claims


@dataclass(frozen=True, slots=True)
class Request:
    """One subscribe/start message's operation."""

    query: str
    operation_name: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Joined:
    """A subscriber in its group; with `after`, it must replay `after+1 … upto` first."""

    subscriber: Subscriber
    after: int | None
    upto: int


class _GroupFailed(Exception):
    def __init__(self, errors: list[GraphQLError]) -> None:
        super().__init__("cannot build the group's executor")
        self.errors = errors


class Operations:
    def __init__(
        self,
        schema: strawberry.Schema,
        services: Services,
        settings: Settings,
        persisted: PersistedDocuments,
        parser: DocumentParser | None = None,
    ) -> None:
        """`parser` should be the schema's own (`DocumentChecks.parser`), so that a text
        is parsed and analysed once for HTTP and live operations alike."""
        self.schema = schema
        self.services = services
        self.settings = settings
        self.persisted = persisted
        if parser is None:
            parser = DocumentParser(
                settings.max_query_bytes, settings.max_query_tokens, settings.document_cache_bytes
            )
        self.documents = DocumentCache(schema, parser, hide_suggestions=settings.production)
        self.groups = Groups(
            buffer_limit=settings.replay_max_events, max_groups=settings.live_max_groups
        )
        self.quotas = UserQuotas.for_settings(settings)
        # Whether events must run the extensions' execution hooks (`live.hooks`).
        self.hooked = acts_while_executing(schema)

    async def prepare(self, request: Request) -> Operation | Invalid:
        return await self.documents.prepare(request.query, request.operation_name)

    def subscribe(
        self,
        operation: Operation,
        request: Request,
        claims: Claims,
        make_subscriber: Callable[[Group], Subscriber],
        held: Collection[GroupKey] = (),
        resume_after: int | None = None,
    ) -> Joined | list[GraphQLError]:
        """`join`, counted as a subscription operation (its time: the time to join)."""
        started = time.perf_counter()
        joined = self.join(operation, request, claims, make_subscriber, held, resume_after)
        errors = joined if isinstance(joined, list) else None
        observe_operation("subscription", errors, time.perf_counter() - started)
        return joined

    def join(
        self,
        operation: Operation,
        request: Request,
        claims: Claims,
        make_subscriber: Callable[[Group], Subscriber],
        held: Collection[GroupKey] = (),
        resume_after: int | None = None,
    ) -> Joined | list[GraphQLError]:
        """Join (or found) the subscriber's group; errors if the request cannot run.

        `held` are the groups the subscriber's connection is in already: joining one more
        than `ws_max_groups_per_connection` is refused, and so is one past its user's
        caps (`quotas`). `resume_after` is a resume point
        the transport carries (SSE's Last-Event-ID): it is newer than the operation's own
        `after`, so it wins.
        """
        field_node, field_def = operation.root_field, operation.root_field_def
        if field_node is None or field_def is None:
            return [GraphQLError("This subscription selects no field to subscribe to.")]
        hide = self.settings.production
        coerced = get_variable_values(
            graphql_schema(self.schema),
            operation.definition.variable_definitions or (),
            request.variables,
            hide_suggestions=hide,
        )
        if isinstance(coerced, list):
            return coerced
        try:
            arguments = get_argument_values(field_def, field_node, coerced, hide_suggestions=hide)
        except GraphQLError as error:
            return [error]
        try:
            after = resume_point(arguments.get("after"))
        except BadUserInput as error:
            return [feed_error(error)]
        if resume_after is not None:
            after = resume_after
        actions = arguments.get("actions")
        action_names = (
            None if actions is None else frozenset(getattr(a, "value", a) for a in actions)
        )
        # Declared variables only, as coerced (so `["CREATED"]` and `"CREATED"` for a list
        # are one value), in one key order; a variable that is only the resume point
        # changes the replay, not the live events.
        shared = {
            name: value
            for name, value in coerced.coerced.items()
            if name not in operation.after_only_variables
        }
        try:
            variables_key = orjson.dumps(shared, option=orjson.OPT_SORT_KEYS).decode()
        except (orjson.JSONEncodeError, TypeError):
            return [GraphQLError("The variables cannot be encoded as JSON.")]
        viewer_id = claims.user_id if operation.viewer_dependent else None
        # The operation's own name: `operationName` may be left out when it is the only one.
        definition_name = operation.definition.name
        name = definition_name.value if definition_name is not None else None
        key = GroupKey(operation.key, name, variables_key, viewer_id)
        per_connection = self.settings.ws_max_groups_per_connection
        if key not in held and len(held) >= per_connection:
            refusal = TooManyGroups(
                f"At most {per_connection} distinct subscriptions per connection; "
                "subscribe again with an operation and variables this connection already uses."
            )
            return [feed_error(refusal)]
        user_refusal = self.quotas.refusal(claims.user_id, key)
        if user_refusal is not None:
            return [feed_error(user_refusal)]

        def build() -> Group:
            return self._group(key, operation, request, claims, action_names)

        try:
            subscriber = self.groups.join(key, build, make_subscriber)
        except _GroupFailed as failed:
            return failed.errors
        except TooManyGroups as refusal:
            return [feed_error(refusal)]
        self.quotas.joined(claims.user_id, subscriber)
        upto = self.services.hub.last_id
        subscriber.since = upto
        if after is not None:
            subscriber.buffer = []
        return Joined(subscriber, after, upto)

    async def replay(self, subscriber: Subscriber, after: int, upto: int) -> None:
        """Send a resumed subscriber the events after `after` up to `upto` from the log
        (`live.replay`); EventLogExpired when the log no longer holds them."""
        try:
            await replay(
                subscriber, self.services.hub, after, upto, self.settings.replay_max_events
            )
        except EventLogExpired:
            subscriber.ended = EndReason.COMPLETE  # the server ends it, with an error
            raise

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.quotas.left(subscriber)
        self.groups.leave(subscriber)

    async def execute(
        self, request: Request, claims: Claims, client: str, kind: str = "query"
    ) -> str:
        """A query or mutation (`kind`), run once; the payload text of its single result."""
        started = time.perf_counter()
        result = await self.schema.execute(
            request.query,
            variable_values=request.variables,
            context_value=Context(self.services, claims, client=client),
            operation_name=request.operation_name,
        )
        observe_operation(kind, result.errors, time.perf_counter() - started)
        return payload_text(result.data, result.errors, self.settings.production)

    def _group(
        self,
        key: GroupKey,
        operation: Operation,
        request: Request,
        claims: Claims,
        actions: frozenset[str] | None,
    ) -> Group:
        """A new group: its executor (variables coerced once), its shared context, and the
        extensions' execution hooks when the schema has any (`live.hooks`)."""
        context = Context(
            self.services, claims if key.viewer_id is not None else None, client="live"
        )
        executor = build_executor(
            self.schema,
            operation.document,
            context=context,
            variables=request.variables,
            operation_name=request.operation_name,
            hide_suggestions=self.settings.production,
        )
        if isinstance(executor, list):
            raise _GroupFailed(executor)
        hooks = None
        if self.hooked:
            hooks = EventHooks(
                self.schema,
                operation.document,
                request.query,
                request.operation_name,
                request.variables,
            )
        return Group(key, executor, actions, self.settings.production, hooks)


def resume_point(value: object) -> int | None:
    """The `after` argument as an event id (0 means "from the beginning")."""
    if value is None:
        return None
    try:
        number = int(str(value))
    except ValueError:
        number = -1
    if number < 0 or number > 2**63 - 1:
        raise BadUserInput({"after": "after must be an event id from a PostEvent."})
    return number
