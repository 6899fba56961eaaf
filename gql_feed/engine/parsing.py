"""Query text to checked document: bounded in bytes, off the event loop, cached by weight.

The token limit does not count whitespace, comments or what is inside strings, so only a
bound on the text's bytes bounds what parsing costs; anything longer is refused before
the lexer sees it. Even within the bound, a document of a few thousand tokens takes
graphql-core tens of milliseconds to parse or validate, so any document above a small
size is parsed and validated in a worker thread, where it shares the interpreter with
the event loop instead of stopping it. Results are cached by text in `ByteLRU`s weighed
by the text and the syntax tree it became (about TOKEN_BYTES a token, locations
included), so the caches hold a bounded number of bytes, however big the documents.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    Token,
    parse,
)

from gql_feed.compat.strawberry import validate_with_strawberry_rules
from gql_feed.engine.rules import ValidationTimeout, deadline, timeout_error
from gql_feed.lru import ByteLRU

# Texts longer than this (in characters) are parsed and validated in a worker thread;
# shorter ones cost well under a millisecond, less than the hop to a thread.
OFF_LOOP_CHARS = 2_048
# What graphql-core keeps per token of a parsed document, locations included (measured
# with tracemalloc: about 390 bytes per token on CPython 3.11).
TOKEN_BYTES = 400
# What one validation error weighs besides its message.
ERROR_BYTES = 500
TOO_LARGE_CODE = "PAYLOAD_TOO_LARGE"

P = ParamSpec("P")
R = TypeVar("R")

# Threads of their own: document work neither waits behind password hashing or image
# re-encoding in the default executor nor crowds them out.
_DOCUMENT_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gql-documents")


async def off_loop(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run CPU-bound document work (parsing, validation) on the document threads."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_DOCUMENT_THREADS, lambda: function(*args, **kwargs))


def is_too_large(text: str, max_bytes: int) -> bool:
    """Whether `text` is over `max_bytes` in UTF-8, encoding it only when it could be."""
    if len(text) > max_bytes:
        return True
    if len(text) * 4 <= max_bytes:
        return False
    return len(text.encode()) > max_bytes


def too_large_message(max_bytes: int) -> str:
    return f"The query is larger than {max_bytes} bytes, the most this server accepts."


def too_large_error(max_bytes: int) -> GraphQLError:
    return GraphQLError(
        too_large_message(max_bytes), extensions={"code": TOO_LARGE_CODE, "maxBytes": max_bytes}
    )


def document_weight(text: str, document: DocumentNode) -> int:
    """Bytes a cached document holds: its text (as the key) and its tokens' tree."""
    tokens = _tokens(document.loc.start_token) if document.loc is not None else 0
    return len(text) + tokens * TOKEN_BYTES


def errors_weight(errors: Sequence[GraphQLError]) -> int:
    """Bytes cached errors hold: their messages, and the syntax tree their nodes point
    into (any one token keeps the document's whole chain of tokens alive)."""
    weight = sum(ERROR_BYTES + len(error.message) for error in errors)
    for error in errors:
        for node in error.nodes or ():
            if node.loc is not None:
                return weight + _tokens(node.loc.start_token) * TOKEN_BYTES
    return weight


def _tokens(token: Token) -> int:
    """How many tokens the chain `token` belongs to holds."""
    count = 0
    before: Token | None = token.prev
    while before is not None:
        count += 1
        before = before.prev
    after: Token | None = token
    while after is not None:
        count += 1
        after = after.next
    return count


@dataclass(slots=True, eq=False)
class Parsed:
    """A cached parse, and what the engine learnt about it (engine/analysis.py), kept and
    dropped together: the parser's cache is the only cache of documents."""

    node: DocumentNode
    learnt: dict[object, Any] = field(default_factory=dict)


class DocumentParser:
    """Parses query texts within the byte and token limits; one cache for a whole schema."""

    def __init__(self, max_query_bytes: int, max_tokens: int, cache_bytes: int) -> None:
        self.max_query_bytes = max_query_bytes
        self.max_tokens = max_tokens
        self.cache: ByteLRU[str, Parsed] = ByteLRU(cache_bytes)

    async def parse(self, text: str) -> DocumentNode:
        """The document; raises GraphQLError (syntax, too many tokens, too many bytes)."""
        return (await self.parsed(text)).node

    async def parsed(self, text: str) -> Parsed:
        """`parse`, with what is known about the document so far."""
        entry = self.cache.get(text)
        if entry is not None:
            return entry
        if is_too_large(text, self.max_query_bytes):
            raise too_large_error(self.max_query_bytes)
        if len(text) > OFF_LOOP_CHARS:
            document = await off_loop(parse, text, max_tokens=self.max_tokens)
        else:
            document = parse(text, max_tokens=self.max_tokens)
        entry = Parsed(document)
        self.cache.put(text, entry, document_weight(text, document))
        return entry


class ValidationResults:
    """Validation errors by query text and rules; the document must be the text's parse.

    Every document not yet in the cache is validated on a document thread, whatever its
    size: a 1 KB text repeating one field with a selection (`{ me { id } me { id } …}`)
    costs graphql-core's overlapping-fields rule a quadratic number of comparisons, a
    fifth of a second for 150 repeats. `max_seconds` bounds each validation
    (`rules.deadline`); past it the document is refused, and that refusal is not kept
    (a busy moment should not refuse it for good).
    """

    def __init__(self, cache_bytes: int, max_seconds: float | None = None) -> None:
        self.cache: ByteLRU[tuple[str, tuple[type[ASTValidationRule], ...]], list[GraphQLError]]
        self.cache = ByteLRU(cache_bytes)
        self.max_seconds = max_seconds

    async def validate(
        self,
        schema: GraphQLSchema,
        text: str,
        document: DocumentNode,
        rules: Sequence[type[ASTValidationRule]],
    ) -> list[GraphQLError]:
        key = (text, tuple(rules))
        errors = self.cache.get(key)
        if errors is not None:
            return errors
        found = await off_loop(self.validate_now, schema, document, key[1])
        if found is None:
            return [timeout_error(self.max_seconds or 0.0)]
        self.cache.put(key, found, len(text) + errors_weight(found))
        return found

    def validate_now(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        rules: Sequence[type[ASTValidationRule]],
    ) -> list[GraphQLError] | None:
        """The errors, or None past the deadline; on the calling thread."""
        try:
            with deadline(self.max_seconds):
                return validate_with_strawberry_rules(schema, document, tuple(rules))
        except ValidationTimeout:
            return None
