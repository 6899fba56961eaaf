"""Field policies: what the engine may assume about a field's value, declared on the field.

Two questions decide whether an answer may be kept (engine/response_cache.py) and whether
subscribers may share one execution per event (the live groups):
- does the value change only when an event id commits (`Changes.WITH_EVENTS`), or can it
  change without one (`Changes.WITHOUT_EVENT`: a status update, a signup)?
- is it the same whoever asks (`Audience.ANYONE`), or does it depend on the viewer
  (`Audience.VIEWER`)?

Every object and interface field answers both in its strawberry metadata
(`strawberry.field(metadata=policy(...))`), beside the type it belongs to. They are read
from the built schema, never from lists of names, and a schema with a field that answers
neither is refused when it is built (`field_policies`, called by `build_schema`): a new
field is never cacheable or shared by default. A field selected on an interface takes
the strictest policy of the interface's own field and of every type implementing it,
since any of them may answer. The metadata shows nowhere in the SDL.

A field whose value is computed from its object and the request's context alone may also
name that function (`reads`): execution then calls it directly instead of the resolver,
as it reads attributes (engine/execution.py, through `context_reader`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Any

from graphql import GraphQLField, GraphQLInterfaceType, GraphQLObjectType, GraphQLSchema

from gql_feed.compat.strawberry import field_metadata

POLICY_KEY = "gql_feed.policy"

ContextRead = Callable[[Any, Any], object]
"""(the object, the request's context) -> the field's value."""


class Changes(Enum):
    """When a field's value can change."""

    WITH_EVENTS = "with events"  # only when an event id commits: a kept answer stays right
    WITHOUT_EVENT = "without an event"  # at any time: an answer holding it is never kept


class Audience(Enum):
    """Who sees the same value."""

    ANYONE = "anyone"  # the same value whoever asks
    VIEWER = "viewer"  # depends on who asks: kept, and executed for events, per viewer


@dataclass(frozen=True, slots=True)
class FieldPolicy:
    changes: Changes
    audience: Audience
    reads: ContextRead | None = None

    @property
    def versioned(self) -> bool:
        """Whether the value stays right until the next event id commits."""
        return self.changes is Changes.WITH_EVENTS

    @property
    def per_viewer(self) -> bool:
        return self.audience is Audience.VIEWER

    def strictest(self, other: FieldPolicy) -> FieldPolicy:
        """What holds of a value either field may give."""
        changes = Changes.WITH_EVENTS
        if not (self.versioned and other.versioned):
            changes = Changes.WITHOUT_EVENT
        audience = Audience.VIEWER if self.per_viewer or other.per_viewer else Audience.ANYONE
        return FieldPolicy(changes, audience)


def policy(
    changes: Changes, audience: Audience, reads: ContextRead | None = None
) -> Mapping[str, FieldPolicy]:
    """A field's metadata declaring its policy: `strawberry.field(metadata=policy(...))`."""
    return MappingProxyType({POLICY_KEY: FieldPolicy(changes, audience, reads)})


# The two policies most fields have.
BY_EVENTS = policy(Changes.WITH_EVENTS, Audience.ANYONE)
ANY_TIME = policy(Changes.WITHOUT_EVENT, Audience.ANYONE)

# Introspection and `__typename`: fixed for the schema's life.
STATIC = FieldPolicy(Changes.WITH_EVENTS, Audience.ANYONE)
# A field the schema does not have (validation will refuse it): assume the worst.
UNKNOWN = FieldPolicy(Changes.WITHOUT_EVENT, Audience.VIEWER)


class UnclassifiedFields(TypeError):
    """Fields that declare no policy: the schema may not be served."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__(
            "Every field must declare whether it changes without an event and whether it "
            "depends on the viewer (gql_feed.schema.policies.policy); these do not: "
            + ", ".join(fields)
        )
        self.fields = fields


def declared_policy(field: GraphQLField) -> FieldPolicy | None:
    """The policy a field declares itself, if it declares one."""
    found = field_metadata(field).get(POLICY_KEY)
    return found if isinstance(found, FieldPolicy) else None


def context_reader(field: GraphQLField) -> ContextRead | None:
    """The function computing the field from its object and the request's context, when
    the field names one."""
    declared = declared_policy(field)
    return declared.reads if declared is not None else None


def unclassified_fields(schema: GraphQLSchema) -> list[str]:
    """Every object and interface field (introspection's aside) that declares no policy."""
    return [
        f"{named.name}.{name}"
        for named in _classified_types(schema)
        for name, field in named.fields.items()
        if declared_policy(field) is None
    ]


@dataclass(frozen=True, slots=True)
class FieldPolicies:
    """Every field's policy in one schema, by (parent type, field) as a document names them."""

    by_field: Mapping[tuple[str, str], FieldPolicy]

    def of(self, parent: str, field: str) -> FieldPolicy:
        if field.startswith("__") or parent.startswith("__"):
            return STATIC  # __typename, __schema, __type and introspection's own types
        return self.by_field.get((parent, field), UNKNOWN)


_POLICIES: dict[int, tuple[GraphQLSchema, FieldPolicies]] = {}


def field_policies(schema: GraphQLSchema) -> FieldPolicies:
    """The schema's field policies, read once per schema; raises `UnclassifiedFields`."""
    entry = _POLICIES.get(id(schema))
    if entry is not None and entry[0] is schema:
        return entry[1]
    missing = unclassified_fields(schema)
    if missing:
        raise UnclassifiedFields(missing)
    by_field: dict[tuple[str, str], FieldPolicy] = {}
    for named in _classified_types(schema):
        for name, field in named.fields.items():
            own = declared_policy(field)
            if own is None:  # pragma: no cover - refused above
                continue
            if isinstance(named, GraphQLInterfaceType):
                for possible in schema.get_possible_types(named):
                    implemented = possible.fields.get(name)
                    other = declared_policy(implemented) if implemented else None
                    own = own.strictest(other or UNKNOWN)
            by_field[(named.name, name)] = own
    policies = FieldPolicies(MappingProxyType(by_field))
    if id(schema) not in _POLICIES:
        weakref.finalize(schema, _POLICIES.pop, id(schema), None)
    _POLICIES[id(schema)] = (schema, policies)
    return policies


def _classified_types(schema: GraphQLSchema) -> list[GraphQLObjectType | GraphQLInterfaceType]:
    return [
        named
        for name, named in schema.type_map.items()
        if not name.startswith("__") and isinstance(named, GraphQLObjectType | GraphQLInterfaceType)
    ]
