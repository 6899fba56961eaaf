"""Query execution with a short path for fields that need no resolver call of their own.

graphql-core runs every field of every object through the same steps: a resolve-info
object, argument coercion, strawberry's resolver wrapper, then value completion, each a
few Python calls. For `Post.title` all of that ends in `getattr(post, "title")`, and a
page of ten posts with their creators has about ninety such fields: they were most of a
read's CPU time. This executor completes them directly and hands every other field to
graphql-core unchanged.

A field takes the short path when all of these hold:
- it takes no arguments, and it is an attribute (strawberry's default resolver,
  `compat.attribute_reader`), a context field (`policies.context_reader`: computed from the
  object and the request's context, by the same function its resolver calls) or
  `__typename`;
- its type is a scalar, an enum, an object type without `is_type_of` whose selected
  fields all take the short path too, or a list of those, nullable or not;
- no incremental delivery (`@defer`/`@stream`) is under way there.

The values are coerced by the same scalar and enum types graphql-core would use. What the
short path cannot finish (a null where the type forbids one, a value a scalar refuses, an
exception) makes it run that object's fields again the usual way, which then reports
exactly the error graphql-core would have. Reading an attribute or a context field has no
side effect, so doing it twice changes nothing else.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLID,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import AwaitableOrValue, Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gql_feed.compat import attribute_name
from gql_feed.schema.policies import context_reader

Complete = Callable[[Any, Any], Any]
"""(raw value, request context) -> the value for the response; raises `_Unfinished`."""


class _Unfinished(Exception):
    """The short path met something only the usual path reports properly."""


@dataclass(frozen=True, slots=True)
class Step:
    """One response key of a selection set, completed on the short path: read as the
    attribute `attribute`, or by `read(source, context)`."""

    name: str
    attribute: str | None
    read: Callable[[Any, Any], Any] | None
    complete: Complete


@dataclass(frozen=True, slots=True)
class Shape:
    """How to complete one selection set on one object type, in any execution.

    `steps` take the short path; the fields named in `rest` go the usual way. `order` is
    the response keys in the order the query selected them.
    """

    steps: tuple[Step, ...]
    rest: tuple[str, ...]
    order: tuple[str, ...]

    def read(self, source: Any, context: Any) -> dict[str, Any]:
        """The short-path fields of one object; raises `_Unfinished`."""
        values: dict[str, Any] = {}
        for step in self.steps:
            try:
                if step.attribute is not None:
                    raw = getattr(source, step.attribute)
                else:
                    raw = step.read(source, context)  # type: ignore[misc]  # one or the other
            except Exception as error:
                raise _Unfinished from error
            values[step.name] = step.complete(raw, context)
        return values


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """A shape in one execution: `rest` holds graphql-core's own field groups for the
    usual path, in one stable dict so that its memoization keeps working."""

    shape: Shape
    rest: GroupedFieldSet


SelectionKey = tuple[str, tuple[tuple[str, tuple[int, ...]], ...]]
"""A selection set within one operation: the type, then each response key's field nodes."""


@dataclass(slots=True)
class OperationShapes:
    """The shapes of one operation's selection sets, per choice of its Boolean variables
    (`@skip` and `@include` can only depend on those).

    Selection keys hold node ids; the nodes cannot be freed and their ids reused while
    this lives: the operation's are kept alive by the operation itself (this is dropped
    when it is freed), its fragments' by `fragments`.
    """

    schema: GraphQLSchema
    fragments: tuple[object, ...]
    variants: dict[tuple[tuple[str, bool], ...], dict[SelectionKey, Shape | None]]


# Per operation node id; an entry goes when its operation is freed (`_operation_shapes`).
_SHAPES: dict[int, OperationShapes] = {}
# Boolean-variable choices kept per operation; past that, shapes are made per execution.
MAX_VARIANTS = 16


class FeedExecutor(StrawberryGraphQLCoreExecutionContext):
    """strawberry's executor, with the short path of the module doc."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Plans by the identity of graphql-core's memoized grouped field set (the same
        # object for every item of a list), kept with the set so that its id stays valid.
        self._plans: dict[int, tuple[GraphQLObjectType, GroupedFieldSet, FieldPlan | None]] = {}

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        plan = self._plan(parent_type, grouped_field_set) if position_context is None else None
        if plan is None:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        try:
            values = plan.shape.read(source_value, self.context_value)
        except _Unfinished:
            values = None
        if values is None:
            # Outside the `except`, so that the errors reported carry no trace of this.
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        if not plan.rest:
            return values
        others = super().execute_fields(parent_type, source_value, path, plan.rest, None)
        if isinstance(others, dict):
            return _merge(plan, values, others)
        return _merge_later(plan, values, others)

    # Planning: a shape once per selection set per operation, a plan once per execution.

    def _plan(self, parent: GraphQLObjectType, selection: GroupedFieldSet) -> FieldPlan | None:
        known = self._plans.get(id(selection))
        if known is not None and known[0] is parent and known[1] is selection:
            return known[2]
        shape = self._shape(parent, selection)
        plan = None
        if shape is not None:
            plan = FieldPlan(shape, {name: selection[name] for name in shape.rest})
        self._plans[id(selection)] = (parent, selection, plan)
        return plan

    def _shape(self, parent: GraphQLObjectType, selection: GroupedFieldSet) -> Shape | None:
        shapes = self._operation_shapes()
        key: SelectionKey = (
            parent.name,
            tuple(
                (name, tuple(id(details.node) for details in field_details))
                for name, field_details in selection.items()
            ),
        )
        if shapes is not None and key in shapes:
            return shapes[key]
        steps: list[Step] = []
        rest: list[str] = []
        for name, details in selection.items():
            step = self._step(parent, name, details)
            if step is None:
                rest.append(name)
            else:
                steps.append(step)
        shape = Shape(tuple(steps), tuple(rest), tuple(selection)) if steps else None
        if shapes is not None:
            shapes[key] = shape
        return shape

    def _operation_shapes(self) -> dict[SelectionKey, Shape | None] | None:
        """This execution's shapes, kept across executions of the same operation."""
        operation = self.operation
        entry = _SHAPES.get(id(operation))
        if entry is None or entry.schema is not self.schema:
            entry = OperationShapes(self.schema, tuple(self.fragment_definitions.values()), {})
            if id(operation) not in _SHAPES:
                weakref.finalize(operation, _SHAPES.pop, id(operation), None)
            _SHAPES[id(operation)] = entry
        coerced = self.variable_values.coerced
        choice = tuple(sorted((k, v) for k, v in coerced.items() if type(v) is bool))
        shapes = entry.variants.get(choice)
        if shapes is None and len(entry.variants) < MAX_VARIANTS:
            shapes = entry.variants[choice] = {}
        return shapes

    def _step(self, parent: GraphQLObjectType, name: str, details: FieldDetailsList) -> Step | None:
        node = details[0].node
        field_name = node.name.value
        if field_name == "__typename":
            type_name = parent.name
            return Step(name, None, lambda _source, _context: type_name, _as_is)
        field = parent.fields.get(field_name)
        if field is None or field.args or node.arguments:
            return None
        read = context_reader(field)
        attribute = attribute_name(field) if read is None else None
        if read is None and attribute is None:
            return None
        complete = self._completer(field.type, details)
        return Step(name, attribute, read, complete) if complete is not None else None

    def _completer(self, of_type: GraphQLOutputType, details: FieldDetailsList) -> Complete | None:
        non_null = isinstance(of_type, GraphQLNonNull)
        named = of_type.of_type if isinstance(of_type, GraphQLNonNull) else of_type
        if is_leaf_type(named):
            return _leaf(named, non_null)
        inner = self._value_completer(named, details)
        if inner is None:
            return None
        return _non_null(inner) if non_null else _nullable(inner)

    def _value_completer(
        self, of_type: GraphQLOutputType, details: FieldDetailsList
    ) -> Complete | None:
        """Completes a list or an object, known not to be null."""
        if isinstance(of_type, GraphQLList):
            item = self._completer(of_type.of_type, details)
            return _list_of(item) if item is not None else None
        if isinstance(of_type, GraphQLObjectType) and of_type.is_type_of is None:
            collected = self.collect_subfields(of_type, details)
            if collected.new_defer_usages:
                return None
            shape = self._shape(of_type, collected.grouped_field_set)
            if shape is None or shape.rest:
                return None
            return shape.read
        return None


# Completers: each raises `_Unfinished` where graphql-core would report an error.


def _as_is(value: Any, _context: Any) -> Any:
    return value


def _leaf(leaf_type: GraphQLLeafType, non_null: bool) -> Complete:
    coerce = leaf_type.coerce_output_value
    # graphql-core's String and ID give a `str` back as it is.
    strings = leaf_type is GraphQLString or leaf_type is GraphQLID

    def complete(value: Any, _context: Any) -> Any:
        if value is None:
            if non_null:
                raise _Unfinished
            return None
        if strings and value.__class__ is str:
            return value
        if isinstance(value, Exception):
            raise _Unfinished
        try:
            coerced = coerce(value)
        except Exception as error:
            raise _Unfinished from error
        if coerced is None or coerced is Undefined:
            raise _Unfinished
        return coerced

    return complete


def _nullable(inner: Complete) -> Complete:
    def complete(value: Any, context: Any) -> Any:
        return None if value is None else inner(value, context)

    return complete


def _non_null(inner: Complete) -> Complete:
    def complete(value: Any, context: Any) -> Any:
        if value is None:
            raise _Unfinished
        return inner(value, context)

    return complete


def _list_of(inner: Complete) -> Complete:
    def complete(value: Any, context: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise _Unfinished
        return [inner(item, context) for item in value]

    return complete


def _merge(plan: FieldPlan, values: dict[str, Any], others: dict[str, Any]) -> dict[str, Any]:
    """Both halves, keyed in the order the query selected them."""
    merged: dict[str, Any] = {}
    for name in plan.shape.order:
        if name in values:
            merged[name] = values[name]
        elif name in others:
            merged[name] = others[name]
    return merged


async def _merge_later(
    plan: FieldPlan, values: dict[str, Any], others: Awaitable[dict[str, Any]]
) -> dict[str, Any]:
    return _merge(plan, values, await others)
