"""Every error a client sees carries an Apollo-style `extensions.code`; nothing else leaks.

Known refusals (`FeedError`) keep their message and code; GraphQL parse and validation
errors get GRAPHQL_PARSE_FAILED / GRAPHQL_VALIDATION_FAILED; anything unexpected is
replaced by a bare INTERNAL_SERVER_ERROR, so no stack trace or SQL reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from gql_feed.services.errors import BadUserInput, FeedError, TooManyAttempts

logger = logging.getLogger(__name__)

INTERNAL_MESSAGE = "Internal server error."


def classify(error: GraphQLError) -> GraphQLError:
    """The client-safe version of one error."""
    original = error.original_error
    if isinstance(original, FeedError):
        extensions: dict[str, object] = {"code": original.code}
        if isinstance(original, BadUserInput):
            extensions["fields"] = original.fields
        if isinstance(original, TooManyAttempts):
            extensions["retryAfter"] = original.retry_after
        return _rebuild(error, original.message, extensions)
    if original is None:
        code = (error.extensions or {}).get("code")
        if code:
            return error
        code = "GRAPHQL_PARSE_FAILED" if "Syntax Error" in error.message else None
        return _rebuild(error, error.message, {"code": code or "GRAPHQL_VALIDATION_FAILED"})
    if isinstance(original, GraphQLError) and not original.original_error:
        return classify(original)
    logger.error("Unexpected error in %s", error.path, exc_info=original)
    return _rebuild(error, INTERNAL_MESSAGE, {"code": "INTERNAL_SERVER_ERROR"})


def classify_all(errors: Iterable[GraphQLError]) -> list[GraphQLError]:
    return [classify(error) for error in errors]


def _rebuild(error: GraphQLError, message: str, extensions: dict[str, object]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class ErrorCodes(MaskErrors):
    """Strawberry's MaskErrors, but classifying instead of blanking every error."""

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return classify_all(errors)
