"""GraphQL over HTTP: strawberry's ASGI view with our context, JSON, documents and CSRF rules."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import strawberry
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData, GraphQLRequestProtocol
from strawberry.http.types import HTTPMethod
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult, SubscriptionExecutionResult
from strawberry.types.graphql import OperationType

from gql_feed.compat.strawberry import (
    BaseRequestProtocol,
    NeverStreams,
    check_batch,
    graphql_schema,
    mime_type,
)
from gql_feed.engine import admission, tracing
from gql_feed.engine.analysis import DocumentAnalysis, analysis, operation_kind
from gql_feed.engine.cost import cost_error
from gql_feed.engine.document_refusals import DocumentRefused
from gql_feed.engine.extensions import DocumentChecks
from gql_feed.engine.parsing import OFF_LOOP_CHARS, off_loop
from gql_feed.engine.persisted import PersistedDocuments
from gql_feed.engine.priority import WritesFirst, is_paced_write
from gql_feed.engine.requests import OFF_LOOP_JSON_BYTES
from gql_feed.engine.response_cache import ResponseCache
from gql_feed.engine.variables import declared_only
from gql_feed.observability.metrics import observe_operation
from gql_feed.runtime import heap
from gql_feed.schema.context import Context, Services
from gql_feed.transport.http.answers import finish, shaped
from gql_feed.transport.http.csrf import OPERATION_PARAMS
from gql_feed.transport.http.graphiql import graphiql_response
from gql_feed.transport.http.request_data import FeedRequestData, request_data_of
from gql_feed.transport.http.uploads import place_files
from gql_feed.transport.refusal import HttpRefusal

SUBSCRIPTION = OperationType.SUBSCRIPTION


class GraphQLView(NeverStreams, GraphQL[Context, None]):
    """Context per request: the services and whoever the bearer token names. Documents
    come in full, by APQ hash or by trusted-document id (`engine.persisted`). As in Apollo
    Server, a GET runs queries only (a mutation is a 405), subscriptions belong to the
    WebSocket, and every refusal is a GraphQL error body with an `extensions.code`."""

    def __init__(
        self,
        services: Services,
        documents: PersistedDocuments | None = None,
        checks: DocumentChecks | None = None,
        responses: ResponseCache | None = None,
        priority: WritesFirst | None = None,
        **options: Any,
    ) -> None:
        """`checks` should be the schema's own (`schema_extensions`), so that a batch is
        parsed once for its cost and for running it. `priority` paces queries while
        mutations run (`engine.priority`)."""
        super().__init__(**options)
        self.services = services
        self.priority = priority or WritesFirst(services.settings.reads_per_turn_while_writing)
        if not isinstance(self.schema, strawberry.Schema):
            raise TypeError("GraphQLView needs a strawberry.Schema to check documents")
        self.graphql_schema = graphql_schema(self.schema)
        self.responses = responses
        if documents is None:
            documents = PersistedDocuments.from_settings(services.settings, self.schema)
        self.documents = documents
        self.checks = checks or DocumentChecks.for_settings(services.settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self.answer_json(request)
            if response is None and _is_multipart(request):
                # Paced as a write only once its body is in and its document parsed and
                # authorized (`execute_single`): a trickled body holds nothing.
                response = await self.run(request)
            elif response is None:
                await self.priority.read()
                response = await self.run(request)
        except HTTPException as error:
            # Strawberry's own refusals (bad JSON, too many operations…) as GraphQL JSON.
            code = "NOT_FOUND" if error.status_code == 404 else "BAD_REQUEST"
            response = HttpRefusal(error.status_code, code, error.reason).response()
        except HttpRefusal as refusal:
            response = refusal.response()
        await finish(request, response)(scope, receive, send)

    async def answer_json(self, request: Request) -> Response | None:
        """The common request, one operation POSTed as JSON, answered without strawberry's
        general HTTP machinery and, for a query whose answer is kept, without executing
        or encoding anything. None for anything else (GET, multipart, a batch, a body that
        is not a JSON object): `run` answers those, reading the body
        this method already read."""
        if request.method != "POST":
            return None
        content_type = mime_type(request.headers.get("content-type", ""))
        if "application/json" not in content_type:
            return None
        try:
            data = await self.parse_json_body(await request.body())
        except HTTPException:
            return None  # not JSON: `run` answers it as strawberry does
        if not isinstance(data, dict):
            return None
        request_data = request_data_of(data, "http")
        with tracing.operation(request.scope, self.services.settings):
            context = await self.get_context(request, None)
            body = await self.answer(request, request_data, context)
        return Response(body, media_type="application/json")

    async def answer(
        self, request: Request, request_data: FeedRequestData, context: Context
    ) -> bytes:
        """The encoded answer to one operation: kept, or executed (and kept if it may be).

        Only a request whose token verified shares answers, so one that would fail for
        want of a login always executes and fails."""
        query = await self._resolve(request_data)
        document = await self._analysis(query)
        if document is not None:
            # Before anything walks them: the cache key, the NUL check, the cost.
            request_data.variables = declared_only(
                document.document, request_data.operation_name, request_data.variables
            )
            tracing.current().identify_analysed(document, request_data.operation_name)
        kind = operation_kind(document, request_data.operation_name)
        if is_paced_write(document, request_data.operation_name, context.claims):
            async with self.priority.write():
                result = await self._execute(query, request_data, context, "POST", kind)
                return orjson.dumps(await self.process_result(request, result))
        await self.priority.read()
        key = None
        if self.responses is not None and context.claims is not None and document is not None:
            key = self.responses.key(
                document,
                request_data.operation_name,
                request_data.variables,
                context.claims.user_id,
            )
        if key is None or self.responses is None:
            result = await self._execute(query, request_data, context, "POST", kind)
            return orjson.dumps(await self.process_result(request, result))
        cached = await self.responses.lookup(key)
        if cached is not None:
            return cached
        shared = await self.responses.join(key)
        if shared is not None:
            return shared
        flight = self.responses.take_off(key)
        answer = None
        try:
            result = await self._execute(query, request_data, context, "POST", kind)
            body = orjson.dumps(await self.process_result(request, result))
            if not result.errors and result.data is not None:
                answer = body
        finally:
            self.responses.land(key, flight, answer)
        return body

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        client = request.client.host if request.client else "unknown"
        return await admission.http_context(
            self.services, request.headers.get("authorization"), client
        )

    async def process_result(self, request: Request, result: ExecutionResult) -> Any:
        """Strawberry's, with no `data` entry when nothing executed (`http.answers`)."""
        return shaped(request, result, dict(await super().process_result(request, result)))

    def encode_json(self, data: object) -> str:
        return orjson.dumps(data).decode()

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)  # its JSONDecodeError is json's, which strawberry catches

    async def parse_json_body(self, body: bytes) -> object:
        """A body of megabytes takes tens of milliseconds to decode: not on the event loop."""
        if len(body) > OFF_LOOP_JSON_BYTES:
            return await off_loop(self._parse_big_json, body)
        return self.parse_json(body)

    def _parse_big_json(self, body: bytes) -> object:
        with heap.paused():  # see there: a third of the time, in one call that blocks all
            return self.parse_json(body)

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql_response()  # served from the package: no CDN needed

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # A hash-only GET (Apollo's useGETForHashedQueries) has no `query` either.
        params = request.query_params
        return super().should_render_graphql_ide(request) and not any(
            params.get(name) for name in OPERATION_PARAMS
        )

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """Strawberry's, checking every operation of a batch (not only a single one) and
        keeping `documentId`: a malformed body is a 400, never a crash."""
        content_type = mime_type(request.content_type or "")
        protocol: GraphQLRequestProtocol = "http"  # streams never reach the view
        data: object
        if request.method == "GET":
            data = self.parse_query_params(request.query_params)
        elif "application/json" in content_type:
            data = await self.parse_json_body(await request.get_body())
        elif self.multipart_uploads_enabled and content_type == "multipart/form-data":
            data = await self.parse_multipart(request)
        else:
            raise HTTPException(400, "Unsupported content type")
        if isinstance(data, list):
            check_batch(self, data, protocol)
            return [request_data_of(item, protocol) for item in data]
        return request_data_of(data, protocol)

    async def parse_multipart(self, request: AsyncHTTPRequestAdapter) -> Any:
        """Strawberry's, with every malformed piece a 400 (`transport.http.uploads`), and
        Starlette's own multipart refusals (more than 1,000 files or fields, a field over
        1 MB, a broken body) turned from plain text into the GraphQL JSON error body."""
        try:
            form = await request.get_form_data()
        except (StarletteHTTPException, MultiPartException) as error:
            detail = getattr(error, "detail", None) or getattr(error, "message", "")
            raise HTTPException(400, f"Unable to parse the multipart body: {detail}") from None
        except ValueError:
            raise HTTPException(400, "Unable to parse the multipart body.") from None
        operations = form.form.get("operations")
        files_map = form.form.get("map")
        if not isinstance(operations, str):
            raise HTTPException(400, "The multipart request needs an `operations` field.")
        if not isinstance(files_map, str):
            raise HTTPException(400, "The multipart request needs a `map` field.")
        return place_files(self.parse_json(operations), self.parse_json(files_map), form.files)

    async def execute_operation(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Response,
    ) -> ExecutionResult | list[ExecutionResult] | SubscriptionExecutionResult:
        if not isinstance(request_data, list):
            return await super().execute_operation(
                request, request_adapter, request_data, context, root_value, sub_response
            )

        # Every document first, so that the batch's cost is known before any of it runs.
        queries = [await self._resolve_or_refusal(data) for data in request_data]
        too_costly = await self._batch_cost_error(request_data, queries)
        if too_costly is not None:
            return [ExecutionResult(data=None, errors=[too_costly]) for _ in request_data]

        async def one(data: GraphQLRequestData, query: str | HttpRefusal) -> ExecutionResult:
            # In a batch a refusal answers that operation only, as Apollo Server does.
            with tracing.operation(request.scope, self.services.settings) as trace:
                try:
                    if isinstance(query, HttpRefusal):
                        raise query
                    kind = operation_kind(await self._analysis(query), data.operation_name)
                    return await self._execute(query, data, context, request_adapter.method, kind)
                except HttpRefusal as refusal:
                    trace.refuse(refusal)
                    return ExecutionResult(data=None, errors=[refusal.error()])

        return list(await asyncio.gather(*map(one, request_data, queries)))

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        with tracing.operation(request.scope, self.services.settings):
            query = await self._resolve(request_data)
            document = await self._analysis(query)
            kind = operation_kind(document, request_data.operation_name)
            if request_adapter.method == "POST" and is_paced_write(
                document, request_data.operation_name, context.claims
            ):
                async with self.priority.write():
                    return await self._execute(query, request_data, context, "POST", kind)
            method = request_adapter.method
            return await self._execute(query, request_data, context, method, kind)

    async def _resolve(self, request_data: GraphQLRequestData) -> str:
        """The document text to run: sent in full, by APQ hash or by trusted-document id."""
        document_id = (
            request_data.document_id if isinstance(request_data, FeedRequestData) else None
        )
        try:
            return await self.documents.resolve(
                request_data.query, request_data.extensions, document_id
            )
        except DocumentRefused as refusal:
            raise HttpRefusal.of(refusal) from None

    async def _analysis(self, query: str) -> DocumentAnalysis | None:
        """The document's facts, from the parse execution will use (None when it does not
        parse: execution says why)."""
        try:
            parsed = await self.checks.parser.parsed(query)
        except GraphQLError:
            return None
        return analysis(self.graphql_schema, parsed)

    async def _resolve_or_refusal(self, request_data: GraphQLRequestData) -> str | HttpRefusal:
        try:
            return await self._resolve(request_data)
        except HttpRefusal as refusal:
            return refusal

    async def _batch_cost_error(
        self, request_data: list[GraphQLRequestData], queries: list[str | HttpRefusal]
    ) -> GraphQLError | None:
        """The refusal of a batch whose operations together cost more than the maximum.
        Each operation is also held to the maximum alone when it runs (engine.extensions);
        one that does not parse costs nothing here, and fails on its own."""
        checks = self.checks
        total = 0
        for data, query in zip(request_data, queries, strict=True):
            if isinstance(query, HttpRefusal):
                continue
            try:
                document = await checks.parser.parse(query)
            except GraphQLError:
                continue
            variables = declared_only(document, data.operation_name, data.variables)
            args = (self.graphql_schema, document, data.operation_name, variables)
            total += (
                await off_loop(checks.cost.of, *args)
                if len(query) > OFF_LOOP_CHARS
                else (checks.cost.of(*args))
            )
        if total > checks.max_cost:
            return cost_error(total, checks.max_cost, batch=True)
        return None

    async def _execute(
        self,
        query: str,
        request_data: GraphQLRequestData,
        context: Context,
        method: HTTPMethod,
        kind: str,
    ) -> ExecutionResult:
        """Execute, counted in the operation metrics under `kind` (`operation_kind`)."""
        started = time.perf_counter()
        result = await self._execute_once(query, request_data, context, method)
        observe_operation(kind, result.errors, time.perf_counter() - started)
        return result

    async def _execute_once(
        self, query: str, request_data: GraphQLRequestData, context: Context, method: HTTPMethod
    ) -> ExecutionResult:
        try:
            return await self.schema.execute(
                query,
                root_value=None,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=OperationType.from_http(method) - {SUBSCRIPTION},
                operation_extensions=request_data.extensions,
            )
        except InvalidOperationTypeError as error:
            raise _wrong_transport(error.operation_type) from None
        except CannotGetOperationTypeError as error:
            raise HttpRefusal(400, "BAD_REQUEST", error.as_http_error_reason()) from None


def _is_multipart(request: Request) -> bool:
    content_type = mime_type(request.headers.get("content-type", ""))
    return content_type == "multipart/form-data"


def _wrong_transport(operation_type: OperationType) -> HttpRefusal:
    """Apollo Server's answer to a mutation over GET (which a link or a crawler could
    replay); a subscription needs the WebSocket or a streaming Accept header."""
    if operation_type is SUBSCRIPTION:
        return HttpRefusal(
            400,
            "BAD_REQUEST",
            "Subscriptions stream over the WebSocket at /graphql (graphql-transport-ws or "
            "graphql-ws), or over HTTP with 'Accept: text/event-stream' (Server-Sent Events) "
            "or 'Accept: multipart/mixed;subscriptionSpec=\"1.0\"', not as one JSON answer.",
        )
    return HttpRefusal(
        405,
        "BAD_REQUEST",
        f"Can only perform a {operation_type.value} operation from a POST request.",
        {"allow": "POST"},
    )
