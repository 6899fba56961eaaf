"""The JSON answer's media type, status and shape, as GraphQL over HTTP says.

A *request error* (the document does not parse or validate, a variable does not coerce,
the request is refused before execution) leaves nothing executed: its answer has no `data`
entry at all. With `application/json` such an answer keeps the status the server has
always used (200 for GraphQL errors); with `application/graphql-response+json` the status
tells a request error apart: 400, or 401/403 when the refusal is about the login.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from strawberry.types import ExecutionResult

from gql_feed.transport.negotiation import GRAPHQL_RESPONSE_JSON, JSON, accepted

# Request errors whose status says more than 400 under application/graphql-response+json.
LOGIN_STATUSES = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403}


def answer_type(request: Request) -> str:
    """The JSON media type this request's answer uses (application/json when the client
    accepts neither: the spec lets a server answer with it rather than a 406)."""
    return accepted(request.headers.get("accept"))[0] or JSON


def is_request_error(result: ExecutionResult) -> bool:
    """Nothing executed: no data, and no error raised by a field (field errors have a path)."""
    return (
        result.data is None
        and bool(result.errors)
        and all(error.path is None for error in result.errors or ())
    )


def shaped(request: Request, result: ExecutionResult, body: dict[str, Any]) -> dict[str, Any]:
    """The processed result, without `data` for a request error; notes the kind on the
    request so that `finish` can pick the status."""
    state = request.state
    state.results = getattr(state, "results", 0) + 1
    if not is_request_error(result):
        return body
    body.pop("data", None)
    codes: list[str] = getattr(state, "request_error_codes", [])
    codes.append(_code(body))
    state.request_error_codes = codes
    return body


def finish(request: Request, response: Response) -> Response:
    """The view's JSON response with the negotiated media type, and under
    application/graphql-response+json the status of a request error."""
    if response.media_type != JSON or answer_type(request) != GRAPHQL_RESPONSE_JSON:
        return response
    response.headers["content-type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
    state = request.state
    codes: list[str] = getattr(state, "request_error_codes", [])
    if response.status_code == 200 and codes and len(codes) == getattr(state, "results", 0):
        statuses = {LOGIN_STATUSES.get(code, 400) for code in codes}
        response.status_code = statuses.pop() if len(statuses) == 1 else 400
    return response


def _code(body: dict[str, Any]) -> str:
    for error in body.get("errors") or ():
        extensions = error.get("extensions") if isinstance(error, dict) else None
        if isinstance(extensions, dict) and isinstance(extensions.get("code"), str):
            return str(extensions["code"])
    return "BAD_REQUEST"
