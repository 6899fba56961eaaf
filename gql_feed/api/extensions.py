"""Schema extensions: error codes, parse/validation caches and the query limits.

The limit rules are built once per schema, not once per operation: ValidationCache keys
its entries on the rule classes, and strawberry's limiters make a new class each time they
are constructed, which would make every lookup a miss.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from graphql import (
    ASTValidationRule,
    GraphQLError,
    StringValueNode,
    ValidationContext,
    ValidationRule,
    Visitor,
    visit,
)
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)

from gql_feed.api.errors import ErrorCodes
from gql_feed.compat import hide_suggestions
from gql_feed.config import Settings

ExtensionFactory = Callable[[], SchemaExtension]


class HideSuggestions(ValidationRule):
    """Production: no "Did you mean …?" in validation errors, which would let a client
    map the schema one typo at a time with introspection off.

    graphql-core's rules consult `context.hide_suggestions`, which `validate()` only sets
    from an argument strawberry never passes; every rule is constructed before the
    document is visited, so setting it here reaches all of them. Execution-time messages
    (variable values) are stripped by `api.errors.classify` instead.
    """

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        hide_suggestions(context)


class CachedParser(ParserCache):
    """ParserCache, except that a document which fails to parse is left to strawberry.

    ParserCache raises the syntax error from inside its hook, where it escapes the error
    extensions and reaches the client with no `extensions.code` (a non-string query, which
    a batch lets through, would even leak a Python message); strawberry's own parse (with
    the same token limit) reports it through them. Failures are never cached, so this
    costs nothing extra.
    """

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        try:
            context.graphql_document = self.cached_parse_document(
                context.query, **context.parse_options
            )
        except Exception:
            context.graphql_document = None
        yield


NUL = "\x00"
NUL_MESSAGE = "Text may not contain the NUL character (U+0000)."


class RefuseNulCharacters(SchemaExtension):
    """Refuse U+0000 anywhere in the input, before anything runs.

    PostgreSQL cannot store it in text (the insert fails, which would surface as an
    INTERNAL_SERVER_ERROR), and no legitimate title, name or status contains it. Raw
    NUL is already a syntax error in a document, so only `\\u` escapes in literals and
    JSON variables can carry one.
    """

    def on_validate(self) -> Iterator[None]:
        # Before yielding: strawberry acts on the errors inside the validation step, so
        # this runs after ValidationCache (earlier in the list) has set them, and adds to
        # them only when the document itself is valid.
        context = self.execution_context
        if not context.pre_execution_errors:
            variables = context.variables if isinstance(context.variables, dict) else {}
            fields = dict.fromkeys(_nul_paths(variables), NUL_MESSAGE)
            if "\\u" in (context.query or "") and context.graphql_document is not None:
                visit(context.graphql_document, _NulLiterals(fields))
            if fields:
                # A new list: the one ValidationCache returned is shared with later operations.
                context.pre_execution_errors = [
                    GraphQLError(
                        NUL_MESSAGE, extensions={"code": "BAD_USER_INPUT", "fields": fields}
                    )
                ]
        yield


class _NulLiterals(Visitor):
    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__()
        self.fields = fields

    def enter_string_value(self, node: StringValueNode, *_: object) -> None:
        if NUL in node.value:
            self.fields["query"] = NUL_MESSAGE


def _nul_paths(variables: dict[str, object]) -> list[str]:
    """Where the variables hold a NUL, as `$name.field[index]`; iterative, since JSON
    nesting is only bounded by the request size."""
    found = []
    pending: list[tuple[object, str]] = [(value, f"${name}") for name, value in variables.items()]
    while pending:
        value, path = pending.pop()
        if isinstance(value, str):
            if NUL in value:
                found.append(path)
        elif isinstance(value, dict):
            pending.extend((item, f"{path}.{key}") for key, item in value.items())
        elif isinstance(value, list):
            pending.extend((item, f"{path}[{index}]") for index, item in enumerate(value))
    return sorted(found)


def limit_rules(settings: Settings) -> list[type[ASTValidationRule]]:
    """Depth and alias limits as plain validation rules, one class each for the schema's life.

    graphql-core's own MaxIntrospectionDepthRule (in its specified rules) already stops
    cyclic introspection queries, which the depth limit deliberately does not count.
    """
    rules: list[type[ASTValidationRule]] = [
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
    ]
    if settings.production:
        rules.append(HideSuggestions)
    return rules


def schema_extensions(settings: Settings) -> list[ExtensionFactory]:
    """Factories, not instances: strawberry makes fresh extensions for every operation."""
    extensions: list[ExtensionFactory] = [
        partial(ErrorCodes, hide_suggestions=settings.production),
        partial(MaxTokensLimiter, max_token_count=settings.max_query_tokens),
        partial(CachedParser, maxsize=1024),
        partial(AddValidationRules, limit_rules(settings)),
        partial(ValidationCache, maxsize=1024),
        RefuseNulCharacters,
    ]
    if settings.production:
        extensions.append(DisableIntrospection)
    return extensions
