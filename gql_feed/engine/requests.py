"""The shape of one GraphQL request, as every transport receives it, checked once.

A WebSocket `subscribe` (or legacy `start`) payload, an SSE or multipart request's JSON
body or query string: each carries the same object. Its fields are checked here, and a
transport turns `MalformedRequest` into its own refusal (a 4400 close, a 400 response).
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class OperationPayload(TypedDict):
    """One operation: `query` may be left out when `extensions.persistedQuery` (APQ) or
    `documentId` (trusted documents) names the document instead (`engine.persisted`)."""

    query: NotRequired[str | None]
    documentId: NotRequired[str | None]
    operationName: NotRequired[str | None]
    variables: NotRequired[dict[str, Any] | None]
    extensions: NotRequired[dict[str, Any] | None]


class MalformedRequest(ValueError):
    """What is wrong with a request's shape, in words a client can act on."""


def operation_payload(payload: object, what: str = "payload") -> OperationPayload:
    """`payload` as an OperationPayload; MalformedRequest naming the first wrong field."""
    if not isinstance(payload, dict):
        raise MalformedRequest(f"{what} must be an object")
    for key in ("query", "documentId", "operationName"):
        value = payload.get(key)
        if value is not None and not isinstance(value, str):
            raise MalformedRequest(f"{key} must be a string or null")
    for key in ("variables", "extensions"):
        value = payload.get(key)
        if value is not None and not isinstance(value, dict):
            raise MalformedRequest(f"{key} must be an object or null")
    checked: OperationPayload = {
        "query": payload.get("query"),
        "documentId": payload.get("documentId"),
        "operationName": payload.get("operationName"),
        "variables": payload.get("variables"),
        "extensions": payload.get("extensions"),
    }
    return checked
