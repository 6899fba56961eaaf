"""The steps of one operation as child spans: `graphql.parse`, `graphql.validate`,
`graphql.execute`, under the operation's SERVER span (`engine.tracing`).

A schema extension, because strawberry runs every operation through its extensions'
hooks, whatever path it takes (the HTTP view, a WebSocket's query, a subscription's
preparation). It is in the schema only while tracing is on (`schema_extensions`): an
`on_execute` hook makes every live event run the extensions' hooks too (`live.hooks`),
which costs nothing only when there is none. Database spans (SQLAlchemy's
instrumentation) are made inside `graphql.execute`, so they are its children.

Once validated, the operation is known: its type, name and document go on the SERVER
span. A document found in the parse cache still shows a `graphql.parse` span, a short one.
"""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError

from gql_feed.engine import tracing
from gql_feed.observability.tracing import TRACER


class PhaseSpans(SchemaExtension):
    def on_parse(self) -> Iterator[None]:
        with TRACER.start_as_current_span("graphql.parse"):
            yield

    def on_validate(self) -> Iterator[None]:
        with TRACER.start_as_current_span("graphql.validate"):
            yield
        context = self.execution_context
        if context.graphql_document is not None:
            try:
                kind = context.operation_type.value
            except (RuntimeError, CannotGetOperationTypeError):  # validation says why
                return
            tracing.current().identify(kind, context.operation_name, context.graphql_document)

    def on_execute(self) -> Iterator[None]:
        with TRACER.start_as_current_span("graphql.execute"):
            yield
