"""gql_feed/compat/'s assumptions about other libraries, checked against the installed ones.

When one of these fails after an upgrade, the library changed something gql_feed relies on
without a public promise: adapt gql_feed/compat/ (and its "checked against" version), or
hold the dependency back in pyproject.toml. The last test keeps those uses in compat/.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import tokenize
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import strawberry
import uvicorn
import websockets
from cross_web import HTTPException
from graphql import (
    GraphQLError,
    GraphQLSchema,
    TypeInfo,
    ValidationContext,
    parse,
    specified_rules,
    validate,
)
from graphql.execution import Executor
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.schema.schema import validate_document
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL, MULTIPART_SUBSCRIPTION_PROTOCOL
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

import gql_feed
from gql_feed.compat import graphql_core
from gql_feed.compat import strawberry as compat
from gql_feed.compat import uvicorn as compat_uvicorn
from gql_feed.config import Settings
from gql_feed.engine.executable import build_schema
from gql_feed.engine.extensions import HideSuggestions
from tests.helpers.server import free_port


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
    runner = compat.extensions_runner(schema, context)
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


async def test_extensions_runner_binds_fresh_extensions_to_the_context() -> None:
    seen: list[object] = []

    class Watch(strawberry.extensions.SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            seen.append(self.execution_context)
            yield

    schema = build_schema([Watch])
    first = ExecutionContext("{ posts { totalPosts } }", schema, tuple(OperationType))
    second = ExecutionContext("{ posts { totalPosts } }", schema, tuple(OperationType))
    for context in (first, second):
        async with compat.extensions_runner(schema, context).operation():
            pass
    assert seen == [first, second]


@strawberry.input(one_of=True)
class Either:
    a: str | None = strawberry.UNSET
    b: str | None = strawberry.UNSET


@strawberry.type
class OneOfRoot:
    @strawberry.field
    def pick(self, value: Either) -> str:
        return "x"


def test_validate_with_strawberry_rules_adds_strawberrys_rules(schema: strawberry.Schema) -> None:
    parameters = list(inspect.signature(validate_document).parameters)
    assert parameters == ["schema", "document", "validation_rules"]
    core = compat.graphql_schema(schema)
    assert compat.validate_with_strawberry_rules(core, parse("{ posts { totalPosts } }"), []) == []
    errors = compat.validate_with_strawberry_rules(core, parse("{ postz }"), specified_rules)
    assert [error.message for error in errors] == [
        "Cannot query field 'postz' on type 'Query'. Did you mean 'post' or 'posts'?"
    ]

    one_of = compat.graphql_schema(strawberry.Schema(query=OneOfRoot))
    both = parse('{ pick(value: {a: "1", b: "2"}) }')
    assert validate(one_of, both, specified_rules) == []  # graphql-core alone lets it by
    refused = compat.validate_with_strawberry_rules(one_of, both, specified_rules)
    assert len(refused) == 1
    assert "exactly one" in refused[0].message.lower()


async def test_is_awaitable_tells_awaitables_from_values() -> None:
    async def later() -> int:
        return 1

    coroutine = later()
    assert compat.is_awaitable(coroutine)
    assert compat.is_awaitable(asyncio.get_running_loop().create_future())
    await coroutine
    for value in (
        None,
        1,
        "a",
        [1],
        {"a": 1},
        CompatFields(plain="a", renamed_field=1, guarded="b"),
    ):
        assert not compat.is_awaitable(value)


def test_strawberry_executes_with_the_execution_context_we_build_on() -> None:
    plain = strawberry.Schema(query=CompatRoot)
    assert plain.execution_context_class is compat.StrawberryExecutionContext
    assert issubclass(compat.StrawberryExecutionContext, Executor)


def test_executor_build_takes_these_parameters_by_name() -> None:
    parameters = inspect.signature(Executor.build).parameters
    for name in (
        "schema",
        "document",
        "root_value",
        "context_value",
        "raw_variable_values",
        "operation_name",
        "is_awaitable",
        "hide_suggestions",
    ):
        assert name in parameters
        assert parameters[name].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD


def test_build_executor_builds_the_schemas_executor_or_gives_the_errors(
    schema: strawberry.Schema,
) -> None:
    document = parse("subscription ($after: ID) { postEvents(after: $after) { id } }")
    built = compat.build_executor(
        schema,
        document,
        context="the context",
        variables={"after": "3"},
        operation_name=None,
        hide_suggestions=False,
    )
    assert isinstance(built, schema.execution_context_class)
    assert built.context_value == "the context"
    assert built.variable_values.coerced == {"after": "3"}
    assert built.is_awaitable is compat.is_awaitable

    refused = compat.build_executor(
        schema,
        document,
        context=None,
        variables={"after": {"not": "an id"}},
        operation_name=None,
        hide_suggestions=False,
    )
    assert isinstance(refused, list)
    assert "$after" in refused[0].message


async def test_errors_extension_processes_every_results_errors() -> None:
    processed: list[list[str]] = []

    class Upper(compat.ErrorsExtension):
        def process(self, errors: list[GraphQLError]) -> list[GraphQLError]:
            processed.append([error.message for error in errors])
            return [GraphQLError(error.message.upper(), path=error.path) for error in errors]

    @strawberry.type
    class Failing:
        @strawberry.field
        def boom(self) -> str:
            raise ValueError("boom")

    failing = strawberry.Schema(query=Failing, extensions=[Upper])
    result = await failing.execute("{ boom }")
    assert processed == [["boom"]]
    assert [error.message for error in result.errors or []] == ["BOOM"]
    result = await failing.execute("{ nope }")
    assert processed[-1] == ["Cannot query field 'nope' on type 'Failing'."]


@pytest.fixture(scope="module")
def view() -> GraphQL[Any, Any]:
    return GraphQL(
        strawberry.Schema(
            query=CompatRoot, config=StrawberryConfig(batching_config={"max_operations": 2})
        ),
        subscription_protocols=(MULTIPART_SUBSCRIPTION_PROTOCOL, GRAPHQL_SSE_PROTOCOL),
    )


def test_strawberrys_view_picks_streams_by_this_method(view: GraphQL[Any, Any]) -> None:
    """compat.strawberry.NeverStreams overrides this private method to answer no stream."""
    pick = view._get_stream_transport_from_headers
    assert pick({"accept": "application/json"}) is None
    transport = pick({"Accept": "text/event-stream"})
    assert transport is not None
    assert transport.protocol == "sse"

    class Plain(compat.NeverStreams, GraphQL[Any, Any]):
        pass

    plain = Plain(view.schema)
    assert plain._get_stream_transport_from_headers({"Accept": "text/event-stream"}) is None


def test_check_batch_refuses_as_strawberry_does(view: GraphQL[Any, Any]) -> None:
    two = [GraphQLRequestData("{ fields { plain } }", None, None, None)] * 2
    compat.check_batch(view, two, "http")
    with pytest.raises(HTTPException, match="Too many operations"):
        compat.check_batch(view, [*two, *two], "http")
    with pytest.raises(HTTPException, match="Batching is not supported for SSE"):
        compat.check_batch(view, two, "sse")
    with pytest.raises(HTTPException, match="Batching is not enabled"):
        compat.check_batch(GraphQL(strawberry.Schema(query=CompatRoot)), two, "http")


def test_mime_type_is_the_media_type_alone() -> None:
    assert compat.mime_type("application/json; charset=utf-8") == "application/json"
    assert compat.mime_type("multipart/form-data; boundary=x") == "multipart/form-data"
    assert compat.mime_type("") == ""


@pytest.mark.parametrize(
    ("method", "parameters", "is_async"),
    [
        ("parse_http_body", ["self", "request"], True),
        ("parse_multipart", ["self", "request"], True),
        (
            "execute_operation",
            [
                "self",
                "request",
                "request_adapter",
                "request_data",
                "context",
                "root_value",
                "sub_response",
            ],
            True,
        ),
        (
            "execute_single",
            [
                "self",
                "request",
                "request_adapter",
                "sub_response",
                "context",
                "root_value",
                "request_data",
            ],
            True,
        ),
        ("should_render_graphql_ide", ["self", "request"], False),
        ("parse_json", ["self", "data"], False),
        ("parse_query_params", ["self", "params"], False),
    ],
)
def test_the_http_view_methods_we_override_are_unchanged(
    method: str, parameters: list[str], is_async: bool
) -> None:
    """transport/http/view.py overrides or calls these undocumented view methods."""
    function = getattr(GraphQL, method)
    assert list(inspect.signature(function).parameters) == parameters
    assert inspect.iscoroutinefunction(function) is is_async


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
    graphql_core.hide_suggestions(context)
    assert context.hide_suggestions is True

    shown = validate(core, document, specified_rules)
    hidden = validate(core, document, [HideSuggestions, *specified_rules])
    assert "Did you mean" in shown[0].message
    assert [error.message for error in hidden] == ["Cannot query field 'postz' on type 'Query'."]


def test_validation_aborted_knows_graphql_cores_give_up(schema: strawberry.Schema) -> None:
    core = compat.graphql_schema(schema)
    many = parse("{ " + " ".join(f"nope{number}" for number in range(120)) + " }")
    errors = validate(core, many, specified_rules)
    assert graphql_core.validation_aborted(errors[-1])
    assert "Validation aborted" in errors[-1].message
    assert not any(graphql_core.validation_aborted(error) for error in errors[:-1])


def test_graphql_cores_private_executor_steps_are_unchanged() -> None:
    assert list(inspect.signature(Executor.execute_fields).parameters) == [
        "self",
        "parent_type",
        "source_value",
        "path",
        "grouped_field_set",
        "position_context",
    ]
    assert list(inspect.signature(Executor.collect_subfields).parameters) == [
        "self",
        "return_type",
        "field_details_list",
    ]
    assert graphql_core.FieldsExecutor.core_object_fields is Executor.execute_fields
    assert graphql_core.FieldsExecutor.subfields is Executor.collect_subfields
    assert set(graphql_core.CollectedFields._fields) >= {"grouped_field_set", "new_defer_usages"}


async def test_fields_executor_hands_every_object_to_object_fields() -> None:
    seen: list[tuple[str, tuple[str, ...]]] = []
    collected: list[graphql_core.CollectedFields] = []

    class Watching(graphql_core.FieldsExecutor):
        def object_fields(
            self,
            parent_type: Any,
            source_value: Any,
            path: Any,
            grouped_field_set: graphql_core.GroupedFieldSet,
            position_context: Any,
        ) -> Any:
            seen.append((parent_type.name, tuple(grouped_field_set)))
            fields_type = self.schema.type_map["CompatFields"]
            if parent_type.name == "CompatRoot":
                details = grouped_field_set["fields"]
                collected.append(self.subfields(fields_type, details))
            return self.core_object_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )

    assert Watching.execute_fields is Watching.__dict__["object_fields"]
    watched = strawberry.Schema(query=CompatRoot, execution_context_class=Watching)
    result = await watched.execute("{ fields { plain other } }")
    assert result.errors is None
    assert result.data == {"fields": {"plain": "a", "other": 1}}
    assert seen == [("CompatRoot", ("fields",)), ("CompatFields", ("plain", "other"))]
    assert list(collected[0].grouped_field_set) == ["plain", "other"]
    assert collected[0].new_defer_usages == []


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
            if compat_uvicorn.start_send(coro) is compat_uvicorn.SENT:  # type: ignore[arg-type]
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


class SeesTheSignalHandler:
    """An app that records, during its lifespan startup, the SIGTERM handler in place."""

    def __init__(self) -> None:
        self.handler: object = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        await receive()  # lifespan.startup
        self.handler = compat_uvicorn.server_sigterm_handler()
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})


async def test_uvicorn_installs_its_sigterm_handler_before_the_lifespan_starts() -> None:
    """runtime/shutdown.py wraps that handler to close live sockets first."""
    assert compat_uvicorn.server_sigterm_handler() is None
    app = SeesTheSignalHandler()
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    assert server.started, "uvicorn did not start"
    server.should_exit = True
    await asyncio.wait_for(task, 10)
    assert app.handler == server.handle_exit
    assert compat_uvicorn.server_sigterm_handler() is None  # uvicorn put the old one back


# --- Private names stay in compat/ -------------------------------------------------------

# What gql_feed/compat/ wraps: names private to another library (or from modules it does
# not export), and reads of what another library installed. Matched in code only, not in
# comments or docstrings.
PRIVATE_USES = {
    r"\._schema\b": "strawberry's Schema._schema",
    r"\b_prepare_operation_async\b": "strawberry's Schema._prepare_operation_async",
    r"\b_get_stream_transport_from_headers\b": "strawberry's BaseView",
    r"\b_validate_batch_request\b": "strawberry's BaseView",
    r"\b_process_errors\b": "strawberry's MaskErrors",
    r"\b_get_basic_result\b|\b_is_default\b": "strawberry's attribute fields",
    r"\bvalidate_document\b": "strawberry.schema.schema",
    r"\bStrawberryGraphQLCoreExecutionContext\b": "strawberry.schema.schema",
    r"\boptimized_is_awaitable\b": "strawberry.execution.is_awaitable",
    r"\bget_extensions\b|\bcreate_extensions_runner\b": "strawberry's extension setup",
    r"\bparse_content_type\b": "strawberry.http.parse_content_type",
    r"\bstrawberry\.(schema\.schema|execution|http\.base|http\.parse_content_type)\b": "a private module",
    r"\bstrawberry\.(extensions\.runner|types\.field)\b": "a private module",
    r"\b_hide_suggestions\b": "graphql-core's ValidationContext",
    r"\bexecute_fields\b|\bcollect_subfields\b": "graphql-core's private executor steps",
    r"\.build\(": "graphql-core's Executor.build (positional)",
    r"\bValidationAbortedError\b": "graphql.validation.validate",
    r"\bgraphql\.(execution\.collect_fields|validation\.validate)\b": "a private module",
    r"\bwebsockets_sansio_impl\b": "uvicorn's WebSocket protocol",
    r"\bhttptools_impl\b": "uvicorn's HTTP protocol",
    r"\bsignal\.getsignal\b": "uvicorn's installed SIGTERM handler",
}


def code_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Each line's code, without its comments and string literals."""
    kept: dict[int, list[str]] = {}
    with path.open("rb") as source:
        for token in tokenize.tokenize(source.readline):
            if token.type in (tokenize.COMMENT, tokenize.STRING, tokenize.ENCODING):
                continue
            kept.setdefault(token.start[0], []).append(token.string)
    for number, parts in sorted(kept.items()):
        yield number, " ".join(parts).replace(" . ", ".").replace(" (", "(")


def private_uses(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        if "compat" in path.relative_to(root).parts[:1]:
            continue
        for number, line in code_lines(path):
            for pattern, what in PRIVATE_USES.items():
                if re.search(pattern, line):
                    found.append(f"{path}:{number}: {what}: {line.strip()}")
    return found


def test_private_uses_are_in_compat_only() -> None:
    root = Path(gql_feed.__file__).parent
    assert private_uses(root) == []


def test_the_private_use_scan_finds_them(tmp_path: Path) -> None:
    """The scan above finds what it looks for (and only in code)."""
    package = tmp_path / "package"
    (package / "compat").mkdir(parents=True)
    (package / "compat" / "ok.py").write_text("x = schema._schema\n")
    (package / "engine.py").write_text(
        '"""Mentions execute_fields in a docstring."""\n'
        "from strawberry.schema.schema import validate_document  # and a comment: _schema\n"
        "class E(Base):\n"
        "    def execute_fields(self): return super().execute_fields()\n"
        "built = cls.execution_context_class.build(schema)\n"
    )
    found = private_uses(package)
    assert [line.split(": ")[1] for line in found] == [
        "strawberry.schema.schema",
        "a private module",
        "graphql-core's private executor steps",
        "graphql-core's Executor.build (positional)",
    ]


def test_uvicorn_http_protocol_hooks() -> None:
    """transport/http/protocol.py overrides these; each must still be uvicorn's to override."""
    for hook in compat_uvicorn.HTTP_PROTOCOL_HOOKS:
        assert callable(getattr(compat_uvicorn.HttpToolsProtocol, hook, None)), hook
