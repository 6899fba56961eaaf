"""Where an operation's document comes from: sent in full, by hash (APQ), or from a manifest.

Apollo clients send `extensions.persistedQuery {version: 1, sha256Hash}` so that a phone
sends a hash instead of a long query (automatic persisted queries); a locked-down
deployment runs only the documents of a trusted manifest. Both questions are the same
over HTTP and over the WebSocket, so both ask `PersistedDocuments.resolve` here and get
back the document text to execute, or a `DocumentRefused` with an Apollo-style code.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import orjson
import strawberry
from graphql import (
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
    specified_rules,
    strip_ignored_characters,
    validate,
)
from graphql.validation import ASTValidationRule

from gql_feed.compat import graphql_schema
from gql_feed.config import ConfigError, Settings
from gql_feed.engine.extensions import validation_rules
from gql_feed.engine.parsing import (
    OFF_LOOP_CHARS,
    TOO_LARGE_CODE,
    DocumentParser,
    is_too_large,
    off_loop,
    too_large_message,
)
from gql_feed.lru import ByteLRU
from gql_feed.services.errors import FeedError

logger = logging.getLogger(__name__)

APQ_VERSION = 1
APOLLO_MANIFEST_FORMAT = "apollo-persisted-query-manifest"
# A document bigger than this still runs when sent in full; it is just never stored, so
# one client cannot crowd everyone else's queries out of the cache.
MAX_PERSISTED_BYTES = 256 * 1024


class DocumentRefused(FeedError):
    """No document this server will run; `status_code` is the HTTP status Apollo uses."""

    status_code = 400


class PersistedQueryNotFound(DocumentRefused):
    """Unknown hash: Apollo's link resends the operation with its text on exactly this."""

    code = "PERSISTED_QUERY_NOT_FOUND"
    status_code = 200  # a retry signal, not a failure; Apollo Server answers 200 too

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotFound")


class PersistedQueryNotSupported(DocumentRefused):
    """APQ turned off: Apollo's link then stops sending hashes for the session."""

    code = "PERSISTED_QUERY_NOT_SUPPORTED"
    status_code = 200

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotSupported")


class QueryTooLarge(DocumentRefused):
    """More query text than GQL_FEED_MAX_QUERY_BYTES: refused before it is even lexed."""

    code = TOO_LARGE_CODE
    status_code = 413

    def __init__(self, max_bytes: int) -> None:
        super().__init__(too_large_message(max_bytes))


class DocumentNotAllowed(DocumentRefused):
    """Trusted-documents mode and the operation is not in the manifest."""

    code = "PERSISTED_QUERY_NOT_ALLOWED"
    status_code = 403


class ManifestError(ConfigError):
    """The trusted-documents manifest cannot be read; the message says which entry and why."""


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class DocumentStore(Protocol):
    """Hash to document text. Entries never change, so any copy of one is as good as another."""

    async def get(self, key: str) -> str | None: ...

    async def put(self, key: str, document: str) -> None: ...

    async def close(self) -> None: ...


class MemoryDocumentStore:
    """An LRU bounded in bytes: a flood of distinct queries evicts old ones, never grows memory."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._documents: ByteLRU[str, str] = ByteLRU(max_bytes)

    def __len__(self) -> int:
        return len(self._documents)

    @property
    def size(self) -> int:
        return self._documents.size

    def lookup(self, key: str) -> str | None:
        return self._documents.get(key)

    def store(self, key: str, document: str) -> None:
        if key not in self._documents:
            self._documents.put(key, document, len(key) + len(document.encode()))

    async def get(self, key: str) -> str | None:
        return self.lookup(key)

    async def put(self, key: str, document: str) -> None:
        self.store(key, document)

    async def close(self) -> None:
        self._documents.clear()


class RedisDocumentStore:
    """Shared by every process on the bus's Redis, so a query that one worker learned serves
    them all. Entries expire, so Redis forgets documents no client sends any more. A Redis
    failure is a miss, never an error: the client then just sends the full query."""

    def __init__(self, url: str, prefix: str, ttl_seconds: int, near: MemoryDocumentStore) -> None:
        from redis.asyncio import Redis

        self.redis = Redis.from_url(
            url, decode_responses=True, socket_timeout=2.0, socket_connect_timeout=2.0
        )
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.near = near

    async def get(self, key: str) -> str | None:
        from redis.exceptions import RedisError

        document = self.near.lookup(key)
        if document is not None:
            return document
        try:
            value = await self.redis.get(self.prefix + key)
        except (RedisError, OSError) as error:
            logger.warning("Persisted query store unavailable (%s): treating as a miss", error)
            return None
        if not isinstance(value, str):
            return None
        self.near.store(key, value)
        return value

    async def put(self, key: str, document: str) -> None:
        from redis.exceptions import RedisError

        self.near.store(key, document)
        try:
            await self.redis.set(self.prefix + key, document, ex=self.ttl_seconds)
        except (RedisError, OSError) as error:
            logger.warning("Persisted query store unavailable (%s): not shared", error)

    async def close(self) -> None:
        await self.redis.aclose()


@dataclass(frozen=True)
class TrustedDocument:
    id: str
    body: str
    name: str | None = None
    type: str | None = None


class TrustedDocuments:
    """The operations a manifest allows, found by id or by their text."""

    def __init__(self, documents: Sequence[TrustedDocument]) -> None:
        self.documents = list(documents)
        self._by_id = {document.id: document.body for document in documents}
        self._bodies = {document.body for document in documents}
        self._by_stripped: dict[str, str] = {}
        for document in documents:
            stripped = _stripped(document.body)
            if stripped is not None:
                self._by_stripped.setdefault(stripped, document.body)

    def __len__(self) -> int:
        return len(self.documents)

    @classmethod
    def load(cls, path: Path) -> TrustedDocuments:
        """Apollo's persisted-query manifest, or GraphQL Codegen's `{hash: document}`."""
        try:
            data = orjson.loads(path.read_bytes())
        except OSError as error:
            raise ManifestError(f"Cannot read trusted documents {path}: {error}") from error
        except orjson.JSONDecodeError as error:
            raise ManifestError(f"{path} is not JSON: {error}") from error
        return cls(_parse_manifest(data, str(path)))

    def body_of(self, key: str) -> str | None:
        return self._by_id.get(_normalise_id(key))

    def matching(self, query: str) -> str | None:
        """The manifest's text for `query`, ignoring whitespace and comments."""
        if query in self._bodies:
            return query
        stripped = _stripped(query)
        return self._by_stripped.get(stripped) if stripped is not None else None

    def resolve(self, query: str | None, key: str | None) -> str:
        if key is not None:
            body = self.body_of(key)
            if body is None:
                raise DocumentNotAllowed(
                    f"Persisted query {key!r} is not in the trusted documents manifest."
                )
            if query and self.matching(query) != body:
                raise DocumentNotAllowed(
                    f"The query sent is not the trusted document {key!r} names."
                )
            return body
        if not query:
            raise _missing_query()
        body = self.matching(query)
        if body is None:
            raise DocumentNotAllowed(
                "This operation is not in the trusted documents manifest; "
                "only the application's own operations run on this server."
            )
        return body


def _normalise_id(key: str) -> str:
    """Codegen and the GraphQL-over-HTTP draft may spell an id `sha256:<hex>`."""
    return key.removeprefix("sha256:")


def _stripped(text: str) -> str | None:
    try:
        return strip_ignored_characters(text)
    except GraphQLError:
        return None


def _parse_manifest(data: object, source: str) -> list[TrustedDocument]:
    if not isinstance(data, dict):
        raise ManifestError(f"{source}: expected a JSON object")
    documents: list[TrustedDocument] = []
    if data.get("format") == APOLLO_MANIFEST_FORMAT:
        if data.get("version") != 1:
            raise ManifestError(f"{source}: unsupported manifest version {data.get('version')!r}")
        operations = data.get("operations")
        if not isinstance(operations, list):
            raise ManifestError(f"{source}: `operations` must be a list")
        for index, entry in enumerate(operations):
            if not isinstance(entry, dict):
                raise ManifestError(f"{source}: operations[{index}] must be an object")
            id_, body = entry.get("id"), entry.get("body")
            if not isinstance(id_, str) or not id_ or not isinstance(body, str) or not body:
                raise ManifestError(f"{source}: operations[{index}] needs string `id` and `body`")
            name, type_ = entry.get("name"), entry.get("type")
            documents.append(
                TrustedDocument(
                    _normalise_id(id_),
                    body,
                    name if isinstance(name, str) else None,
                    type_ if isinstance(type_, str) else None,
                )
            )
    elif "format" in data:
        raise ManifestError(f"{source}: unknown manifest format {data['format']!r}")
    else:
        for id_, body in data.items():
            if not isinstance(body, str) or not body:
                raise ManifestError(f"{source}: the document of {id_!r} must be a string")
            documents.append(TrustedDocument(_normalise_id(id_), body))
    seen: dict[str, str] = {}
    for document in documents:
        if seen.setdefault(document.id, document.body) != document.body:
            raise ManifestError(f"{source}: id {document.id!r} names two different documents")
    return documents


def _missing_query() -> DocumentRefused:
    return DocumentRefused(
        "GraphQL operations must contain a non-empty `query` or a `persistedQuery` extension."
    )


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
            return await off_loop(validate, self.schema, document, self.rules)
        return validate(self.schema, document, self.rules)


class PersistedDocuments:
    """Turns what a client sent (text, hash, document id) into the text to execute."""

    def __init__(
        self,
        store: DocumentStore | None,
        trusted: TrustedDocuments | None = None,
        is_runnable: Callable[[str], Awaitable[bool]] | None = None,
        max_query_bytes: int | None = None,
    ) -> None:
        self.store = store
        self.trusted = trusted
        self.is_runnable = is_runnable or _always_runnable
        self.max_query_bytes = max_query_bytes

    @classmethod
    def from_settings(
        cls, settings: Settings, schema: strawberry.Schema, parser: DocumentParser | None = None
    ) -> PersistedDocuments:
        """A manifest locks the server down (no APQ registration); otherwise APQ, in Redis
        when the bus is Redis so that every worker shares what any one has learned.
        `parser` should be the schema's own (`DocumentChecks.parser`)."""
        if settings.trusted_documents is not None:
            trusted = TrustedDocuments.load(settings.trusted_documents)
            logger.info("Trusted documents mode: %d operations allowed", len(trusted))
            return cls(None, trusted, max_query_bytes=settings.max_query_bytes)
        store: DocumentStore | None = None
        if settings.persisted_queries:
            near = MemoryDocumentStore(settings.persisted_query_cache_bytes)
            if settings.broadcast_url.startswith(("redis://", "rediss://")):
                store = RedisDocumentStore(
                    settings.broadcast_url,
                    settings.persisted_query_redis_prefix,
                    settings.persisted_query_ttl_seconds,
                    near,
                )
            else:
                store = near
        validator = DocumentValidator.for_settings(schema, settings)

        async def is_runnable(text: str) -> bool:
            return not await validator.check(text, parser)

        return cls(store, None, is_runnable, settings.max_query_bytes)

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()

    async def resolve(
        self,
        query: str | None,
        extensions: Mapping[str, object] | None,
        document_id: str | None = None,
    ) -> str:
        if query and self.max_query_bytes is not None and is_too_large(query, self.max_query_bytes):
            raise QueryTooLarge(self.max_query_bytes)
        key = _persisted_query_hash(extensions) or document_id
        if self.trusted is not None:
            if query and len(query) > OFF_LOOP_CHARS:
                # Matching lexes the whole text (to ignore its layout): not on the loop.
                return await off_loop(self.trusted.resolve, query, key)
            return self.trusted.resolve(query, key)
        if key is None:
            if not query:
                raise _missing_query()
            return query
        if self.store is None:
            raise PersistedQueryNotSupported()
        key = _normalise_id(key).lower()
        if query:
            if sha256_hex(query) != key:
                raise DocumentRefused("provided sha does not match query")
            # Validated once per hash (not per request), and only what can run is kept.
            known = await self.store.get(key) is not None
            if (
                not known
                and len(query.encode()) <= MAX_PERSISTED_BYTES
                and await self.is_runnable(query)
            ):
                await self.store.put(key, query)
            return query
        document = await self.store.get(key)
        if document is None:
            raise PersistedQueryNotFound()
        return document

    async def resolve_payload(self, payload: Mapping[str, object]) -> str:
        """For a WebSocket `subscribe` (or legacy `start`) payload. The live layer answers a
        `DocumentRefused` with an `error` message for that operation id only."""
        query = payload.get("query")
        extensions = payload.get("extensions")
        document_id = payload.get("documentId")
        if query is not None and not isinstance(query, str):
            raise DocumentRefused("`query` must be a string.")
        if extensions is not None and not isinstance(extensions, Mapping):
            raise DocumentRefused("`extensions` must be an object.")
        if document_id is not None and not isinstance(document_id, str):
            raise DocumentRefused("`documentId` must be a string.")
        return await self.resolve(query, extensions, document_id)


async def _always_runnable(_: str) -> bool:
    return True


def _persisted_query_hash(extensions: Mapping[str, object] | None) -> str | None:
    if not extensions or "persistedQuery" not in extensions:
        return None
    persisted = extensions["persistedQuery"]
    if not isinstance(persisted, Mapping):
        raise DocumentRefused("`extensions.persistedQuery` must be an object.")
    if persisted.get("version") != APQ_VERSION:
        raise DocumentRefused("Unsupported persisted query version")
    sha = persisted.get("sha256Hash")
    if not isinstance(sha, str) or not sha:
        raise DocumentRefused("`extensions.persistedQuery.sha256Hash` must be a string.")
    return sha


def manifest_problems(
    manifest: TrustedDocuments, validator: DocumentValidator
) -> list[tuple[TrustedDocument, str]]:
    """Each document that would fail, with why (one entry per error)."""
    problems: list[tuple[TrustedDocument, str]] = []
    for document in manifest.documents:
        errors = validator.errors(document.body)
        problems.extend((document, _describe(error)) for error in errors)
        if errors:
            continue
        operations = [
            definition
            for definition in parse(document.body).definitions
            if isinstance(definition, OperationDefinitionNode)
        ]
        declared = _declared_mismatch(document, operations)
        if declared:
            problems.append((document, declared))
    return problems


def _declared_mismatch(
    document: TrustedDocument, operations: Iterable[OperationDefinitionNode]
) -> str | None:
    """Apollo's manifest names each operation and its type; a wrong one misleads reviewers."""
    if document.name is None and document.type is None:
        return None
    by_name = {op.name.value if op.name else None: op for op in operations}
    operation = by_name.get(document.name) if document.name else next(iter(by_name.values()), None)
    if operation is None:
        return f"the manifest names operation {document.name!r}, the document has none by it"
    actual = operation.operation.value
    if document.type is not None and document.type != actual:
        return f"the manifest says {document.type!r}, the operation is a {actual}"
    return None


def _describe(error: GraphQLError) -> str:
    where = ""
    if error.locations:
        location = error.locations[0]
        where = f" (line {location.line}, column {location.column})"
    return error.message + where


def check_manifest_command(path: Path, settings: Settings, schema: strawberry.Schema) -> int:
    """`gql-feed check-manifest PATH`: print what would fail; exit status 1 if anything does."""
    try:
        manifest = TrustedDocuments.load(path)
    except ManifestError as error:
        sys.stderr.write(f"{error}\n")
        return 1
    problems = manifest_problems(manifest, DocumentValidator.for_settings(schema, settings))
    for document, problem in problems:
        label = document.id + (f" ({document.name})" if document.name else "")
        sys.stdout.write(f"FAIL {label}: {problem}\n")
    if problems:
        failing = len({id(document) for document, _ in problems})
        sys.stdout.write(f"{failing} of {len(manifest)} documents would fail.\n")
        return 1
    sys.stdout.write(f"All {len(manifest)} documents are valid against the schema.\n")
    return 0
