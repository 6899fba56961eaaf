"""Helpers for talking GraphQL to the in-process app through httpx."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from gql_feed.app import create_app
from gql_feed.config import Settings
from tests.helpers.server import png_bytes

PASSWORD = "correct horse battery"


@asynccontextmanager
async def app_client(settings: Settings, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app in process (lifespan included), with some settings changed, behind httpx.

    The client's `app` attribute is the app, for tests that reach its services.
    """
    app = create_app(settings.model_copy(update=overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            http.app = app  # type: ignore[attr-defined]
            yield http


async def gql(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    body: dict[str, Any] = response.json()
    return body


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def signup(http: httpx.AsyncClient, email: str | None = None, name: str = "Ann") -> str:
    email = email or f"{uuid.uuid4().hex[:10]}@example.com"
    body = await gql(
        http,
        "mutation($i: SignupInput!) { signup(input: $i) { id } }",
        {"i": {"email": email, "name": name, "password": PASSWORD}},
    )
    assert "errors" not in body, body
    user_id: str = body["data"]["signup"]["id"]
    return user_id


async def login(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    return await gql(
        http,
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) "
        "{ token expiresAt user { id email } } }",
        {"e": email, "p": password},
    )


async def user_with_token(http: httpx.AsyncClient, name: str = "Ann") -> tuple[str, str]:
    """Sign up a fresh user and log in: (token, user id)."""
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    user_id = await signup(http, email, name)
    body = await login(http, email)
    assert "errors" not in body, body
    return body["data"]["login"]["token"], user_id


async def multipart(
    http: httpx.AsyncClient,
    token: str | None,
    query: str,
    variables: dict[str, Any],
    file_path: str | None,
    data: bytes = b"",
    filename: str = "image.png",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A GraphQL multipart request (the spec Apollo's upload clients follow)."""
    all_headers = {"apollo-require-preflight": "true", **(headers or {})}
    if token:
        all_headers["authorization"] = f"Bearer {token}"
    files = {"0": (filename, data, "image/png")} if file_path else None
    form = {
        "operations": json.dumps({"query": query, "variables": variables}),
        "map": json.dumps({"0": [f"variables.{file_path}"]} if file_path else {}),
    }
    return await http.post("/graphql", data=form, files=files, headers=all_headers)


CREATE_POST = (
    "mutation($i: CreatePostInput!) { createPost(input: $i) "
    "{ id title content imageUrl creator { id name } createdAt updatedAt } }"
)


async def create_post(
    http: httpx.AsyncClient,
    token: str,
    title: str = "A first post",
    content: str = "Hello, feed!",
    image: bytes | None = None,
) -> dict[str, Any]:
    response = await multipart(
        http,
        token,
        CREATE_POST,
        {"i": {"title": title, "content": content, "image": None}},
        "i.image",
        png_bytes() if image is None else image,
    )
    body: dict[str, Any] = response.json()
    return body


class Upload:
    """A file part as the services see it: something with an async `read`."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def read(self, size: int = -1) -> bytes:
        data, self.data = self.data, b""
        return data


def uploads(client: httpx.AsyncClient) -> set[str]:
    """Every file in the app's upload folder, hidden ones (a half-written `.part`) included."""
    directory = client.app.state.services.posts.images.directory  # type: ignore[attr-defined]
    return {path.name for path in directory.iterdir()}
