"""Why an operation's document will not run: each refusal with Apollo's code and HTTP status.

Raised while resolving a document (sent in full, by APQ hash, or from a trusted manifest)
over any transport; `transport.refusal` turns one into an HTTP answer, the WebSocket into
an error message.
"""

from __future__ import annotations

from gql_feed.engine.parsing import TOO_LARGE_CODE, too_large_message
from gql_feed.services.errors import FeedError


class DocumentRefused(FeedError):
    """No document this server will run; `status_code` is the HTTP status Apollo uses."""

    status_code = 400


class PersistedQueryNotFound(DocumentRefused):
    """Unknown hash: Apollo's link resends the operation with its text on exactly this."""

    code = "PERSISTED_QUERY_NOT_FOUND"
    status_code = 200  # a retry signal, not a failure; Apollo Server answers 200 too

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotFound")


class PersistedQueryNotSupported(DocumentRefused):
    """APQ turned off: Apollo's link then stops sending hashes for the session."""

    code = "PERSISTED_QUERY_NOT_SUPPORTED"
    status_code = 200

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotSupported")


class QueryTooLarge(DocumentRefused):
    """More query text than GQL_FEED_MAX_QUERY_BYTES: refused before it is even lexed."""

    code = TOO_LARGE_CODE
    status_code = 413

    def __init__(self, max_bytes: int) -> None:
        super().__init__(too_large_message(max_bytes))


class DocumentNotAllowed(DocumentRefused):
    """Trusted-documents mode and the operation is not in the manifest."""

    code = "PERSISTED_QUERY_NOT_ALLOWED"
    status_code = 403


def missing_query() -> DocumentRefused:
    return DocumentRefused(
        "GraphQL operations must contain a non-empty `query` or a `persistedQuery` extension."
    )
