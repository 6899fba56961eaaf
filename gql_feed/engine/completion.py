"""Completers for the short path of execution (engine/execution.py).

Each turns a raw value into what graphql-core would put in the response, or raises
`Unfinished` where graphql-core would report an error, await a value, or do anything
else the short path leaves to it. They are built once per operation shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import GraphQLID, GraphQLLeafType, GraphQLString
from graphql.pyutils import Undefined

IsAwaitable = Callable[[Any], bool]
Complete = Callable[[Any, Any], Any]
"""(raw value, request context) -> the value for the response; raises `Unfinished`."""


class Unfinished(Exception):
    """The short path met something only the usual path reports properly."""


class AwaitableValue(Unfinished):
    """The short path met an awaitable value: graphql-core awaits it, this does not."""

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value


def as_is(value: Any, _context: Any) -> Any:
    return value


def leaf(leaf_type: GraphQLLeafType, non_null: bool, is_awaitable: IsAwaitable) -> Complete:
    coerce = leaf_type.coerce_output_value
    # graphql-core's String and ID give a `str` back as it is.
    strings = leaf_type is GraphQLString or leaf_type is GraphQLID

    def complete(value: Any, _context: Any) -> Any:
        if value is None:
            if non_null:
                raise Unfinished
            return None
        if strings and value.__class__ is str:
            return value
        if isinstance(value, Exception):
            raise Unfinished
        if is_awaitable(value):
            raise AwaitableValue(value)
        try:
            coerced = coerce(value)
        except Exception as error:
            raise Unfinished from error
        if coerced is None or coerced is Undefined:
            raise Unfinished
        return coerced

    return complete


def not_awaitable(inner: Complete, is_awaitable: IsAwaitable) -> Complete:
    def complete(value: Any, context: Any) -> Any:
        if is_awaitable(value):
            raise AwaitableValue(value)
        return inner(value, context)

    return complete


def nullable(inner: Complete) -> Complete:
    def complete(value: Any, context: Any) -> Any:
        return None if value is None else inner(value, context)

    return complete


def non_null(inner: Complete) -> Complete:
    def complete(value: Any, context: Any) -> Any:
        if value is None:
            raise Unfinished
        return inner(value, context)

    return complete


def list_of(inner: Complete) -> Complete:
    def complete(value: Any, context: Any) -> Any:
        # Exactly these (never awaitable): graphql-core takes any iterable, or awaits it.
        if value.__class__ is not list and value.__class__ is not tuple:
            raise Unfinished
        return [inner(item, context) for item in value]

    return complete
