"""The schema the engine runs: the client-facing types, with the engine's executor and
extensions. The `schema` package describes what a client sees; how it is executed is
decided here, so the types never depend on the engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult

from gql_feed.compat.strawberry import graphql_schema
from gql_feed.engine import tracing
from gql_feed.engine.execution import FeedExecutor
from gql_feed.schema.policies import field_policies
from gql_feed.schema.root import Mutation, Query, Subscription


class QuietErrors(strawberry.Schema):
    """Known refusals are not server errors: log only what was unexpected (engine.errors).

    Every executed operation's errors reach its trace (`engine.tracing`) from here: a
    document that does not parse is answered without the extensions seeing its result."""

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        result = await super().execute(*args, **kwargs)
        if result.errors:
            tracing.current().fail(result.errors)
        return result

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        return None


def build_schema(
    extensions: Sequence[Callable[[], SchemaExtension]], config: StrawberryConfig | None = None
) -> strawberry.Schema:
    """`config` carries per-deployment choices (the batching bound); the SDL never depends on it.

    Execution reads attribute fields directly (engine/execution.py). A field that
    declares no policy (schema/policies.py) refuses the whole schema: `UnclassifiedFields`."""
    schema = QuietErrors(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=config,
        execution_context_class=FeedExecutor,
    )
    field_policies(graphql_schema(schema))
    return schema
