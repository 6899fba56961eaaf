"""Trusted documents: with a manifest, only its operations run, over HTTP and WebSocket.

Both manifest formats that persisted-document tooling writes are read: Apollo's
persisted-query manifest and GraphQL Codegen's `persisted-documents.json`. A client names
a document by hash (`extensions.persistedQuery`), by `documentId`, or sends its text;
anything else is refused with PERSISTED_QUERY_NOT_ALLOWED. `gql-feed check-manifest`
says which documents of a manifest would fail against the schema.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gql_feed.app import create_app
from gql_feed.config import Settings
from gql_feed.engine.trusted_documents import ManifestError
from tests.helpers.asgi import PASSWORD, app_client, codes
from tests.helpers.persisted import TransportWs, apq, get, ws_codes
from tests.helpers.server import TEST_SECRET, LiveServer, png_bytes, server_environ, upload

SIGNUP = "mutation Signup($i: SignupInput!) { signup(input: $i) { id } }"
LOGIN = "mutation Login($e: String!, $p: String!) { login(email: $e, password: $p) { token } }"
CREATE = "mutation Create($i: CreatePostInput!) { createPost(input: $i) { id title } }"
POSTS = """query Posts($page: Int!) {
  posts(page: $page, perPage: 5) { totalPosts posts { id title } }
}"""
EVENTS = "subscription Events { postEvents { action post { id title } } }"
DOCUMENTS = {"Signup": SIGNUP, "Login": LOGIN, "Create": CREATE, "Posts": POSTS, "Events": EVENTS}
TYPES = {"Signup": "mutation", "Login": "mutation", "Create": "mutation", "Posts": "query"}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apollo_manifest(documents: dict[str, str]) -> dict[str, Any]:
    """What Apollo's `generate-persisted-query-manifest` writes."""
    return {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": sha(body), "body": body, "name": name, "type": TYPES.get(name, "subscription")}
            for name, body in documents.items()
        ],
    }


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return write(tmp_path / "persisted-query-manifest.json", apollo_manifest(DOCUMENTS))


@pytest.fixture
async def trusted(settings: Settings, manifest: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings, trusted_documents=manifest) as http:
        yield http


async def call(
    http: httpx.AsyncClient, body: dict[str, Any], token: str | None = None
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return await http.post("/graphql", json=body, headers=headers)


async def log_in(http: httpx.AsyncClient) -> str:
    """Sign up and log in with the manifest's own operations, sent as text."""
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    signup = await call(
        http,
        {
            "query": SIGNUP,
            "variables": {"i": {"email": email, "name": "Ann", "password": PASSWORD}},
        },
    )
    assert "errors" not in signup.json(), signup.json()
    login = await call(http, {"query": LOGIN, "variables": {"e": email, "p": PASSWORD}})
    token: str = login.json()["data"]["login"]["token"]
    return token


async def test_listed_documents_run_by_hash_id_or_text(trusted: httpx.AsyncClient) -> None:
    token = await log_in(trusted)
    expected = {"data": {"posts": {"totalPosts": 0, "posts": []}}}
    variables = {"page": 1}
    for body in (
        {"extensions": apq(POSTS), "variables": variables},
        {"documentId": sha(POSTS), "variables": variables},
        {"documentId": f"sha256:{sha(POSTS)}", "variables": variables},
        {"query": POSTS, "variables": variables},
        {"query": POSTS, "extensions": apq(POSTS), "variables": variables},
        # The same operation, laid out differently and commented: still the listed one.
        {"query": "# the first page\n" + " ".join(POSTS.split()), "variables": variables},
    ):
        response = await call(trusted, body, token)
        assert response.status_code == 200, (body, response.text)
        assert response.json() == expected, body


async def test_anything_else_is_refused(trusted: httpx.AsyncClient) -> None:
    token = await log_in(trusted)
    other = "query { me { id email } }"
    for body in (
        {"query": other},
        {"extensions": apq(other)},
        {"query": other, "extensions": apq(other)},  # no registering in this mode
        {"documentId": sha(other)},
        {"query": other, "extensions": apq(POSTS)},  # a listed id does not cover other text
        {"query": "{ __schema { types { name } } }"},
    ):
        response = await call(trusted, body, token)
        assert response.status_code == 403, body
        assert codes(response.json()) == ["PERSISTED_QUERY_NOT_ALLOWED"], body
    again = await call(trusted, {"extensions": apq(other)}, token)
    assert codes(again.json()) == ["PERSISTED_QUERY_NOT_ALLOWED"]


async def test_listed_queries_over_get(trusted: httpx.AsyncClient) -> None:
    token = await log_in(trusted)
    by_hash = await get(trusted, {"extensions": apq(POSTS), "variables": {"page": 1}}, token=token)
    assert by_hash.json() == {"data": {"posts": {"totalPosts": 0, "posts": []}}}
    by_id = await get(trusted, {"documentId": sha(POSTS), "variables": {"page": 1}}, token=token)
    assert by_id.json() == by_hash.json()
    mutation = await get(trusted, {"extensions": apq(LOGIN)}, token=token)
    assert mutation.status_code == 405


async def test_batched_operations_are_checked_one_by_one(trusted: httpx.AsyncClient) -> None:
    token = await log_in(trusted)
    response = await trusted.post(
        "/graphql",
        json=[{"documentId": sha(POSTS), "variables": {"page": 1}}, {"query": "{ __typename }"}],
        headers={"authorization": f"Bearer {token}"},
    )
    allowed, refused = response.json()
    assert allowed == {"data": {"posts": {"totalPosts": 0, "posts": []}}}
    assert codes(refused) == ["PERSISTED_QUERY_NOT_ALLOWED"]


async def test_codegen_persisted_documents(settings: Settings, tmp_path: Path) -> None:
    """GraphQL Codegen's client preset writes `{hash: document}`."""
    path = write(
        tmp_path / "persisted-documents.json", {sha(body): body for body in DOCUMENTS.values()}
    )
    async with app_client(settings, trusted_documents=path) as http:
        token = await log_in(http)
        listed = await call(http, {"documentId": sha(POSTS), "variables": {"page": 1}}, token)
        assert listed.json()["data"]["posts"]["totalPosts"] == 0
        other = await call(http, {"query": "{ __typename }"}, token)
        assert codes(other.json()) == ["PERSISTED_QUERY_NOT_ALLOWED"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not JSON"),
        ("[]", "expected a JSON object"),
        ('{"format": "relay", "operations": []}', "unknown manifest format"),
        ('{"format": "apollo-persisted-query-manifest", "version": 2}', "version"),
        (
            '{"format": "apollo-persisted-query-manifest", "version": 1, '
            '"operations": [{"id": "x"}]}',
            r"operations\[0\] needs string `id` and `body`",
        ),
        ('{"abc": 1}', "'abc'"),
    ],
)
def test_a_broken_manifest_stops_the_start(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(content)
    with pytest.raises(ManifestError, match=message):
        create_app(sqlite_settings(tmp_path, trusted_documents=path))


def test_a_missing_manifest_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="Cannot read"):
        create_app(sqlite_settings(tmp_path, trusted_documents=tmp_path / "nope.json"))


def sqlite_settings(tmp_path: Path, **update: Any) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'feed.db'}",
        upload_dir=tmp_path / "uploads",
        jwt_secret=TEST_SECRET,  # type: ignore[arg-type]
        _env_file=None,  # type: ignore[call-arg]
        **update,
    )


async def test_over_websocket(live_server_factory: Any, manifest: Path) -> None:
    server: LiveServer = await asyncio.to_thread(
        live_server_factory, GQL_FEED_TRUSTED_DOCUMENTS=str(manifest)
    )
    async with httpx.AsyncClient(base_url=server.url) as http:
        token = await log_in(http)
    async with TransportWs.open(server, token) as ws:
        await ws.subscribe("listed", {"extensions": apq(EVENTS)})
        await ws.subscribe("other", {"query": "subscription { postEvents { id } }"})
        refused = await ws.receive()
        assert refused["id"] == "other"
        assert ws_codes(refused) == ["PERSISTED_QUERY_NOT_ALLOWED"]
        await ws.settle()
        created = await asyncio.to_thread(
            upload,
            server.graphql_url,
            token,
            CREATE,
            {"i": {"title": "Trusted", "content": "Only listed operations", "image": None}},
            "i.image",
            png_bytes(),
        )
        post = created["data"]["createPost"]
        event = await ws.receive()
        assert event == {
            "id": "listed",
            "type": "next",
            "payload": {"data": {"postEvents": {"action": "CREATED", "post": post}}},
        }


# gql-feed check-manifest


def check_manifest(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gql_feed", "check-manifest", str(path)],
        env=server_environ(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=path.parent,
        check=False,
    )


def test_check_manifest_passes_a_good_manifest(manifest: Path) -> None:
    result = check_manifest(manifest)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All 5 documents are valid" in result.stdout


def test_check_manifest_reports_what_would_fail(tmp_path: Path) -> None:
    # Valid against the schema, but over the server's alias limit (30).
    aliases = "query Aliases { " + " ".join(f"a{n}: __typename" for n in range(31)) + " }"
    documents = {
        "Posts": POSTS,
        "Typo": "query Typo { postz { totalPosts } }",
        "Broken": "query Broken { posts {",
        "Aliases": aliases,
    }
    data = apollo_manifest(documents)
    data["operations"][0]["type"] = "mutation"  # Posts is a query
    result = check_manifest(write(tmp_path / "manifest.json", data))
    assert result.returncode == 1, result.stdout + result.stderr
    failing = [line for line in result.stdout.splitlines() if line.startswith("FAIL ")]
    assert any("(Posts)" in line and "'mutation'" in line for line in failing), result.stdout
    assert any("(Typo)" in line and "postz" in line for line in failing), result.stdout
    assert any("(Broken)" in line and "Syntax Error" in line for line in failing), result.stdout
    assert any("(Aliases)" in line and "aliases" in line for line in failing), result.stdout
    assert "4 of 4 documents would fail." in result.stdout


def test_check_manifest_on_an_unreadable_file(tmp_path: Path) -> None:
    result = check_manifest(write(tmp_path / "manifest.json", ["not", "a", "manifest"]))
    assert result.returncode == 1
    assert "expected a JSON object" in result.stderr
