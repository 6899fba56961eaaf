"""Apollo Server's CSRF rule, in front of every operation sent over plain HTTP.

A request a browser could send cross-site without a preflight (no content type, or a
"simple" one such as multipart/form-data) must carry a non-empty one of the preflight
headers, which no cross-site form or <img> can set.
"""

from __future__ import annotations

from starlette.datastructures import Headers, QueryParams
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from gql_feed.transport.negotiation import media_type

PREFLIGHT_HEADERS = ("apollo-require-preflight", "x-apollo-operation-name")
SIMPLE_CONTENT_TYPES = ("text/plain", "multipart/form-data", "application/x-www-form-urlencoded")
# What makes a GET an operation rather than a visit to GraphiQL.
OPERATION_PARAMS = ("query", "extensions", "documentId")


class CsrfGuard:
    """Refuse operations that a cross-site page could send without a CORS preflight."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _needs_preflight_header(scope):
            response = JSONResponse(
                {
                    "errors": [
                        {
                            "message": "This operation has been blocked as a potential "
                            "Cross-Site Request Forgery (CSRF). Please either specify a "
                            "'content-type' header (with a type that is not one of "
                            f"{', '.join(SIMPLE_CONTENT_TYPES)}) or provide a non-empty "
                            f"value for one of the following headers: "
                            f"{', '.join(PREFLIGHT_HEADERS)}",
                            "extensions": {"code": "BAD_REQUEST"},
                        }
                    ]
                },
                status_code=400,
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _needs_preflight_header(scope: Scope) -> bool:
    """Apollo Server's `preventCsrf`, for every method: a parsable content type that is
    not simple, or a non-empty preflight header, shows a browser preflighted the request.
    Only a GET that names no operation passes without: it renders GraphiQL or fails."""
    headers = Headers(scope=scope)
    if any(headers.get(name) for name in PREFLIGHT_HEADERS):
        return False
    content_type = headers.get("content-type")
    if content_type is not None:
        essence = media_type(content_type)
        # Browsers cannot send an unparsable content type without a preflight either.
        if essence is None or essence not in SIMPLE_CONTENT_TYPES:
            return False
    if scope["method"] == "GET":
        params = QueryParams(scope.get("query_string", b""))
        return any(name in params for name in OPERATION_PARAMS)
    return True
