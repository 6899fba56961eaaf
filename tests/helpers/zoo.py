"""A schema for the differential test of execution (tests/engine/test_execution_differential.py):
everything the feed's own schema does not have, and values that go wrong in every way.

Enums, an interface, a union, custom scalars (one that refuses values, one that takes
anything), a custom directive (`@uppercase`, run by strawberry's directive handling), an
extension with `resolve` and `on_execute` hooks that counts its calls, async resolvers,
and attribute values that are awaitable (stored, or made afresh by a property on each
read), null where the type forbids it, exceptions, values a scalar or an enum refuses.

The data is built anew for every execution (`zoo_root`), so that two executions never
share anything they could change.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from enum import Enum
from typing import Annotated, Any, NewType, TypeVar

import strawberry
from graphql import DocumentNode, GraphQLError
from strawberry.directive import DirectiveLocation, DirectiveValue
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gql_feed.engine.execution import FeedExecutor

T = TypeVar("T")


class Later:
    """An awaitable that is not a coroutine: it may be awaited any number of times, or
    never, without a warning."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Later({self.value!r})"  # the same in every run

    def __await__(self) -> Generator[Any, None, Any]:
        return self.value
        yield  # pragma: no cover - makes this a generator


async def fresh(value: Any) -> Any:
    return value


@strawberry.enum
class Kind(Enum):
    CAT = "cat"
    DOG = "dog"
    BIRD = "bird"


def _cents(value: Any) -> str:
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"Money cannot represent {value!r}")
    return f"{value // 100}.{value % 100:02d}"


Money = NewType("Money", int)
Blob = NewType("Blob", object)
SCALARS = StrawberryConfig(
    scalar_map={
        Money: strawberry.scalar(
            name="Money", serialize=_cents, parse_value=int, description="Refuses some values."
        ),
        Blob: strawberry.scalar(
            name="Blob", serialize=repr, parse_value=str, description="Takes anything."
        ),
    }
)


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Tag:
    label: str
    weight: int | None = None


@strawberry.type
class Pet:
    """No interface: its fields can take the short path."""

    name: str
    kind: Kind
    age: int | None
    price: Money | None
    blob: Blob | None
    tags: list[Tag]
    notes: list[str | None] | None
    best: Tag | None = None
    mood: str | None = None

    @strawberry.field
    async def greeting(self) -> str:
        return f"hello {self.name}"

    @strawberry.field
    def shout(self, times: int = 1) -> str:
        name = self.name if isinstance(self.name, str) else "?"
        return name.upper() * max(0, min(times, 3))


class MoodyPet(Pet):
    """A pet whose `mood` is a property making a new coroutine on every read."""

    @property
    def mood(self) -> Any:
        return fresh("moody")

    @mood.setter
    def mood(self, _value: Any) -> None:
        return None


@strawberry.type
class Person(Named):
    age: int
    pets: list[Pet]
    friend: Person | None = None
    favourite: Kind | None = None


@strawberry.type
class Rock(Named):
    weight: float


Thing = Annotated[Pet | Person | Rock, strawberry.union("Thing")]


def tags() -> list[Tag]:
    return [Tag(label="soft", weight=1), Tag(label="loud")]


def make(cls: type[T], **values: Any) -> T:
    """An object with values its annotations do not allow: what the test is about."""
    return cls(**values)


def pets() -> list[Pet]:
    """Fine pets, some with awaitable values."""
    good = make(
        Pet, name="Tom", kind=Kind.CAT, age=3, price=1250, blob=b"x", tags=tags(), notes=["a", None]
    )
    return [
        good,
        make(Pet, name="Rex", kind=Kind.DOG, age=None, price=None, blob=None, tags=[], notes=None),
        make(Pet, name=Later("Tweety"), kind=Later(Kind.BIRD), age=Later(2), price=Later(5),
            blob=Later("b"), tags=Later(tags()), notes=[Later("n"), None], best=Later(Tag(label="t"))),
        make(MoodyPet, name="Moody", kind=Kind.CAT, age=1, price=1, blob=1, tags=tags(), notes=[]),
    ]  # fmt: skip


def odd_pets() -> list[Pet]:
    """Each way a value can go wrong."""
    return [
        make(Pet, name=None, kind=Kind.DOG, age=1, price=1, blob=None, tags=tags(), notes=[]),
        make(Pet, name="Bad", kind="fish", age=2**40, price=-5, blob=None, tags=tags(), notes=["x"]),
        make(Pet, name=ValueError("no name"), kind=Kind.CAT, age="old", price="cheap",
            blob=None, tags="not a list", notes="not a list"),
        make(Pet, name="Tagless", kind=Kind.DOG, age=1, price=1, blob=None,
            tags=[make(Tag, label=None), make(Tag, label="ok", weight="heavy")], notes=[None]),
    ]  # fmt: skip


def people(all_pets: list[Pet]) -> list[Person]:
    ann = make(Person, name="Ann", age=30, pets=all_pets[:2], favourite=Kind.DOG)
    bob = make(Person, name="Bob", age=Later(40), pets=all_pets[2:4], friend=Later(ann))
    eve = make(Person, name="Eve", age=None, pets=odd_pets()[1:2], friend=bob, favourite="none")
    return [ann, bob, eve]


@strawberry.type
class Query:
    @strawberry.field
    def pets(self, first: int | None = None) -> list[Pet]:
        found = pets()
        return found if first is None else found[: max(0, first)]

    @strawberry.field
    def odd_pets(self) -> list[Pet | None]:
        return [*odd_pets()]

    @strawberry.field
    def pet(self, index: int) -> Pet | None:
        found = pets() + odd_pets()
        return found[index] if 0 <= index < len(found) else None

    @strawberry.field
    async def slow_pets(self) -> list[Pet]:
        return pets()

    @strawberry.field
    def first_pet(self) -> Pet:
        return pets()[0]

    @strawberry.field
    def people(self) -> list[Person | None]:
        return [*people(pets()), None]

    @strawberry.field
    def named(self) -> list[Named]:
        return [*people(pets()), Rock(name="Stone", weight=1.5)]

    @strawberry.field
    def things(self) -> list[Thing]:
        found = pets()
        return [found[0], found[2], *people(found)[1:], Rock(name="Pebble", weight=0.1)]

    @strawberry.field
    def kinds(self) -> list[Kind]:
        return list(Kind)

    @strawberry.field
    def price(self, cents: Money) -> Money:
        return cents


@strawberry.directive(locations=[DirectiveLocation.FIELD], description="Upper-cases a string.")
def uppercase(value: DirectiveValue[str]) -> str:
    # Placed on any field by the test: other values pass through.
    return value.upper() if isinstance(value, str) else value


class Counting(SchemaExtension):
    """Counts its hooks' calls in the execution's context (a dict)."""

    def on_execute(self) -> Iterator[None]:
        counts = self.execution_context.context
        counts["on_execute"] += 1
        yield
        counts["after_execute"] += 1

    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        info.context["resolve"] += 1
        return _next(root, info, *args, **kwargs)


PREPARED: dict[str, tuple[DocumentNode, list[GraphQLError]]] = {}
"""Query text -> (document, validation errors), filled by the test before it executes."""


class Prepared(SchemaExtension):
    """Parsing and validation done once per case by the test, for both executions: they
    are the same for both executors, and were most of the test's time."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.graphql_document = PREPARED[context.query or ""][0]
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        context.pre_execution_errors = PREPARED[context.query or ""][1]
        yield


class Quiet(strawberry.Schema):
    """Errors are what the test compares, not something to log."""

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        return None


def zoo_schemas(hooked: bool) -> tuple[strawberry.Schema, strawberry.Schema]:
    """(with FeedExecutor, with strawberry's own executor), otherwise the same."""
    extra: dict[str, Any] = {"config": SCALARS, "extensions": [Prepared]}
    if hooked:
        extra |= {"extensions": [Prepared, Counting], "directives": [uppercase]}
    return (
        Quiet(query=Query, execution_context_class=FeedExecutor, **extra),
        Quiet(query=Query, execution_context_class=StrawberryGraphQLCoreExecutionContext, **extra),
    )
