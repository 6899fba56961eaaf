"""strawberry-graphql's private names and undocumented behaviour that gql_feed uses.

Checked against strawberry-graphql 0.341.2 (each entry says so where it differs); watched
by tests/compat/test_compat.py. Besides the names below, transport/http/view.py overrides methods
of strawberry's HTTP view that its documentation does not list (`parse_http_body`,
`parse_multipart`, `execute_operation`, `execute_single`, `should_render_graphql_ide`) and
calls `parse_json` and `parse_query_params`: tests/compat/test_compat.py watches their signatures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeGuard, cast

import strawberry
from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
)
from graphql.execution import Executor
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.http import GraphQLRequestData, GraphQLRequestProtocol
from strawberry.http.base import BaseRequestProtocol, BaseView
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext, validate_document
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.field import StrawberryField

__all__ = [
    "BaseRequestProtocol",
    "ErrorsExtension",
    "NeverStreams",
    "StrawberryExecutionContext",
    "attribute_name",
    "build_executor",
    "check_batch",
    "extensions_runner",
    "graphql_schema",
    "is_awaitable",
    "mime_type",
    "prepare_operation",
    "validate_with_strawberry_rules",
    "value_check",
]

# --- The schema and its operations (0.341.2) ---------------------------------------------


def graphql_schema(schema: strawberry.Schema) -> GraphQLSchema:
    """The graphql-core schema strawberry built, for graphql-core's own functions.

    strawberry keeps it as `Schema._schema` and offers no public accessor.
    """
    return schema._schema


async def prepare_operation(
    schema: strawberry.Schema, context: ExecutionContext, runner: SchemaExtensionsRunner
) -> ExecutionResult | None:
    """strawberry's parse, operation-type check and validation, without executing.

    The live layer validates an operation once and executes it per event, so it needs
    strawberry's pre-execution steps (with every schema extension's hooks) on their own:
    `Schema._prepare_operation_async` is exactly that, and has no public counterpart.
    It returns the errors to answer with, or None (the document is then in
    `context.graphql_document`); it raises strawberry's `MissingQueryError`,
    `CannotGetOperationTypeError` and `InvalidOperationTypeError` as `execute` does.
    """
    return await schema._prepare_operation_async(context, runner)


def attribute_name(field: GraphQLField) -> str | None:
    """The attribute a field reads, when strawberry resolves it by reading an attribute
    and nothing else (no resolver function, no field extension, no permission class, no
    exception handler); None for every other field.

    strawberry builds such a field's resolver as `_get_basic_result`, marked
    `_is_default = True`, which returns `config.default_resolver(source, python_name)`
    and nothing else; with the default `getattr` that is an attribute read
    (engine/execution.py reads it directly).
    """
    definition = field.extensions.get("strawberry-definition")
    resolve = field.resolve
    if (
        not isinstance(definition, StrawberryField)
        or not definition.is_basic_field
        or getattr(resolve, "_is_default", False) is not True
        or getattr(resolve, "__name__", None) != "_get_basic_result"
        or definition.default_resolver is not getattr
    ):
        return None
    return definition.python_name


# The `is_type_of` strawberry gives an object type that implements an interface.
STRAWBERRY_IS_TYPE_OF = (
    "GraphQLCoreConverter.from_object.<locals>._get_is_type_of.<locals>.is_type_of"
)


def value_check(object_type: GraphQLObjectType) -> Callable[[Any], bool] | None:
    """`object_type.is_type_of` as a check of the value alone, when it is strawberry's own
    (an `isinstance` against the type and its interfaces, which never reads its resolve
    info); None for any other, which only graphql-core may call.

    strawberry makes that function in `GraphQLCoreConverter.from_object` and documents
    neither it nor that it ignores its second argument.
    """
    is_type_of = object_type.is_type_of
    if is_type_of is None or getattr(is_type_of, "__qualname__", "") != STRAWBERRY_IS_TYPE_OF:
        return None
    return lambda value: bool(is_type_of(value, None))  # type: ignore[arg-type]


def field_metadata(field: GraphQLField) -> Mapping[Any, Any]:
    """The metadata a field was declared with (`strawberry.field(metadata=...)`); empty
    for a field strawberry did not build.

    strawberry keeps each field's definition in the graphql-core field's `extensions`,
    under `GraphQLCoreConverter.DEFINITION_BACKREF`; the field policies are read from
    there (schema/policies.py), with only the graphql-core schema at hand.
    """
    definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField):
        return {}
    return definition.metadata


def extensions_runner(
    schema: strawberry.Schema, context: ExecutionContext
) -> SchemaExtensionsRunner:
    """Fresh instances of the schema's extensions for one operation, bound to `context`,
    and the runner of their hooks: what `Schema.execute` sets up before its first step.

    `Schema.get_extensions` and `Schema.create_extensions_runner` are public methods, but
    undocumented, and so is the `execution_context` attribute each extension reads; this is
    the order `execute` uses them in.
    """
    extensions = schema.get_extensions()
    for extension in extensions:
        extension.execution_context = context
    return schema.create_extensions_runner(context, extensions)


def extension_instances(schema: strawberry.Schema) -> list[SchemaExtension]:
    """Fresh instances of the schema's extensions, strawberry's own directive handling
    included (it adds one when the schema has directives): `Schema.get_extensions` is
    public but undocumented."""
    return list(schema.get_extensions())


def validate_with_strawberry_rules(
    schema: GraphQLSchema, document: DocumentNode, rules: Sequence[type[ASTValidationRule]]
) -> list[GraphQLError]:
    """graphql-core's validation with `rules` plus strawberry's own (`Maybe` nullability,
    `@oneOf` inputs): what strawberry's validation step runs.

    `strawberry.schema.schema.validate_document` is a module-level function with no
    public counterpart; its rules tuple is its third positional argument.
    """
    return validate_document(schema, document, tuple(rules))


is_awaitable = cast("Callable[[Any], TypeGuard[Awaitable[Any]]]", optimized_is_awaitable)
"""strawberry's `is_awaitable` for graphql-core's executor: a fast path for plain values.

It lives in `strawberry.execution.is_awaitable`, which strawberry's own executor passes
to graphql-core and no public module re-exports; typed there as returning `bool`.
"""


# --- The executor (0.341.2) ----------------------------------------------------------------

StrawberryExecutionContext = StrawberryGraphQLCoreExecutionContext
"""The graphql-core `Executor` subclass strawberry executes with, to build on.

`strawberry.schema.schema.StrawberryGraphQLCoreExecutionContext` is exported by no
public module; it is what `Schema(execution_context_class=...)` defaults to.
"""


def build_executor(
    schema: strawberry.Schema,
    document: DocumentNode,
    *,
    context: object,
    variables: Mapping[str, Any] | None,
    operation_name: str | None,
    hide_suggestions: bool,
) -> Executor[Any] | list[GraphQLError]:
    """The schema's executor for one operation, outside `Schema.execute`: the executor, or
    the errors coercing the variables gave.

    graphql-core's `Executor.build` takes its first ten parameters positionally in its
    signature; they are passed here by name, with the executor class strawberry uses and
    strawberry's `is_awaitable`, as `Schema.execute` passes them.
    """
    return schema.execution_context_class.build(
        schema=graphql_schema(schema),
        document=document,
        root_value=None,
        context_value=context,
        raw_variable_values=dict(variables) if variables is not None else None,
        operation_name=operation_name,
        is_awaitable=is_awaitable,
        hide_suggestions=hide_suggestions,
    )


# --- Errors (0.341.2) ----------------------------------------------------------------------


class ErrorsExtension(MaskErrors):
    """`MaskErrors`, with every list of errors it would mask handed to `process` instead.

    `MaskErrors` applies its private `_process_errors` to every result's errors (single
    results and streamed ones alike) after the operation; overriding it is the only way to
    reuse that without copying its hooks. A subclass implements `process`.
    """

    def process(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        raise NotImplementedError

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return self.process(errors)


# --- The HTTP view (0.341.2) ---------------------------------------------------------------


class NeverStreams:
    """A mixin for strawberry's HTTP view that never answers with a stream: the app sends
    streaming requests to its own transports before they reach the view.

    strawberry's view picks a streaming answer (multipart, SSE) from the `Accept` header
    with `BaseView._get_stream_transport_from_headers`, a private method; this answers
    "none" for every request, so a client that accepts both JSON and a stream gets JSON.
    """

    def _get_stream_transport_from_headers(self, headers: Any) -> None:
        return None


def check_batch(
    view: BaseView[Any], data: list[GraphQLRequestData], protocol: GraphQLRequestProtocol
) -> None:
    """strawberry's refusals of a batch (batching off, a streaming protocol, too many
    operations), raised as its `HTTPException`s: `BaseView._validate_batch_request`."""
    view._validate_batch_request(data, protocol=protocol)


def mime_type(content_type: str) -> str:
    """The media type of a `Content-Type` value, parsed as strawberry's view parses it
    (`strawberry.http.parse_content_type`, not re-exported)."""
    return parse_content_type(content_type)[0]
