"""One SERVER span per GraphQL operation, whatever transport brought it.

Each transport wraps the handling of one operation, from its admission to its answer (for
a subscription: until it has joined its group, or was refused), in `operation(scope,
settings)`. The span follows the OpenTelemetry conventions for GraphQL servers: named
`query`, `mutation` or `subscription` (`GraphQL Operation` until the document says which;
the client-chosen operation name is added only when `trace_operation_name` asks, since it
makes names of unbounded variety), with `graphql.operation.type`, `graphql.operation.name`
and, when `trace_document` asks, `graphql.document` with every literal replaced
(`engine.sanitized`). An operation answered with errors ends with status ERROR and an
`error.type` (its first error's `extensions.code`); what a resolver raised unexpectedly
(answered as INTERNAL_SERVER_ERROR) is recorded as an exception event.

Its parent is the W3C trace context the request's headers carry (`traceparent`,
`tracestate`, baggage: the global propagator's), read from the HTTP request, or from a
WebSocket's upgrade request for every operation of that socket; with none, the operation
starts a trace. HTTP attributes come from the ASGI scope, which is already parsed.

With tracing off `operation` hands out one shared object whose methods do nothing: no span,
no attribute dict, no context switch is made per operation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any

from graphql import DocumentNode, GraphQLError, OperationDefinitionNode, OperationType
from opentelemetry import context, propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.util.types import AttributeValue

from gql_feed.config import Settings
from gql_feed.engine.analysis import DocumentAnalysis
from gql_feed.engine.sanitized import sanitized
from gql_feed.observability.tracing import TRACER, tracing_on
from gql_feed.services.errors import FeedError

UNKNOWN_NAME = "GraphQL Operation"


class Trace:
    """What an operation reports to its trace; this base reports nothing (UNTRACED, while
    tracing is off)."""

    __slots__ = ()

    def __enter__(self) -> Trace:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    def identify(self, kind: str, name: str | None, document: DocumentNode | None) -> None:
        """The operation's type, name and document, once they are known."""

    def identify_operation(
        self, kind: OperationType, definition: OperationDefinitionNode, document: DocumentNode
    ) -> None:
        """`identify`, from an operation the engine has analysed already."""

    def identify_analysed(self, document: DocumentAnalysis, name: str | None) -> None:
        """`identify`, from a document's analysis and the operation name a request gave
        (an answer taken from the response cache runs no extension that would say)."""

    def fail(self, errors: Sequence[GraphQLError]) -> None:
        """The operation was answered with these errors."""

    def raised(self, errors: Sequence[GraphQLError]) -> None:
        """These errors, before they are made fit for a client: what a resolver raised
        unexpectedly becomes an exception event (a refusal of ours is an outcome, not one)."""

    def refuse(self, error: BaseException) -> None:
        """The operation was refused before it ran (its transport answers the refusal)."""

    def end(self) -> None:
        """Done: a subscription ends its span here once established, not when it ends."""


UNTRACED = Trace()
_CURRENT: ContextVar[Trace] = ContextVar("gql_feed_operation", default=UNTRACED)


def current() -> Trace:
    """The operation being handled in this task (UNTRACED when none is traced): the
    schema's own steps report to it (`engine.executable`, `engine.phase_spans`)."""
    return _CURRENT.get()


def operation(scope: Mapping[str, Any], settings: Settings) -> Trace:
    """The trace of one operation that arrived by the request (or upgrade) `scope`;
    use it as a context manager around handling the operation."""
    if not tracing_on():
        return UNTRACED
    return OperationTrace(scope, settings)


class AsgiHeaders(Getter[Sequence[tuple[bytes, bytes]]]):
    """The propagators' view of ASGI's raw header pairs: each header they ask for
    (`traceparent`, `tracestate`, `baggage`) decoded alone, not every header of every
    request."""

    def get(self, carrier: Sequence[tuple[bytes, bytes]], key: str) -> list[str] | None:
        wanted = key.lower().encode("latin-1")
        found = [bytes(value).decode("latin-1") for name, value in carrier if name == wanted]
        return found or None

    def keys(self, carrier: Sequence[tuple[bytes, bytes]]) -> list[str]:
        return [bytes(name).decode("latin-1") for name, _ in carrier]


ASGI_HEADERS = AsgiHeaders()


class OperationTrace(Trace):
    """One operation's SERVER span, current (with its incoming context) while it is open."""

    __slots__ = ("_ended", "_parent", "_settings", "_tokens", "span")

    def __init__(self, scope: Mapping[str, Any], settings: Settings) -> None:
        raw_headers = scope.get("headers") or ()
        # Always the request's context (empty without a traceparent): the operation is a
        # SERVER span, never the child of whatever else is current in this task.
        parent = propagate.extract(raw_headers, getter=ASGI_HEADERS)
        self.span = TRACER.start_span(UNKNOWN_NAME, context=parent, kind=trace.SpanKind.SERVER)
        # Built only for a span that is sampled: at 1 % sampling, 99 operations in 100
        # would build them for nothing (the standard samplers do not read them).
        if self.span.is_recording():
            headers = {
                bytes(name).decode("latin-1"): bytes(value).decode("latin-1")
                for name, value in raw_headers
            }
            self.span.set_attributes(transport_attributes(scope, headers))
        self._settings = settings
        self._ended = False
        self._tokens: tuple[Token[Trace], object] | None = None
        self._parent = parent

    def __enter__(self) -> OperationTrace:
        attached = context.attach(trace.set_span_in_context(self.span, self._parent))
        self._tokens = (_CURRENT.set(self), attached)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is not None and not self._ended and isinstance(error, Exception):
            self.refuse(error)
        self.end()

    def identify(self, kind: str, name: str | None, document: DocumentNode | None) -> None:
        span = self.span
        if not span.is_recording():  # not sampled: nothing to print the document for
            return
        attributes: dict[str, AttributeValue] = {"graphql.operation.type": kind}
        if name:
            attributes["graphql.operation.name"] = name
        if document is not None and self._settings.trace_document:
            attributes["graphql.document"] = sanitized(document)
        span.set_attributes(attributes)
        with_name = name and self._settings.trace_operation_name
        span.update_name(f"{kind} {name}" if with_name else kind)

    def identify_operation(
        self, kind: OperationType, definition: OperationDefinitionNode, document: DocumentNode
    ) -> None:
        name = definition.name.value if definition.name is not None else None
        self.identify(kind.value, name, document)

    def identify_analysed(self, document: DocumentAnalysis, name: str | None) -> None:
        facts = document.operation(name)
        if facts is not None:
            self.identify_operation(facts.kind, facts.definition, document.document)

    def fail(self, errors: Sequence[GraphQLError]) -> None:
        if not errors:
            return
        error_type = error_type_of(errors[0])
        self.span.set_attribute("error.type", error_type)
        self.span.set_status(trace.StatusCode.ERROR, error_type)

    def raised(self, errors: Sequence[GraphQLError]) -> None:
        for error in errors:
            original = error.original_error
            if original is not None and not isinstance(original, GraphQLError | FeedError):
                self.span.record_exception(original)

    def refuse(self, error: BaseException) -> None:
        code = getattr(error, "code", None)
        if isinstance(code, str):
            error_type = code
        else:
            error_type = _qualified_name(type(error))
            self.span.record_exception(error)
        self.span.set_attribute("error.type", error_type)
        self.span.set_status(trace.StatusCode.ERROR, error_type)

    def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        self.span.end()
        if self._tokens is not None:
            current_token, attached = self._tokens
            self._tokens = None
            context.detach(attached)  # type: ignore[arg-type]  # attach's own token
            _CURRENT.reset(current_token)


def error_type_of(error: GraphQLError) -> str:
    """Low in variety, as `error.type` must be: the Apollo-style code when the error has
    one, else the class of what was raised."""
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code
    original = error.original_error
    if isinstance(original, FeedError):
        return original.code
    return _qualified_name(type(original if original is not None else error))


def transport_attributes(
    scope: Mapping[str, Any], headers: Mapping[str, str]
) -> dict[str, AttributeValue]:
    """The HTTP semantic conventions' request attributes, from what ASGI already parsed
    (a WebSocket's are its upgrade request's)."""
    attributes: dict[str, AttributeValue] = {
        "url.path": str(scope.get("path", "")),
        "url.scheme": str(scope.get("scheme", "http")),
    }
    if scope.get("type") == "http":
        attributes["http.request.method"] = str(scope.get("method", ""))
    host = headers.get("host")
    server = scope.get("server")
    if host:
        address, port = _host_and_port(host)
        attributes["server.address"] = address
        if port is not None:
            attributes["server.port"] = port
    elif server:
        attributes["server.address"] = str(server[0])
        if server[1] is not None:
            attributes["server.port"] = int(server[1])
    client = scope.get("client")
    if client:
        attributes["client.address"] = str(client[0])
    agent = headers.get("user-agent")
    if agent:
        attributes["user_agent.original"] = agent
    version = scope.get("http_version")
    if version:
        attributes["network.protocol.version"] = str(version)
    return attributes


def _host_and_port(host: str) -> tuple[str, int | None]:
    """A Host header's parts (`[::1]:8000` included); the port only when it is one."""
    address, colon, port = host.rpartition(":")
    if colon and port.isdigit() and (not address.startswith("[") or address.endswith("]")):
        return address, int(port)
    return host, None


def _qualified_name(kind: type[BaseException]) -> str:
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"
