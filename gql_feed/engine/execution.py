"""Query execution with a short path for fields that need no resolver call of their own.

graphql-core runs every field of every object through the same steps: a resolve-info
object, argument coercion, strawberry's resolver wrapper, then value completion, each a
few Python calls. For `Post.title` all of that ends in `getattr(post, "title")`, and a
page of ten posts with their creators has about ninety such fields: they were most of a
read's CPU time. This executor completes them directly and hands every other field to
graphql-core unchanged.

Nothing may be able to observe the difference, so the short path is off for a whole
execution when any of these holds, decided once per execution and operation, not per value:
- resolver middleware is installed: strawberry runs every schema extension's `resolve` hook,
  and its own handling of custom directives, as graphql-core middleware around every field;
- the operation or one of its fragments carries a directive other than `@skip`/`@include`
  (on a field, a fragment spread or an inline fragment).

Otherwise a field takes the short path when all of these hold:
- it takes no arguments, and it is an attribute (strawberry's default resolver,
  `compat.strawberry.attribute_name`), a context field (`schema.policies.context_reader`:
  computed from the object and the request's context, by the same function its resolver
  calls) or `__typename`;
- its type is a scalar, an enum, an object type (without `is_type_of`, or with strawberry's
  own, `compat.strawberry.value_check`) whose selected fields all take the short path
  too, or a list of those, nullable or not;
- no incremental delivery (`@defer`/`@stream`) is under way there.

The values are coerced by the same scalar and enum types graphql-core would use. What the
short path cannot finish (a null where the type forbids one, a value a scalar refuses, an
exception, an awaitable value) makes it run that object's fields again the usual way, which
then reports exactly the error graphql-core would have, or awaits the value as it would.
Reading an attribute or a context field has no side effect, so doing it twice changes
nothing else; a coroutine that a read makes afresh each time (a property) is closed, not
left un-awaited, since the usual path reads and awaits its own.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Any

from graphql import (
    BREAK,
    DirectiveNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    Node,
    Visitor,
    is_leaf_type,
    visit,
)
from graphql.execution import ExecutionResult, ExperimentalIncrementalExecutionResults
from graphql.pyutils import AwaitableOrValue, Path

from gql_feed.compat.graphql_core import FieldDetailsList, FieldsExecutor, GroupedFieldSet
from gql_feed.compat.strawberry import attribute_name, value_check
from gql_feed.engine.completion import (
    AwaitableValue,
    Complete,
    IsAwaitable,
    Unfinished,
    as_is,
    leaf,
    list_of,
    non_null,
    not_awaitable,
    nullable,
)
from gql_feed.engine.phase_spans import executed
from gql_feed.observability.tracing import tracing_on
from gql_feed.schema.policies import context_reader


@dataclass(frozen=True, slots=True)
class Step:
    """One response key of a selection set, completed on the short path: read as the
    attribute `attribute`, or by `read(source, context)`."""

    name: str
    attribute: str | None
    read: Callable[[Any, Any], Any] | None
    complete: Complete

    def value(self, source: Any, context: Any) -> Any:
        if self.attribute is not None:
            return getattr(source, self.attribute)
        return self.read(source, context)  # type: ignore[misc]  # one or the other

    def let_go(self, source: Any, context: Any, raw: Any) -> None:
        """Close a coroutine the read made afresh (reading again gives another): the
        usual path makes and awaits its own, and this one would never be awaited."""
        try:
            again = self.value(source, context)
        except Exception:
            again = None
        if again is not raw:
            for made in (raw, again):
                if isinstance(made, Coroutine):
                    made.close()


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
        """The short-path fields of one object; raises `Unfinished`."""
        values: dict[str, Any] = {}
        for step in self.steps:
            try:
                raw = step.value(source, context)
            except Exception as error:
                raise Unfinished from error
            try:
                values[step.name] = step.complete(raw, context)
            except AwaitableValue as pending:
                if pending.value is raw:
                    step.let_go(source, context, raw)
                raise
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
    is_awaitable: IsAwaitable  # what the completers treat as awaitable, as graphql-core does
    fragments: tuple[object, ...]
    # No directive but @skip/@include anywhere in the operation or its fragments.
    plain: bool
    variants: dict[tuple[tuple[str, bool], ...], dict[SelectionKey, Shape | None]]


# Per operation node id; an entry goes when its operation is freed (`_operation_shapes`).
_SHAPES: dict[int, OperationShapes] = {}
# Boolean-variable choices kept per operation; past that, shapes are made per execution.
MAX_VARIANTS = 16


class FeedExecutor(FieldsExecutor):
    """strawberry's executor, with the short path of the module doc."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plain: bool | None = None  # see OperationShapes.plain
        # Plans by the identity of graphql-core's memoized grouped field set (the same
        # object for every item of a list), kept with the set so that its id stays valid.
        self._plans: dict[int, tuple[GraphQLObjectType, GroupedFieldSet, FieldPlan | None]] = {}

    def execute_operation(
        self, serially: bool | None = None
    ) -> AwaitableOrValue[ExecutionResult | ExperimentalIncrementalExecutionResults]:
        """graphql-core's, within a `graphql.execute` span while tracing is on."""
        if not tracing_on():
            return super().execute_operation(serially)
        return executed(partial(super().execute_operation, serially))

    def object_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        plan = None
        if position_context is None and self._unobserved():
            plan = self._plan(parent_type, grouped_field_set)
        if plan is None:
            return self.core_object_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        try:
            values = plan.shape.read(source_value, self.context_value)
        except Unfinished:
            values = None
        if values is None:
            # Outside the `except`, so that the errors reported carry no trace of this.
            return self.core_object_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        if not plan.rest:
            return values
        others = self.core_object_fields(parent_type, source_value, path, plan.rest, None)
        if isinstance(others, dict):
            return _merge(plan, values, others)
        return _merge_later(plan, values, others)

    def _unobserved(self) -> bool:
        """Whether nothing would see the short path: no resolver middleware (checked on
        every call: a per-event copy of an executor may be given some), no directive but
        @skip/@include (once per operation)."""
        middleware = self.middleware_manager
        if middleware is not None and middleware.middlewares:
            return False
        plain = self._plain
        if plain is None:
            plain = self._plain = self._entry().plain
        return plain

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

    def _entry(self) -> OperationShapes:
        """What is kept of this execution's operation across executions."""
        operation = self.operation
        entry = _SHAPES.get(id(operation))
        if (
            entry is None
            or entry.schema is not self.schema
            or entry.is_awaitable is not self.is_awaitable
        ):
            fragments = tuple(self.fragment_definitions.values())
            plain = not any(_other_directives(node) for node in (operation, *fragments))
            entry = OperationShapes(self.schema, self.is_awaitable, fragments, plain, {})
            if id(operation) not in _SHAPES:
                weakref.finalize(operation, _SHAPES.pop, id(operation), None)
            _SHAPES[id(operation)] = entry
        return entry

    def _operation_shapes(self) -> dict[SelectionKey, Shape | None] | None:
        """This execution's shapes, kept across executions of the same operation."""
        entry = self._entry()
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
            return Step(name, None, lambda _source, _context: type_name, as_is)
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
        required = isinstance(of_type, GraphQLNonNull)
        named = of_type.of_type if isinstance(of_type, GraphQLNonNull) else of_type
        if is_leaf_type(named):
            return leaf(named, required, self.is_awaitable)
        inner = self._value_completer(named, details)
        if inner is None:
            return None
        if not isinstance(named, GraphQLList):
            inner = not_awaitable(inner, self.is_awaitable)
        return non_null(inner) if required else nullable(inner)

    def _value_completer(
        self, of_type: GraphQLOutputType, details: FieldDetailsList
    ) -> Complete | None:
        """Completes a list or an object, known not to be null."""
        if isinstance(of_type, GraphQLList):
            item = self._completer(of_type.of_type, details)
            return list_of(item) if item is not None else None
        if isinstance(of_type, GraphQLObjectType):
            check = value_check(of_type)
            if of_type.is_type_of is not None and check is None:
                return None
            collected = self.subfields(of_type, details)
            if collected.new_defer_usages:
                return None
            shape = self._shape(of_type, collected.grouped_field_set)
            if shape is None or shape.rest:
                return None
            return shape.read if check is None else checked(check, shape.read)
        return None


def checked(check: Callable[[Any], bool], read: Complete) -> Complete:
    """`read`, for a value `check` accepts (the type's `is_type_of`); graphql-core reports
    any other, as it would."""

    def complete(value: Any, context: Any) -> Any:
        if not check(value):
            raise Unfinished
        return read(value, context)

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


class _OtherDirectives(Visitor):
    """Finds a directive other than @skip/@include: strawberry's directive handling (or
    anything else acting on one) is middleware the short path would step around."""

    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def enter_directive(self, node: DirectiveNode, *_: object) -> object:
        if node.name.value in ("skip", "include"):
            return None
        self.found = True
        return BREAK


def _other_directives(root: Node) -> bool:
    finder = _OtherDirectives()
    visit(root, finder)
    return finder.found
