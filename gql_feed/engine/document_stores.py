"""Where APQ's registered documents are kept: in this process, or in Redis for every process.

A hash names one text forever, so any copy of an entry is as good as another: a store may
lose entries (an LRU evicts, Redis expires them) and a client only resends the text.
"""

from __future__ import annotations

import logging
from typing import Protocol

from gql_feed.lru import ByteLRU

logger = logging.getLogger(__name__)


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
