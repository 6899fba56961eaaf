"""argon2id password hashing, on threads of its own with a bounded queue.

One hash costs tens of milliseconds of CPU and 64 MiB of memory (the settings' defaults,
RFC 9106's second recommended option), and a client can ask for one with a single small request
(signup, login). So hashing never shares threads with other work (an image waiting
behind a signup flood), runs at most `threads` at a time, and refuses at once, with
TOO_MANY_REQUESTS, a request that would have to wait behind more than `max_waiting`
others: memory and waiting time stay bounded whatever arrives.

The cost is a setting (`Cost`): each hash records the cost it was made with, so a change
applies to new passwords and every stored hash still verifies.
"""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gql_feed.runtime.workers import WorkerPool, WorkQueueFull
from gql_feed.services.errors import ServerBusy

# Lanes of each hash: RFC 9106's recommendation, and argon2-cffi's default.
PARALLELISM = 4


@dataclass(frozen=True)
class Cost:
    """argon2id's memory (KiB) and passes over it, for each new hash
    (`GQL_FEED_PASSWORD_HASH_MEMORY_KIB` and `GQL_FEED_PASSWORD_HASH_PASSES`)."""

    memory_kib: int
    passes: int

    def hasher(self) -> PasswordHasher:
        return PasswordHasher(
            time_cost=self.passes, memory_cost=self.memory_kib, parallelism=PARALLELISM
        )


class Passwords:
    def __init__(self, threads: int, max_waiting: int, cost: Cost) -> None:
        self.pool = WorkerPool("gql_feed-passwords", threads, max_waiting)
        self._hasher = cost.hasher()
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        try:
            return await self.pool.run(self._hasher.hash, password)
        except WorkQueueFull:
            raise ServerBusy() from None

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """False for a wrong password or no account (None), which take the same time."""
        try:
            valid = await self.pool.run(self._verify, password_hash, password)
        except WorkQueueFull:
            raise ServerBusy() from None
        return valid and password_hash is not None

    def close(self) -> None:
        self.pool.close()

    def _dummy_hash(self) -> str:
        """Verified against when the email is unknown, so both failures cost the same time.
        Made on first use, on a hashing thread, at this server's cost: at start-up, every
        process start would pay a hash. (Two threads may both make one: either serves.)"""
        if self._dummy is None:
            self._dummy = self._hasher.hash("gql_feed: no such user")
        return self._dummy

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            return False
