"""A request refused before anything executes, answered alike by every HTTP-borne transport.

The JSON view, the SSE and multipart streams and the single-connection requests all
answer a refusal the same way: an HTTP status and a GraphQL error body with an
`extensions.code`. The engine raises its own errors (`FeedError`, `DocumentRefused`);
`refusal_of` is the one place that maps them to a status.
"""

from __future__ import annotations

from graphql import GraphQLError
from starlette.responses import JSONResponse, Response

from gql_feed.engine.document_refusals import DocumentRefused
from gql_feed.services.errors import FeedError

NO_CACHE = {"cache-control": "private, no-cache, must-revalidate"}


class HttpRefusal(Exception):
    """Answered as a GraphQL error response with an HTTP status, before anything executes."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = {**NO_CACHE, **(headers or {})}

    @classmethod
    def of(cls, refusal: DocumentRefused) -> HttpRefusal:
        return cls(refusal.status_code, refusal.code, refusal.message)

    def error(self) -> GraphQLError:
        return GraphQLError(self.message, extensions={"code": self.code})

    def response(self) -> Response:
        body = {"errors": [{"message": self.message, "extensions": {"code": self.code}}]}
        return JSONResponse(body, self.status, headers=self.headers)


# What admitting a request may raise; each transport catches exactly these.
ADMISSION_ERRORS = (HttpRefusal, DocumentRefused, FeedError)


def refusal_of(error: HttpRefusal | DocumentRefused | FeedError) -> HttpRefusal:
    """The HTTP answer to an error raised while admitting a request."""
    if isinstance(error, HttpRefusal):
        return error
    if isinstance(error, DocumentRefused):
        return HttpRefusal.of(error)
    status = 401 if error.code == "UNAUTHENTICATED" else 400
    return HttpRefusal(status, error.code, error.message)
