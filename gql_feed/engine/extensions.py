"""Schema extensions: error codes, parse/validation caches and the query limits.

The limit rules are built once per schema, not once per operation: the validation cache
keys its entries on the rule classes, and strawberry's limiters make a new class each time
they are constructed, which would make every lookup a miss.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
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
    MaxTokensLimiter,
    SchemaExtension,
)

from gql_feed.compat.graphql_core import hide_suggestions
from gql_feed.compat.strawberry import graphql_schema
from gql_feed.config import Settings
from gql_feed.engine.cost import QueryCost, cost_error
from gql_feed.engine.errors import ErrorCodes, classify
from gql_feed.engine.parsing import OFF_LOOP_CHARS, DocumentParser, ValidationResults, off_loop
from gql_feed.engine.phase_spans import PhaseSpans
from gql_feed.engine.rules import document_limits
from gql_feed.engine.variables import NUL, ON_LOOP_ITEMS, declared_only, holds_nul, nul_paths
from gql_feed.observability.tracing import tracing_on

ExtensionFactory = Callable[[], SchemaExtension]


class HideSuggestions(ValidationRule):
    """Production: no "Did you mean …?" in validation errors, which would let a client
    map the schema one typo at a time with introspection off.

    graphql-core's rules consult `context.hide_suggestions`, which `validate()` only sets
    from an argument strawberry never passes; every rule is constructed before the
    document is visited, so setting it here reaches all of them. Execution-time messages
    (variable values) are stripped by `engine.errors.classify` instead.
    """

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        hide_suggestions(context)


class CachedParser(SchemaExtension):
    """Parse through the schema's `DocumentParser`: bounded in bytes, cached by weight,
    and off the event loop for anything but small documents.

    A document that fails to parse is answered here, already classified (the error is
    raised from the hook, which leaves the operation before the error extensions could
    see it): letting strawberry parse it again would do the work twice, on the loop.
    """

    def __init__(self, parser: DocumentParser, hide_suggestions: bool = False) -> None:
        super().__init__()
        self.parser = parser
        self.hide_suggestions = hide_suggestions

    async def on_parse(self) -> AsyncIterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            try:
                context.graphql_document = await self.parser.parse(context.query)
            except GraphQLError as error:
                raise classify(error, hide_suggestions=self.hide_suggestions) from None
        yield


class CachedValidation(SchemaExtension):
    """strawberry's validation step, remembered by query text in a byte-bounded cache
    and run off the loop for anything but small documents."""

    def __init__(self, results: ValidationResults) -> None:
        super().__init__()
        self.results = results

    async def on_validate(self) -> AsyncIterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if context.query and document is not None and context.pre_execution_errors is None:
            context.pre_execution_errors = await self.results.validate(
                graphql_schema(context.schema), context.query, document, context.validation_rules
            )
        yield


class DeclaredVariables(SchemaExtension):
    """Drop the variables the operation does not declare (graphql-core ignores them),
    before anything walks them: the NUL check, the cost (`engine.variables`)."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.variables:
            context.variables = declared_only(document, context.operation_name, context.variables)
        yield


class CostLimit(SchemaExtension):
    """Refuse an operation costing more than `max_cost` (see `engine.cost`), with the cost.

    Runs once the document is valid, with this request's variables: the sizes they give
    are the ones the operation would use. A whole HTTP batch is also checked at once,
    before any of it runs (`transport.http.view`). The cost of a big document is counted on a
    document thread (and not remembered: its validation is).
    """

    def __init__(self, cost: QueryCost, max_cost: int) -> None:
        super().__init__()
        self.cost = cost
        self.max_cost = max_cost

    async def on_validate(self) -> AsyncIterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if not context.pre_execution_errors and document is not None:
            variables = context.variables if isinstance(context.variables, dict) else None
            schema = graphql_schema(context.schema)
            name = context.operation_name
            query = context.query or ""
            if len(query) > OFF_LOOP_CHARS:
                cost = await off_loop(self.cost.of, schema, document, name, variables)
            elif query:
                cost = self.cost.of_query(schema, query, document, name, variables)
            else:
                cost = self.cost.of(schema, document, name, variables)
            if cost > self.max_cost:
                context.pre_execution_errors = [cost_error(cost, self.max_cost)]
        yield


NUL_MESSAGE = "Text may not contain the NUL character (U+0000)."


class RefuseNulCharacters(SchemaExtension):
    """Refuse U+0000 anywhere in the input, before anything runs.

    PostgreSQL cannot store it in text (the insert fails, which would surface as an
    INTERNAL_SERVER_ERROR), and no legitimate title, name or status contains it. A raw
    NUL outside a string is a syntax error, but graphql-core's lexer lets one through
    inside a string or block string, so literals are checked when the text holds either
    a raw NUL or a `\\u` escape; JSON variables can carry one too. Big variables and
    documents are walked on a document thread (`engine.variables`).
    """

    async def on_validate(self) -> AsyncIterator[None]:
        # Before yielding: strawberry acts on the errors inside the validation step, so
        # this runs after CachedValidation (earlier in the list) has set them, and adds to
        # them only when the document itself is valid.
        context = self.execution_context
        if not context.pre_execution_errors:
            variables = context.variables if isinstance(context.variables, dict) else {}
            found = holds_nul(variables, ON_LOOP_ITEMS)
            if found is None:
                found = await off_loop(holds_nul, variables)
            fields = (
                dict.fromkeys(await off_loop(nul_paths, variables), NUL_MESSAGE) if found else {}
            )
            query = context.query or ""
            document = context.graphql_document
            if ("\\u" in query or NUL in query) and document is not None:
                if len(query) > OFF_LOOP_CHARS:
                    await off_loop(visit, document, _NulLiterals(fields))
                else:
                    visit(document, _NulLiterals(fields))
            if fields:
                # A new list: the one CachedValidation returned is shared with later operations.
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


def limit_rules(settings: Settings) -> list[type[ASTValidationRule]]:
    """Depth, alias and `__schema` limits as plain validation rules, linear in the
    document (`engine.rules`), one class for the schema's life.

    graphql-core's own MaxIntrospectionDepthRule (in its specified rules) already stops
    cyclic introspection queries, which the depth limit deliberately does not count.
    """
    rules: list[type[ASTValidationRule]] = [
        document_limits(settings.max_query_depth, settings.max_aliases)
    ]
    if settings.production:
        rules.append(HideSuggestions)
    return rules


@dataclass(frozen=True)
class DocumentChecks:
    """What every operation of one schema is checked with, shared by HTTP and WebSocket:
    one parser and one validation cache, and the cost of operations."""

    parser: DocumentParser
    validation: ValidationResults
    cost: QueryCost
    max_cost: int

    @classmethod
    def for_settings(cls, settings: Settings) -> DocumentChecks:
        return cls(
            parser=DocumentParser(
                settings.max_query_bytes, settings.max_query_tokens, settings.document_cache_bytes
            ),
            validation=ValidationResults(
                settings.document_cache_bytes, settings.max_validation_seconds
            ),
            cost=QueryCost(
                {"perPage": settings.max_per_page, "first": settings.max_first},
                remembered_bytes=settings.document_cache_bytes // 8,
            ),
            max_cost=settings.max_query_cost,
        )


def validation_rules(settings: Settings) -> list[type[ASTValidationRule]]:
    """Every rule an operation is validated with besides graphql-core's own, as
    `schema_extensions` adds them (introspection is off in production)."""
    rules = limit_rules(settings)
    if settings.production:
        rules.extend(DisableIntrospection().validation_rules)
    return rules


def schema_extensions(
    settings: Settings, checks: DocumentChecks | None = None
) -> list[ExtensionFactory]:
    """Factories, not instances: strawberry makes fresh extensions for every operation.
    `checks` should be the one the HTTP view checks whole batches with. While tracing is
    on (decided when the schema is built), every step is a span first of all."""
    checks = checks or DocumentChecks.for_settings(settings)
    extensions: list[ExtensionFactory] = [PhaseSpans] if tracing_on() else []
    extensions += [
        partial(ErrorCodes, hide_suggestions=settings.production),
        partial(MaxTokensLimiter, max_token_count=settings.max_query_tokens),
        partial(CachedParser, checks.parser, settings.production),
        partial(AddValidationRules, limit_rules(settings)),
        partial(CachedValidation, checks.validation),
        DeclaredVariables,
        RefuseNulCharacters,
        partial(CostLimit, checks.cost, checks.max_cost),
    ]
    if settings.production:
        extensions.append(DisableIntrospection)
    return extensions
