"""Execution results and errors as the JSON text that goes into a frame.

Every error passes through `engine.errors.classify` first, so a client sees the same codes
over the socket as over HTTP, and nothing unexpected leaks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from graphql import ExecutionResult, GraphQLError

from gql_feed.engine.errors import INTERNAL_MESSAGE, classify
from gql_feed.services.errors import FeedError

INTERNAL_ERROR_PAYLOAD = orjson.dumps(
    {
        "data": None,
        "errors": [{"message": INTERNAL_MESSAGE, "extensions": {"code": "INTERNAL_SERVER_ERROR"}}],
    }
).decode()


def result_payload(result: ExecutionResult, hide_suggestions: bool) -> str:
    """The `payload` of a next (or legacy data) message, encoded once."""
    return payload_text(result.data, result.errors, hide_suggestions)


def payload_text(
    data: dict[str, Any] | None, errors: Iterable[GraphQLError] | None, hide_suggestions: bool
) -> str:
    body: dict[str, Any] = {"data": data}
    if errors:
        body["errors"] = formatted_errors(errors, hide_suggestions)
    return orjson.dumps(body).decode()


def formatted_errors(
    errors: Iterable[GraphQLError], hide_suggestions: bool
) -> list[dict[str, Any]]:
    """`hide_suggestions` (production) drops "Did you mean …?" hints, as over HTTP."""
    return [dict(classify(error, hide_suggestions=hide_suggestions).formatted) for error in errors]


def feed_error(error: FeedError) -> GraphQLError:
    """A refusal of ours as a GraphQL error, carrying its code once classified."""
    return GraphQLError(error.message, original_error=error)


def json_text(value: object) -> str:
    return orjson.dumps(value).decode()
