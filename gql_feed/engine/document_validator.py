"""The checks an operation's text meets before it is trusted: the same as before it runs."""

from __future__ import annotations

from collections.abc import Sequence

import strawberry
from graphql import GraphQLError, GraphQLSchema, parse, specified_rules, validate
from graphql.validation import ASTValidationRule

from gql_feed.compat import graphql_schema
from gql_feed.config import Settings
from gql_feed.engine.extensions import validation_rules
from gql_feed.engine.parsing import is_too_large, too_large_message


class DocumentValidator:
    """The checks an operation meets before it runs: parse (token limit), schema rules and
    the query limits. Used before storing a hash (so nothing that cannot run is kept) and
    by `gql-feed check-manifest`."""

    def __init__(
        self,
        schema: GraphQLSchema,
        rules: Sequence[type[ASTValidationRule]],
        max_tokens: int | None,
        max_bytes: int | None = None,
    ) -> None:
        self.schema = schema
        self.rules = [*specified_rules, *rules]
        self.max_tokens = max_tokens
        self.max_bytes = max_bytes

    @classmethod
    def for_settings(cls, schema: strawberry.Schema, settings: Settings) -> DocumentValidator:
        return cls(
            graphql_schema(schema),
            validation_rules(settings),
            settings.max_query_tokens,
            settings.max_query_bytes,
        )

    def errors(self, text: str) -> list[GraphQLError]:
        if self.max_bytes is not None and is_too_large(text, self.max_bytes):
            return [GraphQLError(too_large_message(self.max_bytes))]
        try:
            document = parse(text, max_tokens=self.max_tokens)
        except GraphQLError as error:
            return [error]
        return validate(self.schema, document, self.rules)
