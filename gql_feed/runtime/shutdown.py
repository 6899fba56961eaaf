"""Graceful shutdown: on SIGTERM, close live sockets with 1001 before uvicorn stops.

uvicorn's own shutdown closes WebSockets with 1012 and only then runs the lifespan's
shutdown, so the app gets no earlier say. We wrap the signal handler uvicorn installed
before the lifespan started (`compat.uvicorn.server_sigterm_handler`): first every live
socket is told "going away" (1001, so clients reconnect elsewhere at once), then uvicorn's
handler runs as usual: it stops accepting, lets in-flight requests (mutations) finish
within the graceful timeout, and runs the lifespan shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

from gql_feed.compat.uvicorn import server_sigterm_handler

logger = logging.getLogger(__name__)

GOING_AWAY = 1001
CLOSE_BUDGET_SECONDS = 5.0

CloseAll = Callable[[int, str], Awaitable[None]]


def close_sockets_first_on_sigterm(close_all: CloseAll) -> None:
    """Install the wrapper; a no-op where the app does not run under a uvicorn server."""
    original = server_sigterm_handler()
    if original is None:
        return
    loop = asyncio.get_running_loop()
    closing: list[asyncio.Task[None]] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if closing:  # a second SIGTERM: let uvicorn hurry
            original(signum, frame)
            return

        def start() -> None:
            task = loop.create_task(_close_then(close_all, lambda: original(signum, frame)))
            closing.append(task)

        loop.call_soon_threadsafe(start)

    signal.signal(signal.SIGTERM, handler)


async def _close_then(close_all: CloseAll, then: Callable[[], Any]) -> None:
    try:
        async with asyncio.timeout(CLOSE_BUDGET_SECONDS):
            await close_all(GOING_AWAY, "Server shutting down; reconnect")
    except Exception:
        logger.exception("Closing live sockets at shutdown failed")
    finally:
        then()
