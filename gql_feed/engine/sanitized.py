"""An operation's document as a trace may show it: its shape, none of its values.

A document may hold a password or a token typed into it as a literal (`login(email:
"a@b.c", password: "…")`). What is recorded as `graphql.document` keeps every name,
selection, fragment and variable reference, and replaces each string, number and list or
object literal with `?`, as the OpenTelemetry conventions' example does. Enum values,
booleans and null stay: they are words of the schema, not a client's data. Variables
are never recorded.
"""

from __future__ import annotations

from graphql import (
    DocumentNode,
    EnumValueNode,
    FloatValueNode,
    IntValueNode,
    ListValueNode,
    Node,
    ObjectValueNode,
    StringValueNode,
    Visitor,
    print_ast,
    visit,
)

# Printed as its bare value: the shortest node that prints as `?`.
_HIDDEN = EnumValueNode(value="?")


class _HideLiterals(Visitor):
    """Each literal becomes `?`; a list or object literal as a whole (its items are data)."""

    def enter_string_value(self, node: StringValueNode, *_: object) -> Node:
        return _HIDDEN

    def enter_int_value(self, node: IntValueNode, *_: object) -> Node:
        return _HIDDEN

    def enter_float_value(self, node: FloatValueNode, *_: object) -> Node:
        return _HIDDEN

    def enter_list_value(self, node: ListValueNode, *_: object) -> Node:
        return _HIDDEN

    def enter_object_value(self, node: ObjectValueNode, *_: object) -> Node:
        return _HIDDEN


def sanitized(document: DocumentNode) -> str:
    """The document printed with every literal replaced (the parsed one is not changed:
    graphql-core's `visit` edits a copy)."""
    return print_ast(visit(document, _HideLiterals()))
