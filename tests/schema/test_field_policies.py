"""Field policies come from the fields themselves: every field of the served schema declares
one, a field that does not keeps the schema from being built, and a field selected through
an interface is as strict as any type behind it."""

from __future__ import annotations

import time

import pytest
import strawberry
from graphql import GraphQLInterfaceType, GraphQLObjectType, GraphQLSchema, parse

from gql_feed.compat.strawberry import graphql_schema
from gql_feed.engine import executable
from gql_feed.engine.analysis import analyse
from gql_feed.engine.executable import build_schema
from gql_feed.schema import root
from gql_feed.schema.policies import (
    BY_EVENTS,
    Audience,
    Changes,
    UnclassifiedFields,
    context_reader,
    declared_policy,
    field_policies,
    policy,
)
from gql_feed.schema.types import Post, User

SERVED = graphql_schema(build_schema([]))


def every_field(schema: GraphQLSchema) -> list[tuple[str, str, object]]:
    """Every object and interface field, introspection's types aside."""
    return [
        (named.name, name, field)
        for named in schema.type_map.values()
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType)
        and not named.name.startswith("__")
        for name, field in named.fields.items()
    ]


def test_every_field_of_the_served_schema_declares_its_policy() -> None:
    fields = every_field(SERVED)
    assert len(fields) > 40  # Query, Mutation, Subscription and every object type
    unclassified = [
        f"{parent}.{name}"
        for parent, name, field in fields
        if declared_policy(field) is None  # type: ignore[arg-type]
    ]
    assert unclassified == []


def test_the_policies_say_what_the_feed_knows() -> None:
    policies = field_policies(SERVED)
    # updateStatus and signup commit no event.
    assert not policies.of("User", "status").versioned
    assert not policies.of("Query", "user").versioned
    assert policies.of("Query", "me").per_viewer
    assert policies.of("User", "email").per_viewer
    assert policies.of("User", "email").versioned
    assert policies.of("Post", "title").versioned
    assert not policies.of("Post", "title").per_viewer
    # Introspection is fixed; a field the schema lacks is assumed the worst.
    assert policies.of("Query", "__typename").versioned
    assert policies.of("__Schema", "types").versioned
    assert not policies.of("Post", "nope").versioned
    assert policies.of("Post", "nope").per_viewer


def test_context_fields_name_their_function() -> None:
    user = SERVED.type_map["User"]
    post = SERVED.type_map["Post"]
    assert isinstance(user, GraphQLObjectType)
    assert isinstance(post, GraphQLObjectType)
    assert context_reader(user.fields["email"]) is User.email_for
    assert context_reader(post.fields["imageUrl"]) is Post.image_url_for
    assert context_reader(post.fields["title"]) is None


@strawberry.type
class Unclassified:
    labelled: str = strawberry.field(metadata=BY_EVENTS)
    forgotten: str


@strawberry.type
class QueryWithAForgottenField:
    @strawberry.field(metadata=BY_EVENTS)
    def thing(self) -> Unclassified:
        return Unclassified(labelled="a", forgotten="b")


def test_a_field_without_a_policy_is_refused() -> None:
    with pytest.raises(UnclassifiedFields) as refused:
        field_policies(graphql_schema(strawberry.Schema(query=QueryWithAForgottenField)))
    assert refused.value.fields == ["Unclassified.forgotten"]


def test_the_served_schema_is_not_built_with_an_unclassified_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    @strawberry.type
    class Query(root.Query):
        @strawberry.field
        def new_field(self) -> int:
            return 1

    monkeypatch.setattr(executable, "Query", Query)
    with pytest.raises(UnclassifiedFields, match=r"Query\.newField"):
        build_schema([])


# Interfaces: a field selected on one may be answered by any type implementing it.


@strawberry.interface
class Node:
    id: strawberry.ID = strawberry.field(metadata=BY_EVENTS)
    label: str = strawberry.field(metadata=BY_EVENTS)


@strawberry.type
class Article(Node):
    id: strawberry.ID = strawberry.field(metadata=BY_EVENTS)
    label: str = strawberry.field(metadata=BY_EVENTS)


@strawberry.type
class Profile(Node):
    id: strawberry.ID = strawberry.field(metadata=BY_EVENTS)
    # The same name, but each viewer sees their own, and it changes without an event.
    label: str = strawberry.field(metadata=policy(Changes.WITHOUT_EVENT, Audience.VIEWER))


@strawberry.type
class NodeQuery:
    @strawberry.field(metadata=BY_EVENTS)
    def node(self) -> Node:
        return Article(id=strawberry.ID("1"), label="a")


INTERFACES = graphql_schema(strawberry.Schema(query=NodeQuery, types=[Article, Profile]))


def test_an_interface_field_is_as_strict_as_its_strictest_implementation() -> None:
    policies = field_policies(INTERFACES)
    assert policies.of("Node", "id").versioned
    assert not policies.of("Node", "id").per_viewer
    assert not policies.of("Node", "label").versioned
    assert policies.of("Node", "label").per_viewer
    assert policies.of("Article", "label").versioned


@pytest.mark.parametrize(
    ("text", "cacheable", "viewer_dependent"),
    [
        ("{ node { id } }", True, False),
        ("{ node { label } }", False, True),
        ("{ node { ... on Article { label } } }", True, False),
        ("{ node { ...L } } fragment L on Node { label }", False, True),
    ],
)
def test_documents_selecting_through_an_interface(
    text: str, cacheable: bool, viewer_dependent: bool
) -> None:
    operation = analyse(INTERFACES, parse(text)).operation(None)
    assert operation is not None
    assert (operation.cacheable, operation.viewer_dependent) == (cacheable, viewer_dependent)


# The analysis reads each fragment once.


def fan_out(depth: int, last: str) -> str:
    """Each fragment spreads the next twice: 2**depth paths, `depth` fragments."""
    fragments = [f"fragment F{i} on Post {{ id ...F{i + 1} ...F{i + 1} }}" for i in range(depth)]
    fragments.append(f"fragment F{depth} on Post {{ {last} }}")
    return "{ post(id: 1) { ...F0 } } " + " ".join(fragments)


def test_fragments_spread_in_fragments_are_read_once() -> None:
    """2**60 paths: only a walk that visits each fragment once ever finishes."""
    started = time.perf_counter()
    operation = analyse(SERVED, parse(fan_out(60, "creator { email }"))).operation(None)
    elapsed = time.perf_counter() - started
    assert operation is not None
    assert operation.fields == {
        ("Query", "post"),
        ("Post", "id"),
        ("Post", "creator"),
        ("User", "email"),
    }
    assert operation.cacheable
    assert operation.viewer_dependent
    assert elapsed < 5.0, elapsed  # a generous sanity bound: it takes milliseconds
    status = analyse(SERVED, parse(fan_out(60, "creator { status }"))).operation(None)
    assert status is not None
    assert not status.cacheable
