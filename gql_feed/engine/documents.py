"""Operations sent over the socket, parsed and validated once per distinct text.

Validation goes through strawberry's own pipeline (its schema extensions included:
the token, depth and alias limits, introspection off in production, its parser and
validation caches), so a subscription is held to exactly the rules of an HTTP request.
The result, and what the live layer needs to know about the operation, is kept in an
LRU bounded in bytes, keyed by the query text and operation name: thousands of clients
subscribing with the same text pay for it once. That is also where each operation's normal
form is digested (`Operation.key`), once per distinct text, for the live groups to key on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import (
    BREAK,
    SKIP,
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    NullValueNode,
    ObjectFieldNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    TypeInfo,
    TypeInfoVisitor,
    VariableDefinitionNode,
    VariableNode,
    Visitor,
    get_named_type,
    get_operation_ast,
    is_input_type,
    separate_operations,
    type_from_ast,
    visit,
)
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError
from strawberry.types import ExecutionContext

from gql_feed.compat.strawberry import extensions_runner, graphql_schema, prepare_operation
from gql_feed.engine.normalize import document_key
from gql_feed.engine.parsing import document_weight, errors_weight
from gql_feed.lru import ByteLRU
from gql_feed.schema.types import VIEWER_DEPENDENT_FIELDS

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
    definition: OperationDefinitionNode
    kind: OperationType
    # The digest of the operation's normal form: this operation and the fragments it
    # uses, printed (so without whitespace, commas or comments), fragments sorted by name.
    # Texts that differ only in layout, or in other operations beside it, share it.
    key: str
    # The subscription's one root field (postEvents) and its definition.
    root_field: FieldNode | None
    root_field_def: GraphQLField | None
    # Selects a field whose value depends on who asks (User.email): no sharing.
    viewer_dependent: bool
    # Variables used only as the root field's `after`: they change the replay, not
    # what each live event looks like, so they stay out of the group key.
    after_only_variables: frozenset[str]
    # Uploads cannot travel over a WebSocket: where could one appear?
    upload_literal: bool
    upload_variables: tuple[tuple[str, GraphQLInputType], ...]

    def sends_upload(self, variables: Mapping[str, Any]) -> bool:
        """Whether the operation, with these variables, would receive a file."""
        if self.upload_literal:
            return True
        return any(
            name in variables and _holds_upload(variables[name], type_)
            for name, type_ in self.upload_variables
        )


class DocumentCache:
    """Parse, validate and analyse operations; remember them, up to `max_bytes` in weight
    (each entry weighs its text and its syntax tree, see `engine.parsing`)."""

    def __init__(self, schema: strawberry.Schema, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.schema = schema
        self._entries: ByteLRU[tuple[str, str | None], Operation | Invalid] = ByteLRU(max_bytes)

    def __len__(self) -> int:
        return len(self._entries)

    async def prepare(self, query: str, operation_name: str | None) -> Operation | Invalid:
        key = (query, operation_name)
        entry = self._entries.get(key)
        if entry is not None:
            return entry
        entry = await self._prepare(query, operation_name)
        if isinstance(entry, Operation):
            weight = document_weight(query, entry.document)
        else:
            weight = len(query) + errors_weight(entry.errors)
        self._entries.put(key, entry, weight + len(operation_name or ""))
        return entry

    async def _prepare(self, query: str, operation_name: str | None) -> Operation | Invalid:
        checked = await self._validate(query, operation_name)
        if isinstance(checked, Invalid):
            return checked
        definition = get_operation_ast(checked, operation_name)
        if definition is None:
            return Invalid([GraphQLError("No operation to run in this document.")])
        return analyse(graphql_schema(self.schema), checked, definition)

    async def _validate(self, query: str, operation_name: str | None) -> DocumentNode | Invalid:
        """strawberry's parse and validate steps, with every schema extension taking part."""
        schema = self.schema
        context = ExecutionContext(
            query=query,
            schema=schema,
            allowed_operations=ALL_OPERATION_TYPES,
            provided_operation_name=operation_name,
        )
        runner = extensions_runner(schema, context)
        try:
            async with runner.operation():
                failure = await prepare_operation(schema, context, runner)
        except GraphQLError as error:
            # What the parser refused (engine.extensions.CachedParser), already classified.
            return Invalid([error])
        except MissingQueryError:
            return Invalid([GraphQLError("The operation has no query text.")])
        except CannotGetOperationTypeError as error:
            return Invalid([GraphQLError(error.as_http_error_reason())])
        if failure is not None:
            return Invalid(list(failure.errors or [GraphQLError("Invalid operation.")]))
        document = context.graphql_document
        if document is None:
            return Invalid([GraphQLError("The operation could not be parsed.")])
        return document


def analyse(
    schema: GraphQLSchema, document: DocumentNode, definition: OperationDefinitionNode
) -> Operation:
    fragments = {
        node.name.value: node
        for node in document.definitions
        if isinstance(node, FragmentDefinitionNode)
    }
    root_field: FieldNode | None = None
    root_field_def: GraphQLField | None = None
    after_only: frozenset[str] = frozenset()
    subscription_type = schema.subscription_type
    if definition.operation == OperationType.SUBSCRIPTION and subscription_type is not None:
        root_field = _first_field(definition.selection_set, fragments)
        if root_field is not None:
            root_field_def = subscription_type.fields.get(root_field.name.value)
            after_only = _after_only_variables(document, root_field)
    facts = _Facts(schema)
    visit(document, TypeInfoVisitor(facts.type_info, facts))
    upload = schema.get_type(UPLOAD_TYPE)
    upload_variables = tuple(
        (node.variable.name.value, type_)
        for node in definition.variable_definitions or ()
        if (type_ := _input_type(schema, node)) is not None
        and upload is not None
        and _may_hold_upload(type_, upload, set())
    )
    return Operation(
        document=document,
        definition=definition,
        kind=definition.operation,
        key=operation_key(document, definition),
        root_field=root_field,
        root_field_def=root_field_def,
        viewer_dependent=facts.viewer_dependent,
        after_only_variables=after_only,
        upload_literal=facts.upload_literal,
        upload_variables=upload_variables,
    )


def operation_key(document: DocumentNode, definition: OperationDefinitionNode) -> str:
    """The digest of one operation's normal form (see `Operation.key`)."""
    name = definition.name.value if definition.name else ""
    alone = separate_operations(document)[name]
    fragments = sorted(
        (node for node in alone.definitions if isinstance(node, FragmentDefinitionNode)),
        key=lambda fragment: fragment.name.value,
    )
    return document_key(DocumentNode(definitions=(definition, *fragments)))


class _Facts(Visitor):
    """One walk over the document: viewer-dependent fields, literal uploads."""

    def __init__(self, schema: GraphQLSchema) -> None:
        super().__init__()
        self.type_info = TypeInfo(schema)
        self.viewer_dependent = False
        self.upload_literal = False

    def enter_field(self, node: FieldNode, *_: object) -> None:
        parent = self.type_info.get_parent_type()
        if parent is not None and (parent.name, node.name.value) in VIEWER_DEPENDENT_FIELDS:
            self.viewer_dependent = True

    def enter_argument(self, node: ArgumentNode, *_: object) -> None:
        self._check_upload(node.value)

    def enter_object_field(self, node: ObjectFieldNode, *_: object) -> None:
        self._check_upload(node.value)

    def _check_upload(self, value: object) -> None:
        if isinstance(value, NullValueNode | VariableNode):
            return
        type_ = self.type_info.get_input_type()
        if type_ is not None and get_named_type(type_).name == UPLOAD_TYPE:
            self.upload_literal = True


def _first_field(
    selection_set: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode]
) -> FieldNode | None:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            return selection
        if isinstance(selection, InlineFragmentNode):
            found = _first_field(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            found = _first_field(fragment.selection_set, fragments) if fragment else None
        else:
            found = None
        if found is not None:
            return found
    return None


def _after_only_variables(document: DocumentNode, root_field: FieldNode) -> frozenset[str]:
    after = next((arg for arg in root_field.arguments or () if arg.name.value == "after"), None)
    if after is None or not isinstance(after.value, VariableNode):
        return frozenset()
    name = after.value.name.value
    counter = _VariableUses(name)
    visit(document, counter)
    return frozenset({name}) if counter.uses == 1 else frozenset()


class _VariableUses(Visitor):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.uses = 0

    def enter_variable_definition(self, node: VariableDefinitionNode, *_: object) -> object:
        return SKIP

    def enter_variable(self, node: VariableNode, *_: object) -> object:
        if node.name.value == self.name:
            self.uses += 1
            if self.uses > 1:
                return BREAK
        return None


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
