"""Live events run the schema extensions' execution hooks, as HTTP operations do (live/hooks.py).

The app in process, its services and hub for real, with a schema that adds to the feed's
own an extension with `on_execute` and `resolve` hooks and a custom directive
(`@uppercase`, which strawberry runs as middleware). Two subscribers of one operation
share a group: each event runs the hooks once for the group, and the `resolve` hook once
per field, as many times as the same selection over HTTP.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import strawberry
from strawberry.directive import DirectiveLocation, DirectiveValue
from strawberry.extensions import SchemaExtension

from gql_feed.config import Settings
from gql_feed.engine.admission import http_context
from gql_feed.engine.executable import QuietErrors
from gql_feed.engine.execution import FeedExecutor
from gql_feed.engine.persisted import PersistedDocuments
from gql_feed.live.connection import Connection
from gql_feed.live.groups import Group, Subscriber
from gql_feed.live.hooks import acts_while_executing
from gql_feed.live.operations import Operations, Request
from gql_feed.schema.root import Mutation, Query, Subscription
from tests.helpers.asgi import app_client, create_post, user_with_token
from tests.helpers.server import TEST_SECRET

CALLS: Counter[str] = Counter()


class Counting(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        CALLS["on_execute"] += 1
        yield
        CALLS["after_execute"] += 1

    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        CALLS["resolve"] += 1
        return _next(root, info, *args, **kwargs)


@strawberry.directive(locations=[DirectiveLocation.FIELD], description="Upper-cases a string.")
def uppercase(value: DirectiveValue[str]) -> str:
    return value.upper()


# Six fields: six `resolve` calls for each event.
LIVE = "subscription { postEvents { id post { title @uppercase creator { name } } } }"
# Over HTTP, the post and the fields below it: five.
HTTP = 'query { post(id: "1") { id title @uppercase creator { name } } }'


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'feed.db'}",
        upload_dir=tmp_path / "uploads",
        jwt_secret=TEST_SECRET,  # type: ignore[arg-type]
        gc_freeze=False,
        _env_file=None,  # type: ignore[call-arg]
    )
    async with app_client(settings) as http:
        yield http, settings


async def test_each_event_runs_the_hooks_once_per_group(
    app: tuple[httpx.AsyncClient, Settings],
) -> None:
    http, settings = app
    state = http.app.state  # type: ignore[attr-defined]
    services = state.services
    schema = QuietErrors(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[*state.schema.extensions, Counting],
        directives=[uppercase],
        execution_context_class=FeedExecutor,
    )
    assert acts_while_executing(schema)
    assert not acts_while_executing(state.schema)  # the feed's own: events pay nothing
    operations = Operations(
        schema, services, settings, PersistedDocuments.from_settings(settings, schema)
    )
    services.hub.add_sink(operations.groups)
    token, _ = await user_with_token(http, "Ann")
    claims = (await http_context(services, f"Bearer {token}", "test")).claims
    assert claims is not None

    sent: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["text"])

    connection = Connection(send, 100, lambda: None)  # type: ignore[arg-type]
    request = Request(LIVE)
    operation = await operations.prepare(request)
    for n in (1, 2):

        def subscriber(group: Group, n: int = n) -> Subscriber:
            return Subscriber(str(n), f'{{"id":"{n}","payload":', connection, group)

        joined = operations.subscribe(operation, request, claims, subscriber)  # type: ignore[arg-type]
        assert not isinstance(joined, list), joined
    assert len(operations.groups) == 1

    CALLS.clear()
    for title in ("First", "Second"):
        assert "errors" not in await create_post(http, token, title)
    async with asyncio.timeout(10):
        while len(sent) < 4:
            await asyncio.sleep(0.01)
    titles = sorted(json.loads(frame)["payload"]["data"]["postEvents"]["post"]["title"]
                    for frame in sent)  # fmt: skip
    assert titles == ["FIRST", "FIRST", "SECOND", "SECOND"]
    # Once per event for the group, not per subscriber; every field through `resolve`.
    assert CALLS == {"on_execute": 2, "after_execute": 2, "resolve": 2 * 6}

    CALLS.clear()
    context = await http_context(services, f"Bearer {token}", "test")
    result = await schema.execute(HTTP, context_value=context)
    assert result.errors is None
    assert result.data is not None
    assert result.data["post"]["title"] == "FIRST"
    assert CALLS == {"on_execute": 1, "after_execute": 1, "resolve": 5}
