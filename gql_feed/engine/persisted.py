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
from collections.abc import Awaitable, Callable, Mapping

import strawberry

from gql_feed.config import Settings
from gql_feed.engine.document_refusals import (
    DocumentRefused,
    PersistedQueryNotFound,
    PersistedQueryNotSupported,
    QueryTooLarge,
    missing_query,
)
from gql_feed.engine.document_stores import DocumentStore, MemoryDocumentStore, RedisDocumentStore
from gql_feed.engine.document_validator import DocumentValidator
from gql_feed.engine.parsing import OFF_LOOP_CHARS, is_too_large, off_loop
from gql_feed.engine.trusted_documents import TrustedDocuments, normalise_id

logger = logging.getLogger(__name__)

APQ_VERSION = 1
# A document bigger than this still runs when sent in full; it is just never stored, so
# one client cannot crowd everyone else's queries out of the cache.
MAX_PERSISTED_BYTES = 256 * 1024


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


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
    def from_settings(cls, settings: Settings, schema: strawberry.Schema) -> PersistedDocuments:
        """A manifest locks the server down (no APQ registration); otherwise APQ, in Redis
        when the bus is Redis so that every worker shares what any one has learned."""
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
            # Parsing and validating a document of thousands of tokens takes tens of
            # milliseconds: not on the event loop.
            return not await off_loop(validator.errors, text)

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
                raise missing_query()
            return query
        if self.store is None:
            raise PersistedQueryNotSupported()
        key = normalise_id(key).lower()
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
