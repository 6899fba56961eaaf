"""WorkerPool: its own threads, a bound on waiting jobs, and a count that a cancelled
caller cannot cheat (the job it started still holds its place until it really ends)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from gql_feed.runtime.workers import WorkerPool, WorkQueueFull


async def test_refuses_past_threads_plus_waiting() -> None:
    pool = WorkerPool("test-pool", threads=1, max_waiting=2)
    release = threading.Event()
    try:
        jobs = [asyncio.create_task(pool.run(release.wait, 10)) for _ in range(3)]
        await asyncio.sleep(0.05)
        assert pool.pending == 3
        with pytest.raises(WorkQueueFull):
            await pool.run(release.wait, 10)
        release.set()
        assert await asyncio.gather(*jobs) == [True, True, True]
        assert pool.pending == 0
        assert await pool.run(sum, [1, 2]) == 3  # room again
    finally:
        release.set()
        pool.close()


async def test_a_cancelled_caller_keeps_its_place_until_the_job_ends() -> None:
    pool = WorkerPool("test-pool", threads=1, max_waiting=0)
    started, release = threading.Event(), threading.Event()

    def job() -> str:
        started.set()
        release.wait(10)
        return "done"

    try:
        caller = asyncio.create_task(pool.run(job))
        await asyncio.to_thread(started.wait, 10)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        # The thread is still busy: a new job is refused, not queued behind it.
        with pytest.raises(WorkQueueFull):
            await pool.run(job)
        release.set()
        for _ in range(100):
            if pool.pending == 0:
                break
            await asyncio.sleep(0.01)
        assert pool.pending == 0
    finally:
        release.set()
        pool.close()


async def test_runs_on_its_own_threads() -> None:
    pool = WorkerPool("own-threads", threads=2)
    try:
        names = await asyncio.gather(
            *(pool.run(lambda: threading.current_thread().name) for _ in range(4))
        )
        assert all(name.startswith("own-threads") for name in names), names
    finally:
        pool.close()
