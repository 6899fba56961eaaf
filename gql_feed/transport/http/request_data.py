"""One operation of an HTTP request, as strawberry's view takes it, each member checked."""

from __future__ import annotations

from dataclasses import dataclass

from cross_web import HTTPException
from strawberry.http import GraphQLRequestData, GraphQLRequestProtocol


@dataclass
class FeedRequestData(GraphQLRequestData):
    """Strawberry's request data plus `documentId`, the trusted-document id some clients send."""

    document_id: str | None = None


def request_data_of(item: object, protocol: GraphQLRequestProtocol) -> FeedRequestData:
    """One operation of a request, each member checked for its JSON type."""
    if not isinstance(item, dict):
        raise HTTPException(400, "Each GraphQL operation must be a JSON object.")
    for key, kind, name in (
        ("query", str, "a string"),
        ("operationName", str, "a string"),
        ("documentId", str, "a string"),
        ("variables", dict, "an object"),
        ("extensions", dict, "an object"),
    ):
        value = item.get(key)
        if value is not None and not isinstance(value, kind):
            raise HTTPException(
                400, f"The GraphQL operation's `{key}` must be {name} or null, if provided."
            )
    return FeedRequestData(
        query=item.get("query"),
        variables=item.get("variables"),
        operation_name=item.get("operationName"),
        extensions=item.get("extensions"),
        protocol=protocol,
        document_id=item.get("documentId") or None,
    )
