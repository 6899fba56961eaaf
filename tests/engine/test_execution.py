"""The short path of execution (engine/execution.py) answers exactly what graphql-core does.

Each query runs twice on the same data and context: through the schema the server uses
(FeedExecutor) and through the same schema with strawberry's own executor. Data, errors,
error paths and the order of keys must be identical.
"""

from __future__ import annotations

import gc
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gql_feed.engine import execution
from gql_feed.engine.admission import http_context
from gql_feed.engine.executable import QuietErrors
from gql_feed.engine.execution import FeedExecutor
from gql_feed.schema.root import Mutation, Query, Subscription
from tests.helpers.asgi import create_post, user_with_token

PLAIN = QuietErrors(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    execution_context_class=StrawberryGraphQLCoreExecutionContext,
)

PAGE = """
query Page($page: Int!, $perPage: Int!, $withContent: Boolean!, $skipCreator: Boolean!) {
  posts(page: $page, perPage: $perPage) {
    __typename
    total: totalPosts
    page
    posts {
      ...Card
      content @include(if: $withContent)
      creator @skip(if: $skipCreator) { __typename id name email status createdAt }
    }
  }
}
fragment Card on Post { id title imageUrl createdAt ... on Post { updatedAt } }
"""
FEED = """
query($first: Int!) {
  feed(first: $first) {
    edges { cursor node { id by: creator { name } title } }
    pageInfo { hasNextPage endCursor }
  }
  me { id email }
}
"""
ONE = "query($id: ID!) { post(id: $id) { id title creator { id email } } }"


def plain_json(result: Any) -> str:
    """Data and errors as a client sees them, key order included."""
    errors = [
        {"message": e.message, "path": e.path, "code": (e.extensions or {}).get("code")}
        for e in result.errors or []
    ]
    return json.dumps({"data": result.data, "errors": errors})


async def both(
    client: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any]
) -> tuple[str, str]:
    services = client.app.state.services  # type: ignore[attr-defined]
    schema = client.app.state.schema  # type: ignore[attr-defined]
    results = []
    for each in (schema, PLAIN):
        context = await http_context(services, f"Bearer {token}", "test")
        results.append(
            plain_json(await each.execute(query, variable_values=variables, context_value=context))
        )
    return results[0], results[1]


async def test_feed_queries_answer_as_graphql_core_does(client: httpx.AsyncClient) -> None:
    schema = client.app.state.schema  # type: ignore[attr-defined]
    assert issubclass(schema.execution_context_class, FeedExecutor)
    ann, ann_id = await user_with_token(client, "Ann")
    bob, _ = await user_with_token(client, "Bob")
    for n, token in enumerate((ann, bob, ann)):
        body = await create_post(client, token, f"Post {n}")
        assert "errors" not in body, body

    # The same operations again and again: shapes are kept across executions, per choice
    # of the Boolean variables, so every combination must still come out right.
    for _ in range(2):
        for viewer in (ann, bob):
            for with_content in (True, False):
                for skip_creator in (False, True):
                    variables = {
                        "page": 1,
                        "perPage": 3,
                        "withContent": with_content,
                        "skipCreator": skip_creator,
                    }
                    ours, theirs = await both(client, viewer, PAGE, variables)
                    assert ours == theirs
                    posts = json.loads(ours)["data"]["posts"]["posts"]
                    assert ("content" in posts[0]) is with_content
                    assert ("creator" in posts[0]) is not skip_creator
                    if not skip_creator:
                        # Each viewer sees their own email only.
                        emails = {p["creator"]["id"]: p["creator"]["email"] for p in posts}
                        assert (emails[ann_id] is not None) is (viewer == ann)
            ours, theirs = await both(client, viewer, FEED, {"first": 2})
            assert ours == theirs
            assert json.loads(ours)["data"]["feed"]["pageInfo"]["hasNextPage"] is True
    for viewer in (ann, bob):
        for post_id in ("1", "2", "999"):
            ours, theirs = await both(client, viewer, ONE, {"id": post_id})
            assert ours == theirs


# A schema of its own for what the feed's data never does: nulls where the type forbids
# them, values a scalar refuses, exceptions, resolvers among attributes.


@strawberry.type
class Tag:
    label: str
    weight: int | None


@strawberry.type
class Item:
    name: str
    count: int
    when: datetime
    tags: list[Tag]
    maybe: list[str | None] | None

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()

    @strawberry.field
    async def later(self) -> str:
        return f"later {self.name}"


def item(name: Any, count: Any = 1, tags: Any = None, maybe: Any = None) -> Item:
    when = datetime(2026, 12, 1, tzinfo=UTC)
    return Item(name=name, count=count, when=when, tags=tags or [], maybe=maybe)


ITEMS: dict[str, list[Item]] = {
    "fine": [item("a", tags=[Tag(label="x", weight=None)], maybe=["p", None]), item("b")],
    "null name": [item("a"), item(None)],
    "null tag label": [item("a", tags=[Tag(label=None, weight=1)])],  # type: ignore[arg-type]
    "int too large": [item("a", count=2**40)],
    "int refused": [item("a", count="many")],
    "exception value": [item(ValueError("no name"))],
    "list refused": [item("a", tags="not a list")],
    "null in nullable list": [item("a", maybe=[None, "q"])],
}


@strawberry.type
class Root:
    @strawberry.field
    def items(self, case: str) -> list[Item]:
        return ITEMS[case]

    @strawberry.field
    def maybe_item(self, case: str) -> Item | None:
        return ITEMS[case][-1]


ITEMS_QUERY = """
query($case: String!) {
  items(case: $case) {
    shout name n: count when
    tags { label weight __typename }
    later
    maybe
  }
  maybeItem(case: $case) { name tags { label } }
}
"""


@pytest.mark.parametrize("case", list(ITEMS))
async def test_errors_and_nulls_come_out_as_graphql_core_reports_them(case: str) -> None:
    ours = strawberry.Schema(query=Root, execution_context_class=FeedExecutor)
    theirs = strawberry.Schema(query=Root)
    expected = plain_json(await theirs.execute(ITEMS_QUERY, variable_values={"case": case}))
    for _ in range(2):  # the second time with the operation's shapes already kept
        got = plain_json(await ours.execute(ITEMS_QUERY, variable_values={"case": case}))
        assert got == expected
    if case != "fine":
        assert json.loads(expected)["errors"] or "null" in case


def test_shapes_go_with_their_operation() -> None:
    """Shapes are kept by operation node id: when the document is freed, so are they,
    before the id could be reused by another document."""
    schema = strawberry.Schema(query=Root, execution_context_class=FeedExecutor)
    gc.collect()
    before = len(execution._SHAPES)
    for n in range(20):
        result = schema.execute_sync(f'{{ items(case: "fine") {{ name n{n}: count }} }}')
        assert result.errors is None
    del result
    gc.collect()
    assert len(execution._SHAPES) == before


async def test_the_feeds_posts_and_users_take_the_short_path(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Post and User implement Node, so strawberry gives them an `is_type_of`; the short
    path still completes them (strawberry's own check, on the value alone), and only the
    root and the page go through graphql-core's per-field steps."""
    token, _ = await user_with_token(client, "Ann")
    for n in range(3):
        assert "errors" not in await create_post(client, token, f"Post {n}")
    usual: list[str] = []
    core = FeedExecutor.core_object_fields

    def counted(self: FeedExecutor, parent_type: Any, *args: Any) -> Any:
        usual.append(parent_type.name)
        return core(self, parent_type, *args)

    monkeypatch.setattr(FeedExecutor, "core_object_fields", counted)
    services = client.app.state.services  # type: ignore[attr-defined]
    schema = client.app.state.schema  # type: ignore[attr-defined]
    context = await http_context(services, f"Bearer {token}", "test")
    result = await schema.execute(
        "{ posts(page: 1, perPage: 3) { posts { id title imageUrl creator { id name } } } }",
        context_value=context,
    )
    assert result.errors is None, result.errors
    assert len(result.data["posts"]["posts"]) == 3
    assert "Post" not in usual
    assert "User" not in usual
