"""A real uvicorn server in this process, so that its spans reach the `spans` fixture's
exporter, and a small async client for it.

The tracer provider is installed before the application is built: whether tracing is on
decides the schema's extensions (`engine.extensions.schema_extensions`).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from gql_feed.app import create_app
from gql_feed.config import Settings
from tests.helpers.server import TEST_SECRET, free_port, png_bytes
from tests.helpers.spans import _installed

SIGNUP = "mutation($i: SignupInput!) { signup(input: $i) { id } }"
LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }"
CREATE_POST = "mutation NewPost($i: CreatePostInput!) { createPost(input: $i) { id title } }"
EVENTS = "subscription Feed { postEvents { id action post { id title } } }"


def traced_settings(database_url: str, folder: Path, **more: Any) -> Settings:
    return Settings(
        database_url=database_url,
        upload_dir=folder / "uploads",
        jwt_secret=TEST_SECRET,  # type: ignore[arg-type]
        gc_freeze=False,
        _env_file=None,  # type: ignore[call-arg]
        **more,
    )


@dataclass
class TracedServer:
    port: int
    http: httpx.AsyncClient

    @property
    def graphql_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    async def graphql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        sent = {**(headers or {})}
        if token:
            sent["authorization"] = f"Bearer {token}"
        response = await self.http.post(
            self.graphql_url, json={"query": query, "variables": variables or {}}, headers=sent
        )
        body: dict[str, Any] = response.json()
        return body

    async def login(self) -> str:
        """A new user's token."""
        email = f"user-{uuid.uuid4().hex[:10]}@example.com"
        password = "correct horse battery"
        user = {"email": email, "name": "Tracer", "password": password}
        signed = await self.graphql(SIGNUP, {"i": user})
        assert "errors" not in signed, signed
        logged = await self.graphql(LOGIN, {"e": email, "p": password})
        assert "errors" not in logged, logged
        token: str = logged["data"]["login"]["token"]
        return token

    async def create_post(
        self, token: str, title: str, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """createPost as Apollo's upload link sends it: a multipart request with the image."""
        operations = {"query": CREATE_POST, "variables": {"i": {"title": title, "image": None}}}
        operations["variables"]["i"]["content"] = "Some content here"
        response = await self.http.post(
            self.graphql_url,
            data={
                "operations": json.dumps(operations),
                "map": json.dumps({"0": ["variables.i.image"]}),
            },
            files={"0": ("image.png", png_bytes(), "image/png")},
            headers={
                "apollo-require-preflight": "true",
                "authorization": f"Bearer {token}",
                **(headers or {}),
            },
        )
        body: dict[str, Any] = response.json()
        return body


@asynccontextmanager
async def traced_server(settings: Settings) -> AsyncIterator[TracedServer]:
    _installed()
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(30):
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.02)
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as http:
            yield TracedServer(port, http)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


def server_spans(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    """The operation spans among `spans`, in the order they ended."""
    return [span for span in spans if span.kind is SpanKind.SERVER]


def only_operation(spans: Sequence[ReadableSpan], kind: str) -> ReadableSpan:
    """The one SERVER span of type `kind` (fails unless there is exactly one)."""
    found = [
        s for s in server_spans(spans) if (s.attributes or {}).get("graphql.operation.type") == kind
    ]
    assert len(found) == 1, [(s.name, dict(s.attributes or {})) for s in server_spans(spans)]
    return found[0]


def children_of(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    """Every span under `parent`, at any depth."""
    assert parent.context is not None
    under = {parent.context.span_id}
    found: list[ReadableSpan] = []
    grew = True
    while grew:
        grew = False
        for span in spans:
            if span in found or span.parent is None or span.context is None:
                continue
            if span.parent.span_id in under:
                under.add(span.context.span_id)
                found.append(span)
                grew = True
    return found
