"""argon2id password hashing, on threads of its own with a bounded queue.

One hash costs tens of milliseconds of CPU and 64 MiB of memory, and a client can ask
for one with a single small request (signup, login). So hashing never shares threads
with other work (an image waiting behind a signup flood), runs at most `threads` at a
time, and refuses at once, with TOO_MANY_REQUESTS, a request that would have to wait
behind more than `max_waiting` others: memory and waiting time stay bounded whatever
arrives.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gql_feed.runtime.workers import WorkerPool, WorkQueueFull
from gql_feed.services.errors import ServerBusy

_hasher = PasswordHasher()


class Passwords:
    def __init__(self, threads: int, max_waiting: int) -> None:
        self.pool = WorkerPool("gql_feed-passwords", threads, max_waiting)

    async def hash(self, password: str) -> str:
        try:
            return await self.pool.run(_hasher.hash, password)
        except WorkQueueFull:
            raise ServerBusy() from None

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """False for a wrong password or no account (None), which take the same time."""
        try:
            valid = await self.pool.run(_verify, password_hash, password)
        except WorkQueueFull:
            raise ServerBusy() from None
        return valid and password_hash is not None

    def close(self) -> None:
        self.pool.close()


@cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so both failures cost the same time.
    Made on first use, on a hashing thread: at import, every process start paid a hash."""
    return _hasher.hash("gql_feed: no such user")


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
