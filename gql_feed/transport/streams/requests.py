"""What a streaming request carries: its operation (a GET's query string or a JSON POST
body, checked and bounded), the `Last-Event-ID` it resumes from, and the resume cookie
a ticket's stream sets."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.requests import Request as HttpRequest

from gql_feed.engine.requests import MalformedRequest, OperationPayload, operation_payload
from gql_feed.live.operations import resume_point
from gql_feed.services.errors import BadUserInput
from gql_feed.transport.refusal import HttpRefusal

NOT_JSON = "Send the operation as JSON (content-type: application/json)."
OPERATION_PARAMS = ("query", "operationName", "documentId")
JSON_PARAMS = ("variables", "extensions")


async def read_operation(request: HttpRequest, limit: int) -> OperationPayload:
    """The operation a GET's query string or a JSON POST body carries, checked.

    Raises HttpRefusal (400, 413, 415) saying what is wrong.
    """
    data: dict[str, Any]
    if request.method == "GET":
        params = request.query_params
        if len(request.scope.get("query_string", b"")) > limit:
            raise _too_big(limit)
        data = {name: params.get(name) for name in OPERATION_PARAMS}
        for name in JSON_PARAMS:
            raw = params.get(name)
            data[name] = _json(raw, name) if raw else None
    else:
        content_type = request.headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            raise HttpRefusal(415, "BAD_REQUEST", NOT_JSON)
        body = await _read_body(request, limit)
        parsed = _json(body, "body")
        if not isinstance(parsed, dict):
            raise HttpRefusal(400, "BAD_REQUEST", "The body must be one operation (an object).")
        data = parsed
    try:
        return operation_payload(data, "request payload")
    except MalformedRequest as bad:
        raise HttpRefusal(400, "BAD_REQUEST", str(bad)) from None


def last_event_id(headers: Headers) -> int | None:
    raw = headers.get("last-event-id")
    if raw is None or not raw.strip():
        return None
    try:
        return resume_point(raw.strip())
    except BadUserInput:
        raise HttpRefusal(
            400, "BAD_USER_INPUT", "Last-Event-ID must be an event id from a PostEvent."
        ) from None


def _json(raw: str | bytes, name: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise HttpRefusal(400, "BAD_REQUEST", f"The {name} is not valid JSON.") from None


def _too_big(limit: int) -> HttpRefusal:
    return HttpRefusal(413, "PAYLOAD_TOO_LARGE", f"The operation is larger than {limit} bytes.")


async def _read_body(request: HttpRequest, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_big(limit)
    return bytes(body)


def cookie_header(request: HttpRequest, name: str, value: str, age: int) -> bytes:
    """The resume cookie: this path only, never sent cross-site, unreadable by scripts."""
    scope = request.scope
    path = scope.get("root_path", "") + scope["path"]
    secure = "; Secure" if request.url.scheme == "https" else ""
    return (
        f"{name}={value}; Max-Age={age}; Path={path}; HttpOnly; SameSite=Strict{secure}"
    ).encode("latin-1")
