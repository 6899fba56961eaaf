"""Stream or JSON: which answer an HTTP request to `/graphql` gets.

The Accept header decides (`http.negotiation`): a client that names a stream type
(`text/event-stream`, or `multipart/mixed` with Apollo's `subscriptionSpec="1.0"`) and
accepts no JSON type gets a stream; one that accepts a JSON type and no stream gets JSON.
A client that accepts both, as urql and graphql-sse's fetch do by default, gets a stream
for a subscription and JSON for a query or a mutation: the operation is read (the body is
buffered and handed on unchanged) to tell which. A wildcard never selects a stream.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from graphql import DocumentNode, GraphQLError, OperationType, get_operation_ast, parse
from starlette.datastructures import Headers, QueryParams
from starlette.types import Message, Receive, Scope

from gql_feed.engine.document_refusals import DocumentRefused
from gql_feed.engine.parsing import off_loop
from gql_feed.engine.persisted import PersistedDocuments
from gql_feed.engine.requests import OFF_LOOP_JSON_BYTES
from gql_feed.transport.negotiation import JSON, accepted, media_type

Parse = Callable[[str], Awaitable[DocumentNode]]


async def _plain_parse(text: str) -> DocumentNode:
    return parse(text, no_location=True)


class StreamChoice:
    """Picks the stream type for a request, or None for the JSON view."""

    def __init__(self, persisted: PersistedDocuments, parse: Parse | None = None) -> None:
        """`parse` should be the view's cached parser, so a document is parsed once."""
        self.persisted = persisted
        self.parse = parse or _plain_parse

    async def __call__(self, scope: Scope, receive: Receive) -> tuple[str | None, Receive]:
        """The stream media type (or None), and the `receive` to hand on with the request."""
        json, stream = accepted(Headers(scope=scope).get("accept"))
        if stream is None or json is None:
            return stream, receive
        messages: list[Message] = []
        payload: object = None
        if scope["method"] == "GET":
            params = QueryParams(scope.get("query_string", b""))
            payload = {name: params.get(name) for name in ("query", "operationName")}
            extensions = params.get("extensions")
            if extensions:
                payload["extensions"] = _loads(extensions.encode())
        elif _is_json(scope):
            body, messages = await _read(receive)
            # Decoded as the view decodes it: a large body not on the event loop.
            payload = (
                await off_loop(_loads, body) if len(body) > OFF_LOOP_JSON_BYTES else _loads(body)
            )
        replayed = _replaying(messages, receive) if messages else receive
        kind = await self._kind(payload)
        return (stream if kind is OperationType.SUBSCRIPTION else None), replayed

    async def _kind(self, payload: object) -> OperationType | None:
        """The operation's type; None when the request cannot say (the view explains why)."""
        if not isinstance(payload, dict):
            return None
        try:
            text = await self.persisted.resolve_payload(payload)
            document = await self.parse(text)
        except (DocumentRefused, GraphQLError):
            return None
        name = payload.get("operationName")
        operation = get_operation_ast(document, name if isinstance(name, str) else None)
        return operation.operation if operation is not None else None


def _is_json(scope: Scope) -> bool:
    return media_type(Headers(scope=scope).get("content-type", "")) == JSON


async def _read(receive: Receive) -> tuple[bytes, list[Message]]:
    """The whole body, and the messages that carried it (to be received again)."""
    messages: list[Message] = []
    body = bytearray()
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    return bytes(body), messages


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def again() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return again


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
