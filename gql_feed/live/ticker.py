"""One timer per process for every connection's clocks: keep-alive, init timeout, token expiry.

A timer (or a sleeping task) per connection would cost memory and wake-ups that grow
with the number of idle sockets. Instead one task wakes every `interval` seconds and
walks the connections: those still waiting for `connection_init` past their deadline
are closed (4408), those whose token has expired are closed (4440), and every
keep-alive period each acknowledged connection gets its protocol's ping (or `ka`).
The walk is a comparison per connection, a few hundred microseconds for thousands.

Keep-alives are spread over the period: connections are dealt round-robin into as many
slices as the period has ticks, and each tick pings one slice, not all of them at once
(so the period is `keepalive_seconds` rounded to whole ticks). Pinging 2,000 sockets and
reading their 2,000 pongs in one go stops the loop for tens of milliseconds, and a post
published in that moment reached its subscribers that much later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

logger = logging.getLogger(__name__)


class Clocked(Protocol):
    """What the ticker needs from a connection's protocol handler."""

    @property
    def init_deadline(self) -> float | None: ...  # monotonic; None once initialised

    @property
    def expires_at(self) -> float | None: ...  # monotonic; None until authenticated

    def keepalive(self) -> None: ...

    def init_timed_out(self) -> None: ...

    def token_expired(self) -> None: ...


class Ticker:
    def __init__(self, keepalive_seconds: float, init_timeout_seconds: float) -> None:
        self.keepalive_seconds = keepalive_seconds
        self.interval = max(0.05, min(1.0, init_timeout_seconds / 4, keepalive_seconds / 4))
        self.slices = max(1, round(keepalive_seconds / self.interval))
        self._connections: dict[Clocked, int] = {}  # connection -> its keep-alive slice
        self._added = 0
        self._task: asyncio.Task[None] | None = None

    def add(self, connection: Clocked) -> None:
        self._connections[connection] = self._added % self.slices
        self._added += 1

    def remove(self, connection: Clocked) -> None:
        self._connections.pop(connection, None)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gql_feed live ticker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(self.interval)
            ticks += 1
            self.tick(time.monotonic(), ticks % self.slices)

    def tick(self, now: float, keepalive_slice: int) -> None:
        """Check every connection's deadlines; ping those in slice `keepalive_slice`."""
        for connection, slice_index in tuple(self._connections.items()):
            try:
                init_deadline = connection.init_deadline
                if init_deadline is not None:
                    if now >= init_deadline:
                        connection.init_timed_out()
                    continue
                expires_at = connection.expires_at
                if expires_at is not None and now >= expires_at:
                    connection.token_expired()
                elif slice_index == keepalive_slice:
                    connection.keepalive()
            except Exception:
                logger.exception("A live connection's clock failed")
