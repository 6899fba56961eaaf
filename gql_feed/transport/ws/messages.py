"""Checks shared by both subprotocols' message validators.

Each raises CloseConnection(4400) naming what is wrong, so a broken client learns why.
"""

from __future__ import annotations

from typing import Any

from gql_feed.engine import requests
from gql_feed.engine.requests import OperationPayload
from gql_feed.live.close_codes import CloseCode, CloseConnection


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
    try:
        return requests.operation_payload(message.get("payload"), f"{message['type']} payload")
    except requests.MalformedRequest as error:
        raise bad(str(error)) from None
