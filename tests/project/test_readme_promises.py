"""Promises of the README that no other test holds to, each by what a user would see.

Running it: SIGTERM with --workers, /ready naming the database, GQL_FEED_AUTO_MIGRATE and
`gql-feed migrate`, the development key file, the `.env` file; streams: the end of a
stream the server closes, the resume cookie, the ticket's life.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command
from alembic.script import ScriptDirectory

from gql_feed.services import tickets as tickets_module
from gql_feed.services.errors import Unauthenticated
from gql_feed.services.tickets import SPENT, StreamTickets
from gql_feed.services.tokens import Claims
from gql_feed.storage.database import alembic_config
from tests.helpers.clock import SkippingClock
from tests.helpers.metrics import metric_samples
from tests.helpers.server import TLS, LiveServer, server_environ
from tests.helpers.services import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    POSTGRES_USER,
    fresh_postgres_database,
)
from tests.helpers.streams import multipart, sse, stream_ticket
from tests.helpers.watchers import ready, wait_until_ready_is

Factory = Callable[..., LiveServer]


def children(pid: int) -> set[int]:
    """Every descendant of `pid`, read from /proc."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            listed = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, listed):
            found |= {child} | children(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def unprepared(tmp_path: Path, **env: str) -> LiveServer:
    """A server not yet started, with no JWT secret given (so a development key is made)."""
    server = LiveServer(tmp_path, env)
    del server.env["GQL_FEED_JWT_SECRET"]
    return server


# SIGTERM and --workers.


@pytest.mark.timeout(180)
def test_sigterm_reaches_every_worker(tmp_path: Path) -> None:
    """The main process passes SIGTERM on to each worker, which shuts down gracefully
    (uvicorn logs "Finished server process [pid]" only at the end of a graceful stop)."""
    server = LiveServer(tmp_path, {"GQL_FEED_WORKERS": "2", "GQL_FEED_LOG_LEVEL": "info"})
    server.start(timeout=90)
    assert server.process is not None
    workers = two_workers(server)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)
    server.process = None
    log = server.log()
    for pid in workers:
        assert f"Finished server process [{pid}]" in log, log
        assert not alive(pid)


def two_workers(server: LiveServer) -> set[int]:
    """The pids of the two workers of a server started with GQL_FEED_WORKERS=2 (and a log
    level of info, for uvicorn's "Started server process [pid]")."""
    assert server.process is not None
    main = server.process.pid
    deadline = time.monotonic() + 60  # generous: workers start a second or so apart
    workers: set[int] = set()
    while time.monotonic() < deadline:
        workers = {pid for pid in children(main) if started_serving(server, pid)}
        if len(workers) == 2:
            break
        time.sleep(0.2)
    assert len(workers) == 2, (children(main), server.log())
    return workers


def started_serving(server: LiveServer, pid: int) -> bool:
    return f"Started server process [{pid}]" in server.log()


# /ready names the database.


@pytest.fixture
def postgres_database() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.mark.postgres
async def test_ready_names_the_database_when_it_is_down(
    live_server_factory: Factory, postgres_database: str
) -> None:
    server = await asyncio.to_thread(live_server_factory, GQL_FEED_DATABASE_URL=postgres_database)
    await wait_until_ready_is(server, 200)
    name = postgres_database.rsplit("/", 1)[1]
    admin = await asyncpg.connect(
        f"postgresql://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/postgres"
    )
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await wait_until_ready_is(server, 503)
        assert await asyncio.to_thread(ready, server) == (
            503,
            {"status": "unavailable", "down": ["database"]},
        )
        health = await asyncio.to_thread(httpx.get, f"{server.url}/health", timeout=10, verify=TLS)
        assert health.status_code == 200  # alive, only not ready
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    await wait_until_ready_is(server, 200)


# GQL_FEED_AUTO_MIGRATE=false and `gql-feed migrate`.


def gql_feed(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gql_feed", *args],
        env=server_environ(**env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_auto_migrate_an_old_schema_is_refused_until_migrate(tmp_path: Path) -> None:
    """Refused on a database never migrated, and on one a release behind (at the revision
    before head); `gql-feed migrate` brings it to head, and then it serves.

    The server it then starts is also the one that shows GQL_FEED_PUBLIC_URL, set in its
    environment, at the start of the image URLs it gives out."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'feed.db'}"
    env = {
        "GQL_FEED_DATABASE_URL": database,
        "GQL_FEED_AUTO_MIGRATE": "false",
        "GQL_FEED_JWT_SECRET": "x" * 40,
        "GQL_FEED_PUBLIC_URL": "https://media.example.com/feed/",
    }
    refused = gql_feed(tmp_path, "serve", "--port", "1", **env)
    assert refused.returncode != 0
    assert "gql-feed migrate" in refused.stdout + refused.stderr, refused
    # While 0001 is the only migration, the revision before head is "none": its tables
    # made and dropped again, Alembic's version table left empty.
    earlier = at_the_revision_before_head(database)
    refused = gql_feed(tmp_path, "serve", "--port", "1", **env)
    assert refused.returncode != 0
    said = refused.stdout + refused.stderr
    assert f"at revision {earlier!r}" in said, refused
    assert "gql-feed migrate" in said, refused
    migrated = gql_feed(tmp_path, "migrate", **env)
    assert migrated.returncode == 0, migrated
    server = LiveServer(tmp_path, env)
    server.start()
    try:
        token, _ = server.signup_and_login()
        assert server.create_post(token, "On a migrated schema")["title"] == "On a migrated schema"
        feed = server.graphql("{ posts { posts { imageUrl } } }", None, token)
        [post] = feed["data"]["posts"]["posts"]
        assert post["imageUrl"].startswith("https://media.example.com/feed/"), post
    finally:
        server.stop()


def at_the_revision_before_head(url: str) -> str | None:
    """Migrate the database at `url` to head and then one step back, where a database the
    previous release left would be; the revision it is then at (None: before the first).

    Alembic runs here as `gql-feed migrate` runs it: with the project's migrations."""
    config = alembic_config(url)
    command.upgrade(config, "head")
    command.downgrade(config, "-1")
    script = ScriptDirectory.from_config(config)
    head = script.get_revision(script.get_current_head())
    assert head is not None
    earlier = head.down_revision
    assert earlier is None or isinstance(earlier, str), earlier  # no merge revisions
    return earlier


# The development key.


# Connections made, at most, until a given worker has answered one: each goes to either.
MAX_CONNECTIONS = 200


@pytest.mark.timeout(300)
def test_the_development_key_is_kept_private_and_shared_by_workers(tmp_path: Path) -> None:
    """Each of the two workers accepts a token the other signed: they share one key."""
    key = tmp_path / "dev-key"
    server = unprepared(
        tmp_path,
        GQL_FEED_WORKERS="2",
        GQL_FEED_JWT_SECRET_FILE=str(key),
        GQL_FEED_LOG_LEVEL="info",
    )
    server.start(timeout=90)
    try:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        secret = key.read_bytes()
        assert len(secret.strip()) >= 32
        workers = two_workers(server)
        email, password = "shared@example.com", "correct horse battery"
        signup = server.graphql(
            "mutation($i: SignupInput!) { signup(input: $i) { id } }",
            {"i": {"email": email, "name": "Shared", "password": password}},
        )
        user_id = signup["data"]["signup"]["id"]
        # The kernel hands each new connection to whichever worker accepts it first, so
        # which one answers is up to chance: connections are made until each worker has
        # signed a token, then until the other one has verified it (a generous bound).
        signed: dict[int, str] = {}
        for _ in range(MAX_CONNECTIONS):
            with WorkerConnection(server, workers) as connection:
                login = connection.graphql(
                    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
                    {"e": email, "p": password},
                )
                signed.setdefault(connection.worker(), login["data"]["login"]["token"])
            if len(signed) == 2:
                break
        assert signed.keys() == workers, f"no token signed by each worker: {signed.keys()}"
        for signer, token in signed.items():
            for _ in range(MAX_CONNECTIONS):
                with WorkerConnection(server, workers) as connection:
                    me = connection.graphql("{ me { id } }", None, token)
                    assert me == {"data": {"me": {"id": user_id}}}, me
                    if connection.worker() != signer:
                        break
            else:
                raise AssertionError(f"no connection reached the worker other than {signer}")
        server.restart()
        assert key.read_bytes() == secret  # generated once, kept across restarts
        for token in signed.values():
            assert server.graphql("{ me { id } }", None, token) == {"data": {"me": {"id": user_id}}}
    finally:
        server.stop()


class WorkerConnection:
    """One HTTP/1.1 connection to a server of several workers, kept open, so that the
    worker which accepted it can be found: the one holding the socket of its other end."""

    def __init__(self, server: LiveServer, workers: set[int]) -> None:
        self.server = server
        self.workers = workers
        self.http = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)

    def __enter__(self) -> WorkerConnection:
        self.http.connect()
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def graphql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        body = json.dumps({"query": query, "variables": variables or {}})
        self.http.request("POST", "/graphql", body, headers)
        answer: dict[str, Any] = json.loads(self.http.getresponse().read())
        return answer

    def worker(self) -> int:
        """The worker serving this connection (after a request: by then it has accepted it)."""
        assert self.http.sock is not None
        client_port = self.http.sock.getsockname()[1]
        inode = server_socket_inode(self.server.port, client_port)
        for pid in self.workers:
            if f"socket:[{inode}]" in open_files(pid):
                return pid
        raise AssertionError(f"no worker holds the connection from port {client_port}")


def server_socket_inode(server_port: int, client_port: int) -> str:
    """The inode of the server's end of the TCP connection between the two ports on
    127.0.0.1, from /proc/net/tcp: local and remote addresses as hex IP:port, the state
    (01: established; an earlier connection's TIME_WAIT entry has no socket left)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        remote_port = int(fields[2].split(":")[1], 16)
        established = fields[3] == "01"
        if established and (local_port, remote_port) == (server_port, client_port):
            return fields[9]
    raise AssertionError(f"no connection from port {client_port} to port {server_port}")


def open_files(pid: int) -> set[str]:
    """What each of the process's file descriptors refers to (`socket:[inode]` for a socket)."""
    found = set()
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.add(os.readlink(descriptor))
        except OSError:  # closed meanwhile
            continue
    return found


# The .env file.


def test_settings_come_from_a_dotenv_file_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GQL_FEED_MAX_QUERY_COST=7\n")
    server = LiveServer(tmp_path)
    server.start()
    try:
        body = server.graphql("{ posts(perPage: 5) { posts { id title } } }")
        [error] = body["errors"]
        assert error["extensions"]["maxCost"] == 7, body
    finally:
        server.stop()


# Streams the server ends.


async def test_a_stream_the_server_ends_says_why(live_server_factory: Factory) -> None:
    """On SIGTERM, a multipart stream gets a last part with SHUTTING_DOWN and its closing
    boundary; an SSE stream a comment saying why, and no `complete`."""
    server = await asyncio.to_thread(live_server_factory)
    token, _ = await asyncio.to_thread(server.signup_and_login)
    async with multipart(server, token) as parts, sse(server, token=token) as events:
        assert events.response.status_code == 200
        assert parts.response.status_code == 200
        await wait_for_streams(server, 2)
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        rest = (await parts.rest(timeout=30)).decode()
        lines = [line async for line in events.response.aiter_lines()]
    assert '"code":"SHUTTING_DOWN"' in rest.replace(" ", ""), rest
    assert '"payload":null' in rest.replace(" ", ""), rest
    assert rest.rstrip().endswith("--graphql--"), rest
    comments = [line for line in lines if line.startswith(": ")]
    assert any("shutting down" in line.lower() for line in comments), lines
    assert not any(line.startswith("event: complete") for line in lines), lines
    await asyncio.to_thread(server.process.wait, 30)
    server.process = None


async def wait_for_streams(server: LiveServer, count: int) -> None:
    async with asyncio.timeout(30):
        while (await asyncio.to_thread(metric_samples, server)).get(
            "gql_feed_live_subscriptions", 0
        ) < count:
            await asyncio.sleep(0.05)


# Stream tickets: the resume cookie, and 60 seconds of life.


async def test_the_resume_cookie_is_strict_and_http_only(live_server: LiveServer) -> None:
    token, _ = await asyncio.to_thread(live_server.signup_and_login)
    ticket = await stream_ticket(live_server, token)
    async with sse(live_server, ticket=ticket) as stream:
        assert stream.response.status_code == 200
        cookie = stream.response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes, cookie
    assert "samesite=strict" in cookie.lower().replace(" ", ""), cookie
    assert "path=/graphql" in cookie.lower().replace(" ", ""), cookie


@pytest.fixture
def ticket_clock(monkeypatch: pytest.MonkeyPatch) -> SkippingClock:
    clock = SkippingClock()
    monkeypatch.setattr(tickets_module, "time", clock)
    return clock


async def test_a_ticket_lives_60_seconds(ticket_clock: SkippingClock) -> None:
    tickets = StreamTickets("ticket-test-secret-0123456789abcdef0123", "gql_feed", "gql_feed")
    login = Claims(7, datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1))
    early, _ = tickets.issue(login)
    late, expires_at = tickets.issue(login)
    assert 59 <= (expires_at - datetime.now(UTC)).total_seconds() <= 60
    ticket_clock.advance(58)
    assert (await tickets.admit(early, {})).claims.user_id == 7
    ticket_clock.advance(3)
    with pytest.raises(Unauthenticated) as raised:
        await tickets.admit(late, {})
    assert raised.value.message == SPENT
    # Never beyond the login it came from.
    short = Claims(7, datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=20))
    _, capped = tickets.issue(short)
    assert capped == short.expires_at
