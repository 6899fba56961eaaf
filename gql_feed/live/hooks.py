"""The schema extensions' execution hooks, run for each live event as for an HTTP request.

Over HTTP strawberry takes every operation through each schema extension: `on_operation`,
`on_parse` and `on_validate` around preparing it, `on_execute` around executing it, and
`resolve` around every field (as graphql-core middleware, which is also how strawberry
runs custom directives). A live subscription is prepared once per distinct text
(engine/documents.py runs `on_operation`, `on_parse` and `on_validate` there, once), then
executed once per event for each group of identical subscriptions. Each of those
executions gets what belongs to executing, exactly as an HTTP operation does: fresh
extension instances (as strawberry makes for each operation: `compat.strawberry.extensions_runner`),
a strawberry `ExecutionContext` for the event (its root value, the group's context and
variables), `on_execute` around the execution, and every `resolve` hook and custom
directive as middleware. What `get_results` would add is not sent: a live payload
carries data and errors only.

Whether any of this is needed is decided once per schema (`acts_while_executing`):
without a directive or an extension that implements `on_execute` or `resolve` (the
feed's own schema has none), a group runs its graphql-core executor directly and pays
nothing for hooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import DocumentNode, ExecutionResult, GraphQLError
from graphql.execution import Executor, MiddlewareManager, execute_subscription_event
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType
from strawberry.utils.await_maybe import await_maybe

from gql_feed.compat.strawberry import extension_instances, extensions_runner


def _acts(extension: SchemaExtension) -> bool:
    kind = type(extension)
    return kind.on_execute is not SchemaExtension.on_execute or _resolves(extension)


def _resolves(extension: SchemaExtension) -> bool:
    return type(extension).resolve is not SchemaExtension.resolve


def acts_while_executing(schema: strawberry.Schema) -> bool:
    """Whether any of the schema's extensions (strawberry's directive handling included,
    which it adds when the schema has directives) has an `on_execute` or `resolve` hook."""
    return any(_acts(extension) for extension in extension_instances(schema))


@dataclass(frozen=True, slots=True)
class EventHooks:
    """One group's operation, as the extensions see it for each of its events."""

    schema: strawberry.Schema
    document: DocumentNode
    query: str
    operation_name: str | None
    variables: dict[str, Any]

    async def execute(self, executor: Executor[Any], root: Any) -> ExecutionResult:
        """One event, executed within the extensions' `on_execute` hooks and with their
        `resolve` hooks; a failing hook is answered as strawberry answers one."""
        context = ExecutionContext(
            query=self.query,
            schema=self.schema,
            allowed_operations=(OperationType.SUBSCRIPTION,),
            context=executor.context_value,
            variables=self.variables,
            root_value=root,
            provided_operation_name=self.operation_name,
        )
        context.graphql_document = self.document
        runner = extensions_runner(self.schema, context)
        extensions = runner.extensions
        try:
            async with runner.executing():
                if context.result is None:  # an `on_execute` hook may have answered
                    per_event = executor.build_per_event_executor(root)
                    per_event.middleware_manager = MiddlewareManager(
                        *(extension for extension in extensions if _resolves(extension))
                    )
                    context.result = await await_maybe(execute_subscription_event(per_event))
                result = context.result
        except Exception as error:
            return ExecutionResult(None, [GraphQLError(str(error), original_error=error)])
        if not isinstance(result, ExecutionResult):
            return ExecutionResult(result.data, result.errors)
        return result
