"""A real `gql-feed serve` process on a free port, and a small client for it."""

from __future__ import annotations

import io
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

TEST_SECRET = "test-secret-0123456789abcdef0123456789abcdef"

# argon2id at its least cost: most tests make accounts to test something else, and a hash
# at the real cost takes some 0.2 s of CPU (the suite's servers make several hundred).
# Tests of hashing itself (its threads and queue under a flood), and servers in
# production mode (which refuses so low a cost), pass REAL_PASSWORD_COST.
CHEAP_PASSWORD_COST = {
    "GQL_FEED_PASSWORD_HASH_MEMORY_KIB": "32",
    "GQL_FEED_PASSWORD_HASH_PASSES": "1",
}
REAL_PASSWORD_COST = {
    "GQL_FEED_PASSWORD_HASH_MEMORY_KIB": "65536",
    "GQL_FEED_PASSWORD_HASH_PASSES": "3",
}
# The servers speak plain HTTP, but a request made without a client of its own
# (`httpx.get`) loads a certificate store first unless given one: some 20 ms of CPU per
# request, which the polling loops paid many times a second. So they share this one.
TLS = ssl.create_default_context()
PORTS = range(10_000, 30_000)  # below Linux's ephemeral range (32768 and up)


def free_port() -> int:
    """A port free now, and never one another pytest-xdist worker could also pick.

    A server binds its port only after its start-up, a second or so after it was
    spawned. Had two workers picked the same port, the loser's health check would be
    answered by the winner's server, and its tests would talk to a stranger that later
    goes away. So each worker takes only ports of its own residue. They come from below
    the kernel's ephemeral range, so no outgoing connection takes one meanwhile either.
    """
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    while True:
        port = random.randrange(PORTS.start, PORTS.stop, workers) + worker
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def server_environ(**env: str) -> dict[str, str]:
    """The environment for a server process: this one's, less every GQL_FEED_* variable
    (a developer's shell setting, say, GQL_FEED_RESPONSE_CACHE_BYTES=0 or a PostgreSQL
    URL, must not change what a test runs against), plus the test's own settings."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("GQL_FEED_")}
    return {**inherited, **env}


def png_bytes(size: tuple[int, int] = (4, 4), color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


class LocalAddress:
    """The addresses of a test server listening on 127.0.0.1 at `port`."""

    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"


class LiveServer(LocalAddress):
    """One server process. `restart()` keeps the port, database and uploads."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None, port: int | None = None):
        self.workdir = workdir
        self.port = port or free_port()
        self.env = {
            "GQL_FEED_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'feed.db'}",
            "GQL_FEED_UPLOAD_DIR": str(workdir / "uploads"),
            "GQL_FEED_JWT_SECRET": TEST_SECRET,
            "GQL_FEED_LOG_LEVEL": "warning",
            **CHEAP_PASSWORD_COST,
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"server-{self.port}.log"

    def start(self, timeout: float = 30.0) -> None:
        env = server_environ(**self.env)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gql_feed", "serve", "--port", str(self.port)],
            env=env,
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1, verify=TLS).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not come up:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # A small client, enough for tests to set the scene.

    def graphql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = httpx.post(
            self.graphql_url,
            json={"query": query, "variables": variables or {}},
            headers=headers,
            timeout=30,
            verify=TLS,
        )
        body: dict[str, Any] = response.json()
        return body

    def signup_and_login(self, email: str | None = None, name: str = "Tester") -> tuple[str, str]:
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
        password = "correct horse battery"
        signup = self.graphql(
            "mutation($i: SignupInput!) { signup(input: $i) { id } }",
            {"i": {"email": email, "name": name, "password": password}},
        )
        assert "errors" not in signup, signup
        login = self.graphql(
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            {"e": email, "p": password},
        )
        assert "errors" not in login, login
        return login["data"]["login"]["token"], signup["data"]["signup"]["id"]

    def create_post(
        self, token: str, title: str, content: str = "Some content here"
    ) -> dict[str, Any]:
        response = upload(
            self.graphql_url,
            token,
            "mutation($i: CreatePostInput!) { createPost(input: $i) { id title content } }",
            {"i": {"title": title, "content": content, "image": None}},
            "i.image",
            png_bytes(),
        )
        assert "errors" not in response, response
        post: dict[str, Any] = response["data"]["createPost"]
        return post

    def update_post(self, token: str, post_id: str, title: str) -> dict[str, Any]:
        response = self.graphql(
            "mutation($id: ID!, $i: UpdatePostInput!) { updatePost(id: $id, input: $i) { id title } }",
            {"id": post_id, "i": {"title": title}},
            token,
        )
        assert "errors" not in response, response
        post: dict[str, Any] = response["data"]["updatePost"]
        return post

    def delete_post(self, token: str, post_id: str) -> None:
        response = self.graphql(
            "mutation($id: ID!) { deletePost(id: $id) }", {"id": post_id}, token
        )
        assert "errors" not in response, response


def upload(
    url: str,
    token: str | None,
    query: str,
    variables: dict[str, Any],
    path: str,
    data: bytes,
    filename: str = "image.png",
    content_type: str = "image/png",
    preflight: bool = True,
) -> dict[str, Any]:
    """A GraphQL multipart request with one file at `path` (e.g. "i.image")."""
    import json

    headers = {"apollo-require-preflight": "true"} if preflight else {}
    if token:
        headers["authorization"] = f"Bearer {token}"
    response = httpx.post(
        url,
        data={
            "operations": json.dumps({"query": query, "variables": variables}),
            "map": json.dumps({"0": [f"variables.{path}"]}),
        },
        files={"0": (filename, data, content_type)},
        headers=headers,
        timeout=30,
        verify=TLS,
    )
    body: dict[str, Any] = response.json()
    return body
