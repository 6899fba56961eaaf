"""gql_feed/compat.py's assumptions about other libraries, checked against the installed ones.

When one of these fails after an upgrade, the library changed something gql_feed relies on
without a public promise: adapt compat.py (and its "checked against" version), or hold the
dependency back in pyproject.toml.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import strawberry
import uvicorn
import websockets
from graphql import GraphQLSchema, TypeInfo, ValidationContext, parse, specified_rules, validate
from starlette.types import Receive, Scope, Send
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from gql_feed import compat
from gql_feed.config import Settings
from gql_feed.engine.executable import build_schema
from gql_feed.engine.extensions import HideSuggestions
from tests.server import free_port


@pytest.fixture(scope="module")
def schema() -> strawberry.Schema:
    return build_schema([])


# --- strawberry -------------------------------------------------------------------------


def test_graphql_schema_is_the_one_strawberry_executes(schema: strawberry.Schema) -> None:
    core = compat.graphql_schema(schema)
    assert isinstance(core, GraphQLSchema)
    assert core.query_type is not None
    assert "posts" in core.query_type.fields
    assert core.subscription_type is not None
    assert "postEvents" in core.subscription_type.fields


def test_prepare_operation_signature_is_unchanged() -> None:
    parameters = list(inspect.signature(strawberry.Schema._prepare_operation_async).parameters)
    assert parameters == ["self", "context", "extensions_runner"]
    assert inspect.iscoroutinefunction(strawberry.Schema._prepare_operation_async)


async def prepared(
    schema: strawberry.Schema, query: str, allowed: tuple[OperationType, ...] = tuple(OperationType)
) -> tuple[ExecutionContext, Any]:
    context = ExecutionContext(query=query, schema=schema, allowed_operations=allowed)
    extensions = schema.get_extensions()
    runner = schema.create_extensions_runner(context, extensions)
    async with runner.operation():
        failure = await compat.prepare_operation(schema, context, runner)
    return context, failure


async def test_prepare_operation_parses_and_validates(schema: strawberry.Schema) -> None:
    context, failure = await prepared(schema, "subscription { postEvents { id action } }")
    assert failure is None
    assert context.graphql_document is not None
    assert context.operation_type is OperationType.SUBSCRIPTION

    _, failure = await prepared(schema, "{ posts { nope } }")
    assert failure is not None
    assert [error.message for error in failure.errors] == [
        "Cannot query field 'nope' on type 'PostPage'."
    ]

    _, failure = await prepared(schema, "{ posts ")
    assert failure is not None
    assert "Syntax Error" in failure.errors[0].message


async def test_prepare_operation_refuses_operation_types_not_allowed(
    schema: strawberry.Schema,
) -> None:
    with pytest.raises(InvalidOperationTypeError):
        await prepared(schema, "mutation { deletePost(id: 1) }", (OperationType.QUERY,))


async def test_prepare_operation_runs_the_extensions_hooks() -> None:
    seen: list[str] = []

    class Watch(strawberry.extensions.SchemaExtension):
        def on_parse(self) -> Iterator[None]:
            seen.append("parse")
            yield

        def on_validate(self) -> Iterator[None]:
            seen.append("validate")
            yield

    _, failure = await prepared(build_schema([Watch]), "{ posts { totalPosts } }")
    assert failure is None
    assert seen == ["parse", "validate"]


# --- graphql-core -----------------------------------------------------------------------


class CompatAllowed(strawberry.BasePermission):
    message = "no"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return True


@strawberry.type
class CompatFields:
    plain: str
    renamed_field: int = strawberry.field(name="other")
    guarded: str = strawberry.field(permission_classes=[CompatAllowed])

    @strawberry.field
    def computed(self) -> str:
        return self.plain


@strawberry.type
class CompatRoot:
    @strawberry.field
    def fields(self) -> CompatFields:
        return CompatFields(plain="a", renamed_field=1, guarded="b")


def test_attribute_name_knows_strawberrys_attribute_reads() -> None:
    """strawberry still builds a field with no resolver, extension or permission as a
    plain attribute read, and marks it so; every other field is left to it."""
    fields = (
        compat.graphql_schema(strawberry.Schema(query=CompatRoot)).type_map["CompatFields"].fields
    )  # type: ignore[attr-defined]
    assert compat.attribute_name(fields["plain"]) == "plain"
    assert compat.attribute_name(fields["other"]) == "renamed_field"
    assert compat.attribute_name(fields["guarded"]) is None
    assert compat.attribute_name(fields["computed"]) is None
    # And the read is what strawberry's own resolver returns.
    source = CompatFields(plain="a", renamed_field=7, guarded="b")
    assert fields["other"].resolve(source, None) == source.renamed_field == 7


def test_hide_suggestions_reaches_the_rules(schema: strawberry.Schema) -> None:
    core = compat.graphql_schema(schema)
    document = parse("{ postz { totalPosts } }")
    context = ValidationContext(core, document, TypeInfo(core), lambda error: None)
    assert context.hide_suggestions is False
    compat.hide_suggestions(context)
    assert context.hide_suggestions is True

    shown = validate(core, document, specified_rules)
    hidden = validate(core, document, [HideSuggestions, *specified_rules])
    assert "Did you mean" in shown[0].message
    assert [error.message for error in hidden] == ["Cannot query field 'postz' on type 'Query'."]


# --- uvicorn ----------------------------------------------------------------------------


# What `gql-feed serve` runs by default (GQL_FEED_WS_IMPLEMENTATION).
WS = Settings.model_fields["ws_implementation"].default


class EagerSends:
    """A WebSocket app that writes `frames` frames with `start_send`, counting the eager ones."""

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self.eager = 0
        self.suspended = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        assert scope["type"] == "websocket"
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        for number in range(self.frames):
            coro = send({"type": "websocket.send", "text": f"frame {number}"})
            if compat.start_send(coro) is compat.SENT:  # type: ignore[arg-type]
                self.eager += 1
            else:
                self.suspended += 1
                coro.close()  # type: ignore[attr-defined]
                break
        await send({"type": "websocket.close", "code": 1000})


@pytest.fixture
async def uvicorn_server() -> AsyncIterator[tuple[str, EagerSends]]:
    app = EagerSends(frames=200)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, ws=WS, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"ws://127.0.0.1:{port}/", app
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_uvicorn_sends_to_a_reading_peer_without_suspending(
    uvicorn_server: tuple[str, EagerSends],
) -> None:
    """The fan-out's fast path: were this to fail, every frame would need a task."""
    url, app = uvicorn_server
    async with websockets.connect(url) as socket:
        received = [message async for message in socket]
    assert app.suspended == 0
    assert app.eager == app.frames
    assert received == [f"frame {number}" for number in range(app.frames)]
