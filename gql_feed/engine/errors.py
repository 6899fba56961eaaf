"""Every error a client sees carries an Apollo-style `extensions.code`; nothing else leaks.

Known refusals (`FeedError`) keep their message and code; GraphQL parse and validation
errors get GRAPHQL_PARSE_FAILED / GRAPHQL_VALIDATION_FAILED; anything unexpected is
replaced by a bare INTERNAL_SERVER_ERROR, so no stack trace or SQL reaches a client.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from graphql import GraphQLError

from gql_feed.compat.graphql_core import validation_aborted
from gql_feed.compat.strawberry import ErrorsExtension
from gql_feed.engine import tracing
from gql_feed.services.errors import BadUserInput, FeedError, TooManyAttempts

logger = logging.getLogger(__name__)

INTERNAL_MESSAGE = "Internal server error."

# graphql-core's `did_you_mean`: " Did you mean 'a', 'b', or 'c'?" (names never hold "?").
SUGGESTION = re.compile(r" Did you mean [^?]*\?")
# graphql-core's parser stops at the token limit with a "Syntax Error"; the query may be
# perfectly valid, only too long, so it is reported as the limit it is.
TOKEN_LIMIT = re.compile(r"Document contains more than (\d+) tokens")


def classify(error: GraphQLError, *, hide_suggestions: bool = False) -> GraphQLError:
    """The client-safe version of one error.

    `hide_suggestions` (production) drops "Did you mean …?" hints, which would otherwise
    spell out the schema that disabled introspection is meant to keep private.
    """
    original = error.original_error
    if isinstance(original, FeedError):
        extensions: dict[str, object] = {"code": original.code}
        if isinstance(original, BadUserInput):
            extensions["fields"] = original.fields
        if isinstance(original, TooManyAttempts):
            extensions["retryAfter"] = original.retry_after
        return _rebuild(error, original.message, extensions)
    if isinstance(original, GraphQLError) and original.original_error is None:
        # graphql-core wraps a variable's coercion error in one naming the variable: the
        # outer message is the complete one.
        original = None
    if original is None:
        message = SUGGESTION.sub("", error.message) if hide_suggestions else error.message
        code = (error.extensions or {}).get("code")
        if code:
            return error if message == error.message else _rebuild(error, message, error.extensions)
        if validation_aborted(error) and message == "Validation aborted.":
            message = "The query is too complex to validate; ask for fewer repeated fields."
            code = "GRAPHQL_VALIDATION_FAILED"
        elif limit := TOKEN_LIMIT.search(message):
            message = f"The query has more than {limit[1]} tokens, the most this server accepts."
            code = "GRAPHQL_VALIDATION_FAILED"
        elif message.startswith("Syntax Error"):
            code = "GRAPHQL_PARSE_FAILED"
        else:
            code = "GRAPHQL_VALIDATION_FAILED"
        return _rebuild(error, message, {"code": code})
    if isinstance(original, GraphQLError):
        return classify(original, hide_suggestions=hide_suggestions)
    logger.error("Unexpected error in %s", error.path, exc_info=original)
    return _rebuild(error, INTERNAL_MESSAGE, {"code": "INTERNAL_SERVER_ERROR"})


def classify_all(
    errors: Iterable[GraphQLError], *, hide_suggestions: bool = False
) -> list[GraphQLError]:
    return [classify(error, hide_suggestions=hide_suggestions) for error in errors]


def _rebuild(
    error: GraphQLError, message: str, extensions: dict[str, object] | None
) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class ErrorCodes(ErrorsExtension):
    """Strawberry's MaskErrors, but classifying instead of blanking every error."""

    def __init__(self, hide_suggestions: bool = False) -> None:
        super().__init__()
        self.hide_suggestions = hide_suggestions

    def process(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        tracing.current().raised(errors)  # the last place the exceptions themselves are seen
        return classify_all(errors, hide_suggestions=self.hide_suggestions)
