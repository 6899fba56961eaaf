"""GraphQL over HTTP: strawberry's ASGI view with our context, JSON and CSRF rules."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from gql_feed.api.context import Context, Services

# Apollo Server's CSRF rule: a request a browser could send cross-site without a
# preflight (GET, or a "simple" content type such as multipart/form-data) must carry one
# of these headers, which no cross-site form can set.
PREFLIGHT_HEADERS = (b"apollo-require-preflight", b"x-apollo-operation-name")
SIMPLE_CONTENT_TYPES = ("text/plain", "multipart/form-data", "application/x-www-form-urlencoded")


class GraphQLView(GraphQL[Context, None]):
    """Context per request: the services and whoever the bearer token names."""

    def __init__(self, services: Services, **options: Any) -> None:
        super().__init__(**options)
        self.services = services

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        client = request.client.host if request.client else "unknown"
        return Context.from_authorization(
            self.services, request.headers.get("authorization"), client
        )

    def encode_json(self, data: object) -> str:
        return orjson.dumps(data).decode()


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
                            "Cross-Site Request Forgery (CSRF). Send an "
                            "'Apollo-Require-Preflight: true' header (or a JSON content type).",
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
    headers = dict(scope["headers"])
    if any(name in headers for name in PREFLIGHT_HEADERS):
        return False
    content_type = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip()
    if content_type and content_type.lower() not in SIMPLE_CONTENT_TYPES:
        return False
    if scope["method"] == "GET":
        # Opening GraphiQL in a browser is a plain navigation, not an operation.
        query_string: bytes = scope.get("query_string", b"")
        return any(key in query_string for key in (b"query=", b"extensions="))
    return bool(scope["method"] == "POST")
