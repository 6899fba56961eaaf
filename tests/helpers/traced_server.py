"""A real uvicorn server in this process, so that its spans reach the `spans` fixture's
exporter, and a small async client for it.

The tracer provider is installed before the application is built: whether tracing is on
decides the schema's extensions (`engine.extensions.schema_extensions`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from gql_feed.config import Settings
from tests.helpers.asgi import multipart, user_with_token
from tests.helpers.inprocess import in_process_server
from tests.helpers.server import TEST_SECRET, LocalAddress, png_bytes
from tests.helpers.spans import _installed

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
class TracedServer(LocalAddress):
    port: int
    http: httpx.AsyncClient

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
        token, _ = await user_with_token(self.http, "Tracer")
        return token

    async def create_post(
        self, token: str, title: str, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """createPost as Apollo's upload link sends it: a multipart request with the image."""
        post = {"title": title, "content": "Some content here", "image": None}
        response = await multipart(
            self.http, token, CREATE_POST, {"i": post}, "i.image", png_bytes(), headers=headers
        )
        body: dict[str, Any] = response.json()
        return body


@asynccontextmanager
async def traced_server(settings: Settings) -> AsyncIterator[TracedServer]:
    _installed()
    async with (
        in_process_server(settings) as running,
        httpx.AsyncClient(base_url=running.url, timeout=httpx.Timeout(30, read=None)) as http,
    ):
        yield TracedServer(running.port, http)


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
