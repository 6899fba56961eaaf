"""Checks shared by both subprotocols' message validators.

Each raises CloseConnection(4400) naming what is wrong, so a broken client learns why.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from gql_feed.live.close_codes import CloseCode, CloseConnection


class OperationPayload(TypedDict):
    """The operation in a graphql-transport-ws `subscribe` or a legacy `start`.

    `query` may be left out when `extensions.persistedQuery` (APQ) or `documentId`
    (trusted documents) names the document instead: `api.persisted` resolves it.
    """

    query: NotRequired[str | None]
    documentId: NotRequired[str | None]
    operationName: NotRequired[str | None]
    variables: NotRequired[dict[str, Any] | None]
    extensions: NotRequired[dict[str, Any] | None]


def bad(reason: str) -> CloseConnection:
    return CloseConnection(CloseCode.BAD_REQUEST, f"Invalid message: {reason}")


def message_id(message: dict[str, Any]) -> str:
    value = message.get("id")
    if not isinstance(value, str) or not value:
        raise bad(f"{message['type']} needs a non-empty string id")
    return value


def optional_object(message: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = message.get(key)
    if value is not None and not isinstance(value, dict):
        raise bad(f"{message['type']} {key} must be an object or null")
    return value


def operation_payload(message: dict[str, Any]) -> OperationPayload:
    payload = message.get("payload")
    if not isinstance(payload, dict):
        raise bad(f"{message['type']} payload must be an object")
    for key in ("query", "documentId", "operationName"):
        value = payload.get(key)
        if value is not None and not isinstance(value, str):
            raise bad(f"{key} must be a string or null")
    for key in ("variables", "extensions"):
        value = payload.get(key)
        if value is not None and not isinstance(value, dict):
            raise bad(f"{key} must be an object or null")
    checked: OperationPayload = {
        "query": payload.get("query"),
        "documentId": payload.get("documentId"),
        "operationName": payload.get("operationName"),
        "variables": payload.get("variables"),
        "extensions": payload.get("extensions"),
    }
    return checked
