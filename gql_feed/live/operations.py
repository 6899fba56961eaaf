"""The GraphQL side of the socket: validated operations, grouped subscriptions, one-shot runs.

Both subprotocols call in here with what a client asked for; nothing here knows how a
message is framed. Subscribing is synchronous once the document is prepared (a cached
lookup), so a live subscriber is added to its group without any await.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any, TypeGuard, cast

import orjson
import strawberry
from graphql import GraphQLError
from graphql.execution import get_argument_values, get_variable_values
from strawberry.execution.is_awaitable import optimized_is_awaitable

from gql_feed.compat import graphql_schema
from gql_feed.config import Settings
from gql_feed.engine.documents import DocumentCache, Invalid, Operation
from gql_feed.engine.persisted import PersistedDocuments
from gql_feed.engine.results import feed_error, payload_text
from gql_feed.live.groups import Group, GroupKey, Groups, Subscriber, TooManyGroups
from gql_feed.live.replay import replay
from gql_feed.schema.context import Context, Services
from gql_feed.services.errors import BadUserInput
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
    ) -> None:
        self.schema = schema
        self.services = services
        self.settings = settings
        self.persisted = persisted
        self.documents = DocumentCache(schema, settings.document_cache_bytes)
        self.groups = Groups(
            buffer_limit=settings.replay_max_events, max_groups=settings.live_max_groups
        )

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
        """Join (or found) the subscriber's group; errors if the request cannot run.

        `held` are the groups the subscriber's connection is in already: joining one more
        than `ws_max_groups_per_connection` is refused. `resume_after` is a resume point
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

        def build() -> Group:
            return self._group(key, operation, request, claims, action_names)

        try:
            subscriber = self.groups.join(key, build, make_subscriber)
        except _GroupFailed as failed:
            return failed.errors
        except TooManyGroups as refusal:
            return [feed_error(refusal)]
        upto = self.services.hub.last_id
        subscriber.since = upto
        if after is not None:
            subscriber.buffer = []
        return Joined(subscriber, after, upto)

    async def replay(self, subscriber: Subscriber, after: int, upto: int) -> None:
        """Send a resumed subscriber the events after `after` up to `upto` from the log
        (`live.replay`); EventLogExpired when the log no longer holds them."""
        await replay(subscriber, self.services.hub, after, upto, self.settings.replay_max_events)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.groups.leave(subscriber)

    async def execute(self, request: Request, claims: Claims, client: str) -> str:
        """A query or mutation, run once; the payload text of its single result."""
        result = await self.schema.execute(
            request.query,
            variable_values=request.variables,
            context_value=Context(self.services, claims, client=client),
            operation_name=request.operation_name,
        )
        return payload_text(result.data, result.errors, self.settings.production)

    def _group(
        self,
        key: GroupKey,
        operation: Operation,
        request: Request,
        claims: Claims,
        actions: frozenset[str] | None,
    ) -> Group:
        """A new group: its executor (variables coerced once) and its shared context."""
        context = Context(
            self.services, claims if key.viewer_id is not None else None, client="live"
        )
        executor = self.schema.execution_context_class.build(
            graphql_schema(self.schema),
            operation.document,
            None,
            context,
            request.variables,
            request.operation_name,
            is_awaitable=cast("Callable[[Any], TypeGuard[Awaitable[Any]]]", optimized_is_awaitable),
            hide_suggestions=self.settings.production,
        )
        if isinstance(executor, list):
            raise _GroupFailed(executor)
        return Group(key, executor, actions, self.settings.production)


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
