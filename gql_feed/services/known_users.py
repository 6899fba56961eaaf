"""Which user ids exist, as this process saw them at most `ttl_seconds` ago.

A token outlives its user: removed from the database (there is no mutation that deletes
a user; an administrator does it), or never there (a token signed for an id that was
never given out). Such a token must stop working, but asking the database on every
request and every `connection_init` would add a query to each. So each process
remembers, per user id, whether it exists and when it last looked (a byte-bounded LRU,
answers kept for `ttl_seconds`, negative ones too). Ids whose answer is missing or
stale are looked up together: one query at a time per process, naming every id
waiting for it. A removed user's token therefore stops working within `ttl_seconds`;
signup and login record their user as existing, which they just proved.

A failed lookup (database down) answers "exists" without remembering it: the fields
that need the user then fail on their own query, and clients are not told that their
account is gone, which many would answer by dropping the token.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy import select

from gql_feed.lru import ByteLRU
from gql_feed.storage.database import Database
from gql_feed.storage.models import User

logger = logging.getLogger(__name__)

# What one remembered id weighs: the int key, the (bool, float) tuple, the LRU's node.
ENTRY_BYTES = 160
CACHE_BYTES = 16 * 1024 * 1024  # about 100,000 users
LOOKUP_BATCH = 500


class KnownUsers:
    def __init__(self, db: Database, ttl_seconds: float) -> None:
        self.db = db
        self.ttl_seconds = ttl_seconds
        self.lookups = 0  # queries made, for tests and curiosity
        self._seen: ByteLRU[int, tuple[bool, float]] = ByteLRU(CACHE_BYTES)
        self._waiting: dict[int, asyncio.Future[bool]] = {}
        self._looking: asyncio.Task[None] | None = None

    def remember(self, user_id: int, exists: bool = True) -> None:
        """What a query made for another reason just showed about `user_id`."""
        self._seen.put(user_id, (exists, time.monotonic()), ENTRY_BYTES)

    async def exists(self, user_id: int) -> bool:
        seen = self._seen.get(user_id)
        if seen is not None and time.monotonic() - seen[1] < self.ttl_seconds:
            return seen[0]
        answer = self._waiting.get(user_id)
        if answer is None:
            answer = asyncio.get_running_loop().create_future()
            self._waiting[user_id] = answer
            if self._looking is None:
                self._looking = asyncio.create_task(self._look_up())
        # Shielded: one caller giving up must not cancel the answer others wait for.
        return await asyncio.shield(answer)

    async def _look_up(self) -> None:
        """Answer every waiting id, a batch per query, until none waits."""
        batch: dict[int, asyncio.Future[bool]] = {}
        try:
            await asyncio.sleep(0)  # the ids asked for in this same turn join the batch
            while self._waiting:
                batch = dict(list(self._waiting.items())[:LOOKUP_BATCH])
                for user_id in batch:
                    del self._waiting[user_id]
                found = await self._query(list(batch))
                now = time.monotonic()
                for user_id, answer in batch.items():
                    exists = found is None or user_id in found
                    if found is not None:
                        self._seen.put(user_id, (exists, now), ENTRY_BYTES)
                    if not answer.done():
                        answer.set_result(exists)
        finally:
            self._looking = None
            # Only when this task was cancelled (shutdown) is anyone still waiting.
            for answer in [*batch.values(), *self._waiting.values()]:
                if not answer.done():
                    answer.set_result(True)
            self._waiting.clear()

    async def _query(self, user_ids: list[int]) -> set[int] | None:
        self.lookups += 1
        try:
            async with self.db.read() as session:
                rows = await session.scalars(select(User.id).where(User.id.in_(user_ids)))
                return set(rows)
        except Exception:
            logger.warning("Could not check whether users exist", exc_info=True)
            return None
