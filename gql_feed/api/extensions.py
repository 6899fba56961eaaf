"""Schema extensions: error codes, parse/validation caches and the query limits."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)

from gql_feed.api.errors import ErrorCodes
from gql_feed.config import Settings


ExtensionFactory = Callable[[], SchemaExtension]


def schema_extensions(settings: Settings) -> list[ExtensionFactory]:
    """Factories, not instances: strawberry makes fresh extensions for every operation."""
    extensions: list[ExtensionFactory] = [
        ErrorCodes,
        partial(MaxTokensLimiter, max_token_count=settings.max_query_tokens),
        partial(ParserCache, maxsize=1024),
        partial(QueryDepthLimiter, max_depth=settings.max_query_depth),
        partial(MaxAliasesLimiter, max_alias_count=settings.max_aliases),
        partial(ValidationCache, maxsize=1024),
    ]
    if settings.production:
        extensions.append(DisableIntrospection)
    return extensions
