"""What an operation will cost, read from its document before anything runs.

Every field selected costs 1, for each time it will appear in the answer. A list's items
are counted as many times as the client asked for: the `perPage` or `first` argument of
a field (a literal, a variable's value as GraphQL coerces it, so `50.0` for an Int is
50, the variable's default or the argument's default, clamped between 1 and the largest
value the server allows for it) is the size of the first list beneath it (`posts` of a
PostPage, `edges` of a connection), and everything selected in that list's items is
multiplied by it. A list with no such
argument (introspection's) counts as one item. Aliases count separately, fragments
count where they are spread, and `@skip`/`@include` are ignored (counted as included).
So `posts(perPage: 50) { totalPosts posts { id creator { name } } }` costs
1 + 1 + (1 + 50 * (1 + 1 + 1)) = 153.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SchemaMetaFieldDef,
    SelectionSetNode,
    TypeMetaFieldDef,
    VariableNode,
    get_named_type,
    get_operation_ast,
)

from gql_feed.engine.variables import scalar_values
from gql_feed.lru import ByteLRU

COST_CODE = "GRAPHQL_VALIDATION_FAILED"


def cost_error(cost: int, max_cost: int, *, batch: bool = False) -> GraphQLError:
    what = "The operations of this request together cost" if batch else "The query costs"
    return GraphQLError(
        f"{what} {cost}, more than the {max_cost} this server allows; "
        "ask for fewer items (perPage, first), fields or aliases.",
        extensions={"code": COST_CODE, "cost": cost, "maxCost": max_cost},
    )


# What one remembered cost weighs besides its query text and variables.
COST_ENTRY_BYTES = 160


@dataclass(frozen=True)
class QueryCost:
    """The cost of operations; `sizes` maps a size argument's name (perPage, first) to
    the largest value the server accepts for it. `remembered_bytes` bounds the costs
    `of_query` keeps."""

    sizes: Mapping[str, int]
    remembered_bytes: int = 1024 * 1024
    _remembered: ByteLRU[tuple[str, str | None, bytes], int] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_remembered", ByteLRU(self.remembered_bytes))

    def of_query(
        self,
        schema: GraphQLSchema,
        query: str,
        document: DocumentNode,
        operation_name: str | None = None,
        variables: Mapping[str, Any] | None = None,
    ) -> int:
        """`of`, remembered by query text, operation and scalar variables (as coerced):
        a cost depends on nothing else, and the same page asked again costs one lookup."""
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            return 0
        scalars = scalar_values(schema, operation, variables)
        try:
            encoded = orjson.dumps(scalars, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return self._of(schema, document, operation, scalars)
        key = (query, operation_name, encoded)
        cost = self._remembered.get(key)
        if cost is None:
            cost = self._of(schema, document, operation, scalars)
            self._remembered.put(key, cost, len(query) + len(encoded) + COST_ENTRY_BYTES)
        return cost

    def of(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation_name: str | None = None,
        variables: Mapping[str, Any] | None = None,
    ) -> int:
        """The cost of the operation the request would run; 0 when it names none (that
        request fails anyway). Sizes come from the variables as GraphQL coerces them."""
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            return 0
        return self._of(schema, document, operation, scalar_values(schema, operation, variables))

    def _of(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        coerced: Mapping[str, Any],
    ) -> int:
        root = schema.get_root_type(operation.operation)
        if root is None:
            return 0
        try:
            return _Walk(self.sizes, schema, document, operation, coerced).selection_set(
                operation.selection_set, root, None
            )
        except RecursionError:
            return 0  # nested deeper than any depth limit: validation refuses it


@dataclass
class _Walk:
    """One operation's count. Each fragment is counted once per (type, pending size) and
    remembered, so even a document spreading fragments in fragments costs linear time;
    a cycle (which validation refuses anyway) counts as nothing."""

    sizes: Mapping[str, int]
    schema: GraphQLSchema
    document: DocumentNode
    operation: OperationDefinitionNode
    variables: Mapping[str, Any]
    fragments: dict[str, FragmentDefinitionNode] = field(init=False)
    counted: dict[tuple[str, str, int | None], int] = field(default_factory=dict)
    counting: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.fragments = {
            node.name.value: node
            for node in self.document.definitions
            if isinstance(node, FragmentDefinitionNode)
        }

    def selection_set(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType | None, pending: int | None
    ) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, pending)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selection_set(selection.selection_set, target, pending)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.spread(selection.name.value, pending)
        return total

    def spread(self, name: str, pending: int | None) -> int:
        fragment = self.fragments.get(name)
        if fragment is None or name in self.counting:
            return 0
        target = self.schema.get_type(fragment.type_condition.name.value)
        key = (name, target.name if target else "", pending)
        if key not in self.counted:
            self.counting.add(name)
            self.counted[key] = self.selection_set(fragment.selection_set, target, pending)
            self.counting.discard(name)
        return self.counted[key]

    def field(self, node: FieldNode, parent: GraphQLNamedType | None, pending: int | None) -> int:
        definition = _field_definition(parent, node.name.value)
        if definition is None:
            children = node.selection_set
            return 1 + (self.selection_set(children, None, pending) if children else 0)
        size = self.size(definition, node)
        if size is not None:
            pending = size
        items = 1
        if _is_list(definition):
            items, pending = pending or 1, None
        if node.selection_set is None:
            return 1
        return 1 + items * self.selection_set(
            node.selection_set, get_named_type(definition.type), pending
        )

    def size(self, definition: GraphQLField, node: FieldNode) -> int | None:
        """The list size the field asks for, if it has a size argument."""
        for name, most in self.sizes.items():
            argument = definition.args.get(name)
            if argument is None:
                continue
            given = next(
                (arg.value for arg in node.arguments or () if arg.name.value == name), None
            )
            value: object = argument.default_value
            if isinstance(given, IntValueNode):
                value = int(given.value)
            elif isinstance(given, VariableNode):
                value = self.variable(given.name.value, value)
            if not isinstance(value, int) or isinstance(value, bool):
                value = 1
            return max(1, min(value, most))
        return None

    def variable(self, name: str, fallback: object) -> object:
        """The coerced value (defaults included), or the argument's default."""
        return self.variables.get(name, fallback)


def _field_definition(parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
    """The field's definition, introspection's included; None when the document names a
    field the schema lacks (validation refuses it; until then it counts as 1)."""
    if name == "__schema":
        return SchemaMetaFieldDef
    if name == "__type":
        return TypeMetaFieldDef
    fields = getattr(parent, "fields", None)  # object and interface types
    return fields.get(name) if isinstance(fields, dict) else None


def _is_list(definition: GraphQLField) -> bool:
    type_ = definition.type
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)
