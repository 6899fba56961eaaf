"""Threads of its own for each kind of blocking work, with a bound on what may wait.

`asyncio.to_thread` shares one default pool among everything: a flood of password
hashes (tens of milliseconds of CPU and 64 MiB each) would queue every image
re-encoding behind it. Each kind of work gets a `WorkerPool` instead: its own few
threads, and optionally a bound on the jobs allowed to wait for them, past which a
job is refused at once (`WorkQueueFull`) rather than piled up in memory.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class WorkQueueFull(RuntimeError):
    """Every thread is busy and `max_waiting` jobs already wait: try again later."""


class WorkerPool:
    """`threads` worker threads for one kind of job; at most `max_waiting` queued
    behind them (None: no bound, for work whose callers are bounded elsewhere)."""

    def __init__(self, name: str, threads: int, max_waiting: int | None = None) -> None:
        if threads < 1:
            raise ValueError(f"{name}: at least one thread is needed")
        self.name = name
        self.threads = threads
        self.max_waiting = max_waiting
        self._lock = threading.Lock()
        self._pending = 0  # running or waiting; released when the job is over, not its caller
        self._executor: ThreadPoolExecutor | None = None

    @property
    def pending(self) -> int:
        return self._pending

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """`function(*args)` on one of this pool's threads.

        A caller that is cancelled stops waiting, but a job already running keeps its
        place in the count until it really ends: the bound is on threads' work, not on
        callers still listening.
        """
        with self._lock:
            if self.max_waiting is not None and self._pending >= self.threads + self.max_waiting:
                raise WorkQueueFull(f"{self.name}: {self._pending} jobs already pending")
            self._pending += 1
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix=self.name)
            executor = self._executor
        try:
            job = executor.submit(function, *args)
        except BaseException:
            self._release()
            raise
        job.add_done_callback(self._release)
        return await asyncio.wrap_future(job)

    def close(self) -> None:
        """Let the threads go once their current job ends; a later `run` starts new ones."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def _release(self, _: object = None) -> None:
        with self._lock:
            self._pending -= 1
