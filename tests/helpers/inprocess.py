"""The app on a real uvicorn server in this process, for tests that must see its spans.

Spans are caught by this process's tracer provider (tests.helpers.spans), so the server
runs here, on a socket bound before it starts: a client may connect at once (the kernel
queues it until uvicorn accepts), with no waiting for the server to say it is up.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from starlette.applications import Starlette

from gql_feed.app import create_app
from gql_feed.config import Settings
from gql_feed.schema.context import Services
from tests.helpers.asgi import user_with_token
from tests.helpers.server import LocalAddress


@dataclass
class InProcessServer(LocalAddress):
    app: Starlette
    port: int

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    async def user(self) -> tuple[str, int]:
        """A fresh user's token and id (as a number), signed up over HTTP."""
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            token, _ = await user_with_token(http)
        return token, self.services.tokens.verify(token).user_id


@asynccontextmanager
async def in_process_server(settings: Settings) -> AsyncIterator[InProcessServer]:
    app = create_app(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = uvicorn.Config(app, lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield InProcessServer(app, sock.getsockname()[1])
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        sock.close()
