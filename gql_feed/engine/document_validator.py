"""The checks an operation's text meets before it is trusted: the same as before it runs."""

from __future__ import annotations

from collections.abc import Sequence

import strawberry
from graphql import DocumentNode, GraphQLError, GraphQLSchema, parse, specified_rules, validate
from graphql.validation import ASTValidationRule

from gql_feed.compat.strawberry import graphql_schema
from gql_feed.config import Settings
from gql_feed.engine.extensions import validation_rules
from gql_feed.engine.parsing import (
    OFF_LOOP_CHARS,
    DocumentParser,
    is_too_large,
    off_loop,
    too_large_message,
)
from gql_feed.engine.rules import ValidationTimeout, deadline, timeout_error


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
        max_seconds: float | None = None,
    ) -> None:
        self.schema = schema
        self.rules = [*specified_rules, *rules]
        self.max_tokens = max_tokens
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds

    @classmethod
    def for_settings(cls, schema: strawberry.Schema, settings: Settings) -> DocumentValidator:
        return cls(
            graphql_schema(schema),
            validation_rules(settings),
            settings.max_query_tokens,
            settings.max_query_bytes,
            settings.max_validation_seconds,
        )

    def errors(self, text: str) -> list[GraphQLError]:
        if self.max_bytes is not None and is_too_large(text, self.max_bytes):
            return [GraphQLError(too_large_message(self.max_bytes))]
        try:
            document = parse(text, max_tokens=self.max_tokens)
        except GraphQLError as error:
            return [error]
        return self._validate(document)

    def _validate(self, document: DocumentNode) -> list[GraphQLError]:
        """The schema's rules and the query limits, for at most `max_seconds`."""
        try:
            with deadline(self.max_seconds):
                return validate(self.schema, document, self.rules)
        except ValidationTimeout:
            return [timeout_error(self.max_seconds or 0.0)]

    async def check(self, text: str, parser: DocumentParser | None) -> list[GraphQLError]:
        """`errors`, parsed by `parser` (the schema's, so that a document registered by hash
        is parsed once, to register and to run it), and off the event loop but for small
        documents: parsing and validating thousands of tokens takes tens of milliseconds."""
        if parser is None:
            return await off_loop(self.errors, text)
        try:
            document = await parser.parse(text)
        except GraphQLError as error:
            return [error]
        if len(text) > OFF_LOOP_CHARS:
            return await off_loop(self._validate, document)
        return self._validate(document)
