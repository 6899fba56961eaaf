"""Slows password guessing and signup floods, counted across every process on the bus.

Login: failures are counted per key, and a key with `max_failures` of them in a window of
`lockout_seconds` (from the first of them) is refused until the window ends. Keys are an
account's email and a client's address, so guessing one account from many addresses and
many accounts from one address are both caught. Signup: each client address may create
`max_signups` accounts per period, the period starting with its first signup in it.

The counts are fixed windows of the `limits` package. With a Redis bus they are kept in
that Redis (one key per window, expiring with it), so every process of `--workers N` and
every host on the bus counts against the same allowance; with any other bus they are kept
in the process's memory, as there is nothing shared to keep them in.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter

from gql_feed.services.errors import TooManyAttempts, TooManySignups

if TYPE_CHECKING:
    from redis.asyncio import ConnectionPool

logger = logging.getLogger(__name__)

REDIS_SCHEMES = ("redis://", "rediss://")
T = TypeVar("T")


class Counts:
    """Counts per key in fixed windows, in one `limits` storage.

    A shared storage (Redis) that does not answer never turns a login or a signup into a
    server error: while it is away the counts are kept in this process's memory, as they
    are without a shared bus, and the shared ones are used again once it answers.
    """

    def __init__(self, storage: Storage, pool: ConnectionPool | None = None) -> None:
        self.storage = storage
        self.limiter = FixedWindowRateLimiter(storage)
        self._pool = pool
        self._local = FixedWindowRateLimiter(MemoryStorage()) if pool is not None else None
        self._warned = False

    @classmethod
    def for_bus(cls, broadcast_url: str, prefix: str) -> Counts:
        """In the bus's Redis when it is one (keys under `prefix`), else in memory."""
        if not broadcast_url.startswith(REDIS_SCHEMES):
            return cls(MemoryStorage())
        from redis.asyncio import ConnectionPool  # only with a Redis bus: see events.backends

        pool = ConnectionPool.from_url(broadcast_url)
        # Our own pool, so that `close` can let its connections go.
        options: dict[str, Any] = {"connection_pool": pool}
        storage = RedisStorage(
            "async+" + broadcast_url, implementation="redispy", key_prefix=prefix, **options
        )
        return cls(storage, pool)

    async def _with(self, use: Callable[[FixedWindowRateLimiter], Awaitable[T]]) -> T:
        """`use` on the shared counts, or on this process's own while they do not answer."""
        if self._local is None:
            return await use(self.limiter)
        from redis.exceptions import RedisError  # imported already: the pool is Redis's

        try:
            result = await use(self.limiter)
        except (RedisError, OSError) as error:
            if not self._warned:
                logger.warning("Throttle counts kept in this process: Redis fails (%s)", error)
                self._warned = True
            return await use(self._local)
        self._warned = False
        return result

    async def take(self, item: RateLimitItem, key: str) -> bool:
        """Count one for `key`: True while that stays within the window's allowance."""
        return await self._with(lambda limiter: limiter.hit(item, key))

    async def give_back(self, item: RateLimitItem, key: str) -> None:
        """Take back one counted for `key` (never below zero)."""

        async def give(limiter: FixedWindowRateLimiter) -> None:
            name = item.key_for(key)
            if await limiter.storage.get(name) > 0:
                await limiter.storage.incr(name, item.get_expiry(), amount=-1)

        await self._with(give)

    async def reset(self, item: RateLimitItem, key: str) -> None:
        await self._with(lambda limiter: limiter.clear(item, key))

    async def retry_after(self, item: RateLimitItem, key: str) -> int:
        """Whole seconds until `key`'s window ends (at least 1)."""
        stats = await self._with(lambda limiter: limiter.get_window_stats(item, key))
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


class LoginThrottle:
    def __init__(self, max_failures: int, lockout_seconds: int, counts: Counts) -> None:
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        self.counts = counts

    @property
    def item(self) -> RateLimitItem:
        return RateLimitItemPerSecond(self.max_failures, self.lockout_seconds, namespace="login")

    async def attempt(self, *keys: str) -> None:
        """Count this attempt as a failure of every key up front; refuse it (counting
        nothing) when any key has no failure left in its window.

        Counting before the (slow, awaited) password check means concurrent guesses, in
        parallel requests, one batch or other processes, cannot all slip past the limit;
        a success then takes its own count back with `succeeded`.
        """
        item = self.item
        counted: list[str] = []
        for key in keys:
            counted.append(key)
            if not await self.counts.take(item, key):
                retry_after = await self.counts.retry_after(item, key)
                await self.forgive(*counted)
                raise TooManyAttempts(retry_after)

    async def succeeded(self, account: str, client: str) -> None:
        """The right password for `account`: its count starts over.

        The client address's count only loses the failure `attempt` counted for this
        very login. Resetting it would let one real account buy an attacker fresh
        guesses at every other account from the same address.
        """
        await self.counts.reset(self.item, account)
        await self.forgive(client)

    async def forgive(self, *keys: str) -> None:
        """Take back the failure `attempt` counted for a login that was no failure."""
        item = self.item
        for key in keys:
            await self.counts.give_back(item, key)


class SignupThrottle:
    """At most `max_signups` accounts per client address in each period of
    `period_seconds`, the period starting with the address's first signup in it.

    A signup is counted before its password is hashed, so a burst of concurrent ones
    cannot all slip past the limit (and the refused ones cost no hashing at all).
    """

    def __init__(self, max_signups: int, period_seconds: int, counts: Counts) -> None:
        self.max_signups = max_signups
        self.period_seconds = period_seconds
        self.counts = counts

    @property
    def item(self) -> RateLimitItem:
        return RateLimitItemPerSecond(self.max_signups, self.period_seconds, namespace="signup")

    async def attempt(self, client: str) -> None:
        """Count one signup from `client`; TOO_MANY_REQUESTS once its allowance is spent."""
        item = self.item
        if not await self.counts.take(item, client):
            retry_after = await self.counts.retry_after(item, client)
            await self.counts.give_back(item, client)
            raise TooManySignups(retry_after)

    async def cancel(self, client: str) -> None:
        """Give back a counted signup that was not made because the server refused it."""
        await self.counts.give_back(self.item, client)
