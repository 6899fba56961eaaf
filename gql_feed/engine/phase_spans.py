"""The steps of one operation as child spans: `graphql.parse`, `graphql.validate`,
`graphql.execute`, under the operation's SERVER span (`engine.tracing`).

Parsing and validation are a schema extension's hooks, because strawberry runs every
operation's preparation through its extensions, whatever path it takes (the HTTP view, a
WebSocket's query, a subscription's preparation). The extension is in the schema only
while tracing is on (`schema_extensions`). Execution is not one of its hooks: an
`on_execute` hook would make every live event run the extensions' hooks (`live.hooks`),
which costs nothing only when there is none. The engine's executor opens that span
itself (`executed`, from `FeedExecutor.execute_operation`), for an operation and, in a
live group, for each event's one execution. Database spans (SQLAlchemy's
instrumentation) are made while it is current, so they are its children.

Once validated, the operation is known: its type, name and document go on the SERVER
span. A document found in the parse cache still shows a `graphql.parse` span, a short one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from graphql.pyutils import AwaitableOrValue, is_awaitable
from opentelemetry import context, trace
from opentelemetry.trace import Span
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError

from gql_feed.engine import tracing
from gql_feed.observability.tracing import TRACER

T = TypeVar("T")


class PhaseSpans(SchemaExtension):
    def on_parse(self) -> Iterator[None]:
        with TRACER.start_as_current_span("graphql.parse"):
            yield

    def on_validate(self) -> Iterator[None]:
        with TRACER.start_as_current_span("graphql.validate"):
            yield
        context_ = self.execution_context
        if context_.graphql_document is not None:
            try:
                kind = context_.operation_type.value
            except (RuntimeError, CannotGetOperationTypeError):  # validation says why
                return
            tracing.current().identify(kind, context_.operation_name, context_.graphql_document)


def executed(run: Callable[[], AwaitableOrValue[T]]) -> AwaitableOrValue[T]:
    """`run()` within a `graphql.execute` span, which ends when its result is complete
    (the awaitable graphql-core returns for resolvers that await, once awaited)."""
    span = TRACER.start_span("graphql.execute")
    token = context.attach(trace.set_span_in_context(span))
    try:
        result = run()
    except BaseException as error:
        span.record_exception(error)
        span.set_status(trace.StatusCode.ERROR, type(error).__qualname__)
        span.end()
        raise
    finally:
        context.detach(token)
    if is_awaitable(result):
        return _ended_after(result, span)
    span.end()
    return result


async def _ended_after(result: Awaitable[T], span: Span) -> T:
    token = context.attach(trace.set_span_in_context(span))
    try:
        return await result
    finally:
        context.detach(token)
        span.end()
