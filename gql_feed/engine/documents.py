"""Operations for the live layer, validated once per distinct text and operation name.

Validation goes through strawberry's own pipeline (its schema extensions included:
the token, depth and alias limits, introspection off in production, the validation
cache), so a subscription is held to exactly the rules of an HTTP request. The text is
parsed by the schema's `DocumentParser`, whose cache is the only cache of documents, and
what the live layer needs to know about an operation comes from the document's analysis
(engine/analysis.py: its normal form's key, viewer dependence, root field). The validated
`Operation` is kept in that analysis too: thousands of clients subscribing with the same
text pay for it once, and it is dropped with the document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLSchema,
    NullValueNode,
    ObjectFieldNode,
    OperationDefinitionNode,
    OperationType,
    TypeInfo,
    TypeInfoVisitor,
    VariableDefinitionNode,
    VariableNode,
    Visitor,
    get_named_type,
    is_input_type,
    type_from_ast,
    visit,
)
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError
from strawberry.types import ExecutionContext

from gql_feed.compat.strawberry import extensions_runner, graphql_schema, prepare_operation
from gql_feed.engine.analysis import DocumentAnalysis, OperationFacts, analysis
from gql_feed.engine.errors import classify
from gql_feed.engine.parsing import DocumentParser

UPLOAD_TYPE = "Upload"
ALL_OPERATION_TYPES = (
    strawberry.types.graphql.OperationType.QUERY,
    strawberry.types.graphql.OperationType.MUTATION,
    strawberry.types.graphql.OperationType.SUBSCRIPTION,
)


@dataclass(frozen=True, slots=True)
class Invalid:
    """An operation that failed parsing or validation: answer with these errors."""

    errors: list[GraphQLError]


@dataclass(frozen=True, slots=True)
class Operation:
    """A valid operation, and the facts about it that grouping and guarding need."""

    document: DocumentNode
    facts: OperationFacts
    # The subscription's one root field (postEvents) and its definition.
    root_field: FieldNode | None
    root_field_def: GraphQLField | None
    # Uploads cannot travel over a WebSocket: where could one appear?
    upload_literal: bool
    upload_variables: tuple[tuple[str, GraphQLInputType], ...]

    @property
    def definition(self) -> OperationDefinitionNode:
        return self.facts.definition

    @property
    def kind(self) -> OperationType:
        return self.facts.kind

    @property
    def key(self) -> str:
        """The digest of the operation's normal form (`OperationFacts.key`)."""
        return self.facts.key

    @property
    def viewer_dependent(self) -> bool:
        return self.facts.viewer_dependent

    @property
    def after_only_variables(self) -> frozenset[str]:
        return self.facts.after_only_variables

    def sends_upload(self, variables: Mapping[str, Any]) -> bool:
        """Whether the operation, with these variables, would receive a file."""
        if self.upload_literal:
            return True
        return any(
            name in variables and _holds_upload(variables[name], type_)
            for name, type_ in self.upload_variables
        )


class DocumentCache:
    """Parse (through `parser`, the schema's), validate and analyse operations, each
    distinct one once for as long as the parser keeps its document."""

    def __init__(
        self, schema: strawberry.Schema, parser: DocumentParser, hide_suggestions: bool = False
    ) -> None:
        self.schema = schema
        self.parser = parser
        self.hide_suggestions = hide_suggestions

    async def prepare(self, query: str, operation_name: str | None) -> Operation | Invalid:
        try:
            parsed = await self.parser.parsed(query)
        except GraphQLError as error:
            return Invalid([classify(error, hide_suggestions=self.hide_suggestions)])
        document = analysis(graphql_schema(self.schema), parsed)
        memo_key = (DocumentCache, operation_name)
        entry = document.memo.get(memo_key)
        if not isinstance(entry, Operation | Invalid):
            entry = await self._validate(query, operation_name, parsed.node)
            if entry is None:
                entry = operation(document, operation_name)
            if operation_name is None or document.definition(operation_name) is not None:
                document.memo[memo_key] = entry
        return entry

    async def _validate(
        self, query: str, operation_name: str | None, document: DocumentNode
    ) -> Invalid | None:
        """strawberry's validation steps, with every schema extension taking part."""
        schema = self.schema
        context = ExecutionContext(
            query=query,
            schema=schema,
            allowed_operations=ALL_OPERATION_TYPES,
            provided_operation_name=operation_name,
        )
        context.graphql_document = document
        runner = extensions_runner(schema, context)
        try:
            async with runner.operation():
                failure = await prepare_operation(schema, context, runner)
        except GraphQLError as error:
            return Invalid([error])
        except MissingQueryError:
            return Invalid([GraphQLError("The operation has no query text.")])
        except CannotGetOperationTypeError as error:
            return Invalid([GraphQLError(error.as_http_error_reason())])
        if failure is not None:
            return Invalid(list(failure.errors or [GraphQLError("Invalid operation.")]))
        return None


def operation(document: DocumentAnalysis, name: str | None) -> Operation | Invalid:
    """The live layer's view of a valid operation of an analysed document."""
    facts = document.operation(name)
    if facts is None:
        return Invalid([GraphQLError("No operation to run in this document.")])
    schema = document.schema
    root_field: FieldNode | None = None
    root_field_def: GraphQLField | None = None
    subscription_type = schema.subscription_type
    if facts.kind is OperationType.SUBSCRIPTION and subscription_type is not None:
        root_field = facts.root_field
        if root_field is not None:
            root_field_def = subscription_type.fields.get(root_field.name.value)
    uploads = _UploadLiterals(schema)
    visit(document.document, TypeInfoVisitor(uploads.type_info, uploads))
    upload = schema.get_type(UPLOAD_TYPE)
    upload_variables = tuple(
        (node.variable.name.value, type_)
        for node in facts.definition.variable_definitions or ()
        if (type_ := _input_type(schema, node)) is not None
        and upload is not None
        and _may_hold_upload(type_, upload, set())
    )
    return Operation(
        document=document.document,
        facts=facts,
        root_field=root_field,
        root_field_def=root_field_def,
        upload_literal=uploads.found,
        upload_variables=upload_variables,
    )


class _UploadLiterals(Visitor):
    """One walk over the document: is a file given literally anywhere?"""

    def __init__(self, schema: GraphQLSchema) -> None:
        super().__init__()
        self.type_info = TypeInfo(schema)
        self.found = False

    def enter_argument(self, node: ArgumentNode, *_: object) -> None:
        self._check(node.value)

    def enter_object_field(self, node: ObjectFieldNode, *_: object) -> None:
        self._check(node.value)

    def _check(self, value: object) -> None:
        if isinstance(value, NullValueNode | VariableNode):
            return
        type_ = self.type_info.get_input_type()
        if type_ is not None and get_named_type(type_).name == UPLOAD_TYPE:
            self.found = True


def _input_type(schema: GraphQLSchema, node: VariableDefinitionNode) -> GraphQLInputType | None:
    type_ = type_from_ast(schema, node.type)
    return type_ if is_input_type(type_) else None


def _may_hold_upload(type_: GraphQLInputType, upload: GraphQLNamedType, seen: set[str]) -> bool:
    named = get_named_type(type_)
    if named is upload:
        return True
    if isinstance(named, GraphQLInputObjectType) and named.name not in seen:
        seen.add(named.name)
        return any(_may_hold_upload(field.type, upload, seen) for field in named.fields.values())
    return False


def _holds_upload(value: Any, type_: GraphQLInputType) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if value is None:
        return False
    if isinstance(type_, GraphQLList):
        items = value if isinstance(value, list) else [value]
        return any(_holds_upload(item, type_.of_type) for item in items)
    if isinstance(type_, GraphQLInputObjectType):
        return isinstance(value, dict) and any(
            _holds_upload(value[name], field.type)
            for name, field in type_.fields.items()
            if name in value
        )
    return get_named_type(type_).name == UPLOAD_TYPE
