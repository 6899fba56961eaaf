"""Variations on a document from hypothesis-graphql, for the differential test of execution.

hypothesis-graphql writes plain selections: no aliases, no directives, no named fragments,
no variables, no repeated fields. What the short path of execution must get right lies in
those (merged response keys and their order, @skip/@include by literal and by variable,
fragment spreads, custom directives), so each generated document is varied here, with a
seeded `random.Random`: every variation is a valid document of its own.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    ArgumentNode,
    BooleanValueNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    NamedTypeNode,
    NameNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableDefinitionNode,
    VariableNode,
    Visitor,
    visit,
)

CONDITION_VARIABLES = ("a", "b")
Arguments = dict[str, Callable[[random.Random], ValueNode]]


def _name(value: str) -> NameNode:
    return NameNode(value=value)


@dataclass
class _Variation(Visitor):
    rnd: random.Random
    uppercase: bool
    arguments: Arguments
    used: set[str] = field(default_factory=set)
    fragments: list[FragmentDefinitionNode] = field(default_factory=list)
    aliases: int = 0

    def __post_init__(self) -> None:
        super().__init__()

    def _condition(self) -> DirectiveNode:
        rnd = self.rnd
        value: ValueNode
        if rnd.random() < 0.5:
            value = BooleanValueNode(value=rnd.random() < 0.5)
        else:
            variable = rnd.choice(CONDITION_VARIABLES)
            self.used.add(variable)
            value = VariableNode(name=_name(variable))
        name = rnd.choice(("skip", "include"))
        argument = _argument("if", value)
        return DirectiveNode(name=_name(name), arguments=(argument,))

    def leave_field(self, node: FieldNode, *_: Any) -> FieldNode:
        rnd = self.rnd
        directives = list(node.directives or ())
        if rnd.random() < 0.15:
            directives.append(self._condition())
        if self.uppercase and rnd.random() < 0.2:
            directives.append(DirectiveNode(name=_name("uppercase"), arguments=()))
        alias = node.alias
        if alias is None and rnd.random() < 0.15:
            self.aliases += 1
            alias = _name(f"{node.name.value}_{self.aliases}")
        arguments = tuple(
            _argument(argument.name.value, self.arguments[argument.name.value](rnd))
            if argument.name.value in self.arguments and rnd.random() < 0.8
            else argument
            for argument in node.arguments or ()
        )
        return FieldNode(
            alias=alias,
            name=node.name,
            arguments=arguments,
            directives=tuple(directives),
            selection_set=node.selection_set,
        )

    def leave_selection_set(self, node: SelectionSetNode, *_: Any) -> SelectionSetNode:
        rnd = self.rnd
        selections = list(node.selections)
        if rnd.random() < 0.3:
            typename = FieldNode(name=_name("__typename"), arguments=(), directives=())
            selections.insert(rnd.randrange(len(selections) + 1), typename)
        if rnd.random() < 0.25:
            selections.append(rnd.choice(selections))  # the same again: merged by key
        if len(selections) > 1 and rnd.random() < 0.2:
            start = rnd.randrange(len(selections))
            wrapped = SelectionSetNode(selections=tuple(selections[start : start + 2]))
            directives = (self._condition(),) if rnd.random() < 0.5 else ()
            inline = InlineFragmentNode(directives=directives, selection_set=wrapped)
            selections[start : start + 2] = [inline]
        return SelectionSetNode(selections=tuple(selections))

    def leave_inline_fragment(
        self, node: InlineFragmentNode, *_: Any
    ) -> InlineFragmentNode | FragmentSpreadNode:
        if node.type_condition is None or self.rnd.random() < 0.5:
            return node
        name = _name(f"F{len(self.fragments)}")
        self.fragments.append(
            FragmentDefinitionNode(
                name=name,
                type_condition=node.type_condition,
                directives=(),
                selection_set=node.selection_set,
            )
        )
        directives = (self._condition(),) if self.rnd.random() < 0.3 else ()
        return FragmentSpreadNode(name=name, directives=directives)


def _argument(name: str, value: ValueNode) -> ArgumentNode:
    return ArgumentNode(name=_name(name), value=value)


def vary(
    document: DocumentNode,
    rnd: random.Random,
    uppercase: bool = False,
    arguments: Arguments | None = None,
) -> tuple[DocumentNode, dict[str, Any]]:
    """A variation of `document` (one operation), and the variables it needs.

    `uppercase` places the schema's `@uppercase` directive on some fields; `arguments`
    gives values for arguments by name (those hypothesis draws are mostly refused).
    """
    variation = _Variation(rnd, uppercase, arguments or {})
    varied: DocumentNode = visit(document, variation)
    operation = varied.definitions[0]
    if not isinstance(operation, OperationDefinitionNode):
        raise TypeError("expected one operation")
    boolean = NonNullTypeNode(type=NamedTypeNode(name=_name("Boolean")))
    definitions = tuple(
        VariableDefinitionNode(variable=VariableNode(name=_name(name)), type=boolean, directives=())
        for name in sorted(variation.used)
    )
    operation = OperationDefinitionNode(
        operation=operation.operation,
        name=operation.name,
        variable_definitions=definitions,
        directives=operation.directives,
        selection_set=operation.selection_set,
    )
    variables = {name: rnd.random() < 0.5 for name in variation.used}
    return DocumentNode(definitions=(operation, *variation.fragments)), variables
