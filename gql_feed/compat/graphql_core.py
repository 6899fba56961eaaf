"""graphql-core's private names and undocumented behaviour that gql_feed uses.

Checked against graphql-core 3.3.2; watched by tests/compat/test_compat.py.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError, GraphQLObjectType, ValidationContext
from graphql.execution.collect_fields import CollectedFields, FieldDetailsList, GroupedFieldSet
from graphql.pyutils import AwaitableOrValue, Path
from graphql.validation.validate import ValidationAbortedError

from gql_feed.compat.strawberry import StrawberryExecutionContext

__all__ = [
    "CollectedFields",
    "FieldDetailsList",
    "FieldsExecutor",
    "GroupedFieldSet",
    "hide_suggestions",
    "validation_aborted",
]

# `CollectedFields`, `FieldDetailsList` and `GroupedFieldSet` are the types of the
# executor's steps below; `graphql.execution.collect_fields` is not re-exported by
# `graphql.execution`.


def hide_suggestions(context: ValidationContext) -> None:
    """Make every validation rule of this run leave out "Did you mean …?" suggestions.

    The rules read `context.hide_suggestions`, a read-only property over
    `_hide_suggestions`, which only `validate(..., hide_suggestions=True)` sets; strawberry
    calls `validate` without it. Rules are all constructed before the document is visited,
    so a rule that sets it in its constructor reaches all of them.
    """
    context._hide_suggestions = True


def validation_aborted(error: GraphQLError) -> bool:
    """Whether validation gave up on a document (its fragments cost more work than
    graphql-core's budget allows) rather than finding it invalid.

    That error is a `ValidationAbortedError`, defined in `graphql.validation.validate` and
    exported by no public module.
    """
    return isinstance(error, ValidationAbortedError)


class FieldsExecutor(StrawberryExecutionContext):
    """strawberry's executor, with graphql-core's per-object step open to a subclass.

    graphql-core executes every object's selected fields through `Executor.execute_fields`
    and memoises the sub-selections of a field with `Executor.collect_subfields`; both are
    documented `:meta private:`. Here they have names of our own:
    - a subclass that defines `object_fields` (same parameters: parent type, source value,
      path, grouped field set, position context) has it called for every object instead;
      `core_object_fields` is graphql-core's own step, for what the subclass hands back;
    - `subfields(return_type, field_details)` is graphql-core's memoised collection.
    The subclass's `object_fields` is installed as the step itself when the class is
    created, so the indirection costs no call per object.
    """

    core_object_fields = StrawberryExecutionContext.execute_fields
    subfields = StrawberryExecutionContext.collect_subfields

    def object_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        return self.core_object_fields(
            parent_type, source_value, path, grouped_field_set, position_context
        )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "object_fields" in cls.__dict__:
            setattr(cls, "execute_fields", cls.__dict__["object_fields"])  # noqa: B010
