"""Every use of another library's private names or undocumented behaviour, in one place.

Each one is here because no public API does the job (yet). Each names the release it was
checked against, and tests/test_compat.py fails loudly when it changes (a name gone, a
signature changed, a behaviour no longer true), so that an upgrade breaks a test that says
why instead of the server. `make test-latest` runs those tests against the newest releases
the version ranges allow.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Final

import strawberry
from graphql import GraphQLSchema, ValidationContext
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext, ExecutionResult

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
    event-loop round trip per socket (api/live/connection.py). Were it to suspend every
    time, every frame would take the drain path: still correct, much slower. This holds
    for the default `websockets-sansio` implementation only: uvicorn's deprecated
    `websockets` one suspends even while the peer reads.
    Exceptions from the coroutine propagate.
    """
    try:
        return coro.send(None)
    except StopIteration:
        return SENT
