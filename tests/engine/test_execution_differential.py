"""Differential test: FeedExecutor (engine/execution.py) answers exactly as strawberry's own
execution does, for documents nobody wrote by hand.

hypothesis-graphql writes documents over two schemas: the feed's own (its data in SQLite,
the server's schema extensions on both sides) and tests/helpers/zoo.py (enums, an interface, a
union, custom scalars, the custom directive `@uppercase`, an extension with `resolve` and
`on_execute` hooks, async resolvers, awaitable attribute values, values that go wrong).
Each document is run as written and in `VARIANTS - 1` variations (tests/helpers/decorate.py:
aliases, repeated fields, `@skip`/`@include` by literal and by variable, fragment spreads,
`@uppercase`), each a case. Every case runs in process under both executors, on data built
anew for each run; the data, the errors (message, locations, path, extensions), the order
of keys and the hooks' call counts must be identical.

Cases per run: (ZOO_DOCUMENTS + HOOKED_DOCUMENTS + FEED_DOCUMENTS) * VARIANTS = 2,020;
each test checks it ran its share, and that the short path did (or, with resolver
middleware, did not) run: an equivalence the short path never took part in would show
nothing.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import strawberry
from graphql import (
    DocumentNode,
    IntValueNode,
    NullValueNode,
    StringValueNode,
    parse,
    print_ast,
    validate,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import from_schema, nodes
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gql_feed.compat.strawberry import graphql_schema
from gql_feed.config import Settings
from gql_feed.engine import execution
from gql_feed.engine.admission import http_context
from gql_feed.engine.executable import QuietErrors
from gql_feed.schema.root import Mutation, Query, Subscription
from tests.helpers.asgi import app_client, create_post, user_with_token
from tests.helpers.decorate import Arguments, vary
from tests.helpers.server import TEST_SECRET
from tests.helpers.zoo import PREPARED, zoo_schemas

# graphql-core leaves the coroutines of strawberry's async directive middleware un-awaited
# when a null propagates past them: under both executors alike, and not what is compared.
# The timeout is a generous bound for a shared, busy machine, not a speed claim.
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:coroutine 'DirectivesExtension.resolve' was never awaited:RuntimeWarning"
    ),
    pytest.mark.timeout(600),
]

VARIANTS = 10
ZOO_DOCUMENTS = 100
HOOKED_DOCUMENTS = 70
FEED_DOCUMENTS = 32
assert (ZOO_DOCUMENTS + HOOKED_DOCUMENTS + FEED_DOCUMENTS) * VARIANTS >= 2000

# No shrinking: a failing case's document is in the assertion's message already, and
# shrinking one through its variations each time is slow.
DIFFERENTIAL = settings(
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass
class Tally:
    cases: int = 0
    short_reads: int = 0  # objects completed on the short path, under FeedExecutor


@pytest.fixture(scope="module")
def short_reads() -> Iterator[list[int]]:
    """Counts the objects the short path completes (`Shape.read` calls)."""
    calls = [0]
    original = execution.Shape.read

    def counted(shape: execution.Shape, source: Any, context: Any) -> dict[str, Any]:
        calls[0] += 1
        return original(shape, source, context)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(execution.Shape, "read", counted)
        yield calls


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for every case of the module (the tests are synchronous, for
    hypothesis, and run their executions here)."""
    running = asyncio.new_event_loop()
    yield running
    running.close()


def outcome(result: Any, counts: dict[str, int] | None) -> str:
    errors = [error.formatted for error in result.errors or []]
    return json.dumps({"data": result.data, "errors": errors, "hooks": counts}, default=repr)


def variations(
    document: DocumentNode, seed: int, uppercase: bool = False, arguments: Arguments | None = None
) -> Iterator[tuple[DocumentNode, dict[str, Any]]]:
    yield document, {}
    rnd = random.Random(seed)
    for _ in range(VARIANTS - 1):
        yield vary(document, rnd, uppercase, arguments)


# --- the zoo ------------------------------------------------------------------------------

ZOO, ZOO_PLAIN = zoo_schemas(hooked=False)
HOOKED, HOOKED_PLAIN = zoo_schemas(hooked=True)
ZOO_SCALARS = {"Money": st.integers(-3, 10**6).map(nodes.Int)}
ZOO_ARGUMENTS: Arguments = {
    "index": lambda rnd: IntValueNode(value=str(rnd.randrange(-1, 13))),
    "first": lambda rnd: IntValueNode(value=str(rnd.randrange(-1, 6))),
    "times": lambda rnd: IntValueNode(value=str(rnd.randrange(0, 4))),
}


def counts() -> dict[str, int]:
    return {"on_execute": 0, "after_execute": 0, "resolve": 0}


def compare_zoo(
    loop: asyncio.AbstractEventLoop,
    schemas: tuple[strawberry.Schema, strawberry.Schema],
    document: DocumentNode,
    variables: dict[str, Any],
) -> None:
    # Parsed from text, so that errors carry locations; valid by construction (see
    # test_variations_are_valid), so not validated again: that was most of the time.
    query = print_ast(document)
    PREPARED.clear()
    PREPARED[query] = (parse(query), [])
    answers = []
    for schema in schemas:
        context = counts()
        result = loop.run_until_complete(
            schema.execute(query, variable_values=variables, context_value=context)
        )
        answers.append(outcome(result, context))
    assert answers[0] == answers[1], f"{query}\nvariables: {variables}"


def zoo_documents() -> st.SearchStrategy[DocumentNode]:
    return from_schema(graphql_schema(ZOO), custom_scalars=ZOO_SCALARS, print_ast=lambda d: d)


def check_tally(tally: Tally, documents: int, short_path: bool) -> None:
    assert tally.cases >= documents * VARIANTS
    if short_path:
        assert tally.short_reads > tally.cases  # many objects per case, not a few
    else:
        assert tally.short_reads == 0  # resolver middleware: the short path steps aside
    print(f"{tally.cases} cases, {tally.short_reads} objects on the short path")


def test_zoo_without_hooks(loop: asyncio.AbstractEventLoop, short_reads: list[int]) -> None:
    """No resolver middleware: the short path takes what it can."""
    tally = Tally()

    @settings(DIFFERENTIAL, max_examples=ZOO_DOCUMENTS)
    @given(document=zoo_documents(), seed=st.integers(0, 2**32))
    def run(document: DocumentNode, seed: int) -> None:
        before = short_reads[0]
        for varied, variables in variations(document, seed, arguments=ZOO_ARGUMENTS):
            compare_zoo(loop, (ZOO, ZOO_PLAIN), varied, variables)
            tally.cases += 1
        tally.short_reads += short_reads[0] - before

    run()
    check_tally(tally, ZOO_DOCUMENTS, short_path=True)


def test_zoo_with_hooks_and_directive(
    loop: asyncio.AbstractEventLoop, short_reads: list[int]
) -> None:
    """`resolve` hooks and `@uppercase` (strawberry's directive handling) are resolver
    middleware: every field must go through them, as many times under both executors."""
    tally = Tally()

    @settings(DIFFERENTIAL, max_examples=HOOKED_DOCUMENTS)
    @given(document=zoo_documents(), seed=st.integers(0, 2**32))
    def run(document: DocumentNode, seed: int) -> None:
        before = short_reads[0]
        for varied, variables in variations(document, seed, True, ZOO_ARGUMENTS):
            compare_zoo(loop, (HOOKED, HOOKED_PLAIN), varied, variables)
            tally.cases += 1
        tally.short_reads += short_reads[0] - before

    run()
    check_tally(tally, HOOKED_DOCUMENTS, short_path=False)


# --- the feed -----------------------------------------------------------------------------


@dataclass
class Feed:
    schema: strawberry.Schema
    plain: strawberry.Schema
    services: Any
    tokens: tuple[str, ...]


@pytest.fixture(scope="module")
def feed(
    loop: asyncio.AbstractEventLoop, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Feed]:
    """The app's schema and services on SQLite, with two users and some posts; beside it,
    the same schema (extensions included) with strawberry's own executor."""
    folder = tmp_path_factory.mktemp("differential")
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{folder / 'feed.db'}",
        upload_dir=folder / "uploads",
        jwt_secret=TEST_SECRET,  # type: ignore[arg-type]
        gc_freeze=False,
        _env_file=None,  # type: ignore[call-arg]
    )
    client = app_client(settings)
    http = loop.run_until_complete(client.__aenter__())
    try:
        tokens = []
        for name in ("Ann", "Bob"):
            token, _ = loop.run_until_complete(user_with_token(http, name))
            tokens.append(token)
        for n in range(5):
            created = loop.run_until_complete(create_post(http, tokens[n % 2], f"Post {n}"))
            assert "errors" not in created, created
        schema = http.app.state.schema  # type: ignore[attr-defined]
        plain = QuietErrors(
            query=Query,
            mutation=Mutation,
            subscription=Subscription,
            extensions=schema.extensions,
            config=schema.config,
            execution_context_class=StrawberryGraphQLCoreExecutionContext,
        )
        yield Feed(schema, plain, http.app.state.services, tuple(tokens))  # type: ignore[attr-defined]
    finally:
        loop.run_until_complete(client.__aexit__(None, None, None))


FEED_ARGUMENTS: Arguments = {
    "page": lambda rnd: IntValueNode(value=str(rnd.randrange(0, 4))),
    "perPage": lambda rnd: IntValueNode(value=str(rnd.randrange(0, 6))),
    "first": lambda rnd: IntValueNode(value=str(rnd.randrange(0, 6))),
    "id": lambda rnd: StringValueNode(value=str(rnd.randrange(0, 8))),
    "after": lambda _rnd: NullValueNode(),
}
FEED_QUERIES = ["me", "user", "post", "posts", "feed"]


async def feed_outcome(feed: Feed, schema: strawberry.Schema, token: str, query: str,
                       variables: dict[str, Any]) -> str:  # fmt: skip
    context = await http_context(feed.services, f"Bearer {token}", "test")
    result = await schema.execute(query, variable_values=variables, context_value=context)
    return outcome(result, None)


FEED_DOCUMENT = from_schema(
    QuietErrors(query=Query, mutation=Mutation)._schema,
    fields=FEED_QUERIES,
    print_ast=lambda d: d,
)


def test_feed_schema(loop: asyncio.AbstractEventLoop, short_reads: list[int], feed: Feed) -> None:
    """The server's own schema, extensions and data, each case as one of two users."""
    tally = Tally()

    @settings(DIFFERENTIAL, max_examples=FEED_DOCUMENTS)
    @given(document=FEED_DOCUMENT, seed=st.integers(0, 2**32))
    def run(document: DocumentNode, seed: int) -> None:
        before = short_reads[0]
        for n, (varied, variables) in enumerate(variations(document, seed, False, FEED_ARGUMENTS)):
            token, query = feed.tokens[n % 2], print_ast(varied)
            ours = loop.run_until_complete(feed_outcome(feed, feed.schema, token, query, variables))
            theirs = loop.run_until_complete(
                feed_outcome(feed, feed.plain, token, query, variables)
            )
            assert ours == theirs, query
            tally.cases += 1
        tally.short_reads += short_reads[0] - before

    run()
    check_tally(tally, FEED_DOCUMENTS, short_path=True)


def test_variations_are_valid() -> None:
    """What tests/helpers/decorate.py makes of valid documents is valid: the differential tests
    rely on it instead of validating every case."""
    schema = graphql_schema(HOOKED)

    @settings(DIFFERENTIAL, max_examples=15)
    @given(document=zoo_documents(), seed=st.integers(0, 2**32))
    def run(document: DocumentNode, seed: int) -> None:
        for varied, _ in variations(document, seed, True, ZOO_ARGUMENTS):
            assert validate(schema, parse(print_ast(varied))) == [], print_ast(varied)

    run()


def test_a_coroutine_made_by_each_read_is_awaited_once_and_never_left(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """`MoodyPet.mood` makes a new coroutine on every read: the short path, which reads
    it first, must close its own, and the usual path awaits the one it reads."""
    query = "{ pets { name mood } firstPet { name } }"
    PREPARED.clear()
    PREPARED[query] = (parse(query), [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = loop.run_until_complete(ZOO.execute(query, context_value=counts()))
        gc.collect()
    assert result.errors is None
    assert result.data is not None
    assert [pet["mood"] for pet in result.data["pets"]] == [None, None, None, "moody"]
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []
