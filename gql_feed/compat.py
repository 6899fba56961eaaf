"""Every use of another library's private names or undocumented behaviour, in one place.

Each one is here because no public API does the job (yet). Each names the release it was
checked against, and tests/test_compat.py fails loudly when it changes (a name gone, a
signature changed, a behaviour no longer true), so that an upgrade breaks a test that says
why instead of the server. `make test-latest` runs those tests against the newest releases
the version ranges allow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Final

import strawberry
from graphql import GraphQLField, GraphQLSchema, ValidationContext
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.field import StrawberryField

logger = logging.getLogger(__name__)

# --- strawberry-graphql (checked against 0.341.2) ---------------------------------------


def graphql_schema(schema: strawberry.Schema) -> GraphQLSchema:
    """The graphql-core schema strawberry built, for graphql-core's own functions.

    strawberry keeps it as `Schema._schema` and offers no public accessor.
    """
    return schema._schema


async def prepare_operation(
    schema: strawberry.Schema, context: ExecutionContext, runner: SchemaExtensionsRunner
) -> ExecutionResult | None:
    """strawberry's parse, operation-type check and validation, without executing.

    The live layer validates an operation once and executes it per event, so it needs
    strawberry's pre-execution steps (with every schema extension's hooks) on their own:
    `Schema._prepare_operation_async` is exactly that, and has no public counterpart.
    It returns the errors to answer with, or None (the document is then in
    `context.graphql_document`); it raises strawberry's `MissingQueryError`,
    `CannotGetOperationTypeError` and `InvalidOperationTypeError` as `execute` does.
    """
    return await schema._prepare_operation_async(context, runner)


def attribute_name(field: GraphQLField) -> str | None:
    """The attribute a field reads, when strawberry resolves it by reading an attribute
    and nothing else (no resolver function, no field extension, no permission class, no
    exception handler); None for every other field.

    strawberry builds such a field's resolver as `_get_basic_result`, marked
    `_is_default = True`, which returns `config.default_resolver(source, python_name)`
    and nothing else; with the default `getattr` that is an attribute read
    (engine/execution.py reads it directly).
    """
    definition = field.extensions.get("strawberry-definition")
    resolve = field.resolve
    if (
        not isinstance(definition, StrawberryField)
        or not definition.is_basic_field
        or getattr(resolve, "_is_default", False) is not True
        or getattr(resolve, "__name__", None) != "_get_basic_result"
        or definition.default_resolver is not getattr
    ):
        return None
    return definition.python_name


def field_metadata(field: GraphQLField) -> Mapping[Any, Any]:
    """The metadata a field was declared with (`strawberry.field(metadata=...)`); empty
    for a field strawberry did not build.

    strawberry keeps each field's definition in the graphql-core field's `extensions`,
    under `GraphQLCoreConverter.DEFINITION_BACKREF`; the field policies are read from
    there (schema/policies.py), with only the graphql-core schema at hand.
    """
    definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField):
        return {}
    return definition.metadata


# --- graphql-core (checked against 3.3.2) -----------------------------------------------


def hide_suggestions(context: ValidationContext) -> None:
    """Make every validation rule of this run leave out "Did you mean …?" suggestions.

    The rules read `context.hide_suggestions`, a read-only property over
    `_hide_suggestions`, which only `validate(..., hide_suggestions=True)` sets; strawberry
    calls `validate` without it. Rules are all constructed before the document is visited,
    so a rule that sets it in its constructor reaches all of them.
    """
    context._hide_suggestions = True


# --- uvicorn (checked against 0.54.0, ws="websockets-sansio") ----------------------------

SENT: Final = object()
"""What `start_send` returns when the frame was written without suspending."""


def start_send(coro: Coroutine[Any, Any, None]) -> object:
    """Run an ASGI `send` coroutine up to its first suspension: `SENT`, or what it yielded.

    What this relies on is undocumented: uvicorn's WebSocket `send` writes the frame into
    the transport and returns without suspending unless the transport is paused (the peer
    reads too slowly: `await self.writable.wait()` only waits while the event is clear).
    That is what makes fanning a frame out to thousands of sockets cost no task and no
    event-loop round trip per socket (live/connection.py). Were it to suspend every
    time, every frame would take the drain path: still correct, much slower. This holds
    for the default `websockets-sansio` implementation only: uvicorn's deprecated
    `websockets` one suspends even while the peer reads.
    Exceptions from the coroutine propagate.
    """
    try:
        return coro.send(None)
    except StopIteration:
        return SENT


_SANSIO_ATTRIBUTES = ("transport", "conn", "writable", "close_sent", "disconnected")


class DirectWriter:
    """Writes pre-built frames to the transport under one uvicorn WebSocket connection.

    What this relies on is undocumented: the ASGI `send` callable that uvicorn's
    `websockets-sansio` implementation hands the application is a bound method of its
    `WebSocketsSansIOProtocol`, whose `transport`, `conn` (websockets' sans-I/O
    `ServerProtocol`), `writable` (cleared while the transport is paused), `close_sent`
    and `disconnected` are read here. A frame written this way (live/frames.py) is
    exactly what `send` would write for `{"type": "websocket.send", "text": ...}` without
    per-message deflate: an unmasked text frame with FIN set. `reach` returns None
    whenever any of that does not hold: another implementation (`websockets`, `wsproto`),
    per-message deflate negotiated (its compressor keeps state from frame to frame), or
    a uvicorn whose protocol no longer looks like this.
    """

    __slots__ = ("_protocol",)

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol

    @classmethod
    def reach(cls, send: Callable[..., Any]) -> DirectWriter | None:
        """The writer under an accepted socket's ASGI `send`, or None (use `send`)."""
        protocol = getattr(send, "__self__", None)
        if protocol is None or not _is_sansio_protocol(protocol):
            return None
        if any(not hasattr(protocol, name) for name in _SANSIO_ATTRIBUTES):
            _warn_once("uvicorn's websockets-sansio protocol changed shape")
            return None
        if getattr(protocol.conn, "extensions", None):
            return None  # per-message deflate: frames depend on the connection's state
        return cls(protocol)

    def status(self) -> bool | None:
        """True: writable now. False: backed up (the caller falls back to `send`,
        which waits). None: closing or gone, nothing more can be written."""
        protocol = self._protocol
        if protocol.close_sent or protocol.disconnected or protocol.transport.is_closing():
            return None
        return bool(protocol.writable.is_set())

    def write(self, data: bytes) -> None:
        self._protocol.transport.write(data)


def _is_sansio_protocol(protocol: object) -> bool:
    try:
        from uvicorn.protocols.websockets.websockets_sansio_impl import (
            WebSocketsSansIOProtocol,
        )
    except ImportError:  # pragma: no cover - an uvicorn without it
        return False
    return isinstance(protocol, WebSocketsSansIOProtocol)


_warned = False


def _warn_once(what: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        logger.warning("%s: live frames go through the ordinary ASGI send", what)
