"""A request's variables, read as execution will read them, and never at length on the loop.

A body of megabytes can carry a variable the operation never declares: graphql-core
ignores it, so it is dropped before anything looks at the variables (the response-cache
key, the NUL check, the cost). What is left is walked once, without building anything per
item, on the event loop only while it is small (`ON_LOOP_ITEMS`); longer walks run on a
document thread. The cost reads sizes (`perPage`, `first`) from the values as GraphQL
coerces them: `50.0` sent for an `Int` is 50, as the resolver will see it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLScalarType,
    GraphQLSchema,
    NonNullTypeNode,
    OperationDefinitionNode,
    get_operation_ast,
    get_variable_values,
)

NUL = "\x00"
# Items (values, list items, object members) a walk visits on the event loop; a walk
# that would visit more starts again on a document thread.
ON_LOOP_ITEMS = 10_000


def declared_only(
    document: DocumentNode, operation_name: str | None, variables: Any
) -> dict[str, Any] | None:
    """The variables the operation to run declares; the others never reach execution.
    An operation that cannot be chosen gets none (that request fails anyway)."""
    if not isinstance(variables, dict):
        return variables if variables is None else {}
    if not variables:
        return variables
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return {}
    names = (node.variable.name.value for node in operation.variable_definitions or ())
    return {name: variables[name] for name in names if name in variables}


def holds_nul(value: object, budget: int | None = None) -> bool | None:
    """Whether any string in `value` holds U+0000; None when that takes more than
    `budget` items to tell. Iterative: JSON nesting is only bounded by the body's size."""
    pending = [value]
    seen = 0
    while pending:
        item = pending.pop()
        seen += 1
        if budget is not None and seen > budget:
            return None
        if isinstance(item, str):
            if NUL in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def nul_paths(variables: Mapping[str, object]) -> list[str]:
    """Where the variables hold a NUL, as `$name.field[index]`; only walked once
    `holds_nul` found one."""
    found = []
    pending: list[tuple[object, str]] = [(value, f"${name}") for name, value in variables.items()]
    while pending:
        value, path = pending.pop()
        if isinstance(value, str):
            if NUL in value:
                found.append(path)
        elif isinstance(value, dict):
            pending.extend((item, f"{path}.{key}") for key, item in value.items())
        elif isinstance(value, list):
            pending.extend((item, f"{path}[{index}]") for index, item in enumerate(value))
    return sorted(found)


def scalar_values(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The operation's scalar variables as execution coerces them, defaults included;
    all None when any of them does not coerce (execution then refuses the request). Only
    scalars: they take constant time each, and sizes are Ints."""
    definitions = [
        node
        for node in operation.variable_definitions or ()
        if isinstance(schema.get_type(_type_name(node.type)), GraphQLScalarType)
    ]
    if not definitions:
        return {}
    coerced = get_variable_values(schema, definitions, dict(variables or {}), max_errors=1)
    if isinstance(coerced, list):
        return dict.fromkeys((node.variable.name.value for node in definitions), None)
    return coerced.coerced


def _type_name(node: Any) -> str:
    """A variable's type name, when it is `Name` or `Name!`; "" for a list."""
    if isinstance(node, NonNullTypeNode):
        node = node.type
    name = getattr(node, "name", None)
    return name.value if name is not None else ""
