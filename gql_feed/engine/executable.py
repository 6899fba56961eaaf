"""The schema the engine runs: the client-facing types, with the engine's executor and
extensions. The `schema` package describes what a client sees; how it is executed is
decided here, so the types never depend on the engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from gql_feed.engine.execution import FeedExecutor
from gql_feed.schema.root import Mutation, Query, Subscription


class QuietErrors(strawberry.Schema):
    """Known refusals are not server errors: log only what was unexpected (engine.errors)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        return None


def build_schema(
    extensions: Sequence[Callable[[], SchemaExtension]], config: StrawberryConfig | None = None
) -> strawberry.Schema:
    """`config` carries per-deployment choices (the batching bound); the SDL never depends on it.

    Execution reads attribute fields directly (engine/execution.py)."""
    return QuietErrors(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=config,
        execution_context_class=FeedExecutor,
    )
