"""uvicorn's per-WebSocket lines stay out of an INFO log; everything else goes through."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from gql_feed.logs import ConnectionChatter
from tests.helpers.live import TRANSPORT_WS, signup, wait_for_subscriptions
from tests.helpers.server import LiveServer
from tests.helpers.watchers import watching


def record(msg: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.error", level, __file__, 1, msg, None, None)


@pytest.fixture
def uvicorn_error() -> Iterator[logging.Logger]:
    logger = logging.getLogger("uvicorn.error")
    level = logger.level
    yield logger
    logger.setLevel(level)


@pytest.mark.parametrize(
    "msg", ['%s - "WebSocket %s" [accepted]', "connection open", "connection closed"]
)
def test_connection_lines_pass_only_at_debug(msg: str, uvicorn_error: logging.Logger) -> None:
    chatter = ConnectionChatter()
    uvicorn_error.setLevel(logging.INFO)
    assert not chatter.filter(record(msg))
    uvicorn_error.setLevel(logging.DEBUG)
    assert chatter.filter(record(msg))


def test_other_lines_pass(uvicorn_error: logging.Logger) -> None:
    uvicorn_error.setLevel(logging.INFO)
    assert ConnectionChatter().filter(record("Uvicorn running on %s://%s:%d"))


async def test_a_real_server_logs_requests_but_not_each_socket(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory(GQL_FEED_LOG_LEVEL="info")
    token, _ = await signup(server)
    async with watching(server, token, TRANSPORT_WS):
        await wait_for_subscriptions(server, 1)
    log = server.log()
    assert '"POST /graphql HTTP/1.1" 200' in log  # the access log
    assert "Application startup complete" in log
    assert "connection open" not in log
    assert "[accepted]" not in log


def test_the_access_log_can_be_turned_off(live_server_factory: Callable[..., LiveServer]) -> None:
    server = live_server_factory(GQL_FEED_LOG_LEVEL="info", GQL_FEED_ACCESS_LOG="false")
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
    log = server.log()
    assert "Application startup complete" in log
    assert "GET /health" not in log


def test_start_up_says_one_thing_per_line(live_server_factory: Callable[..., LiveServer]) -> None:
    """Migrations, database, bus and address, once each; no Alembic or waiting chatter."""
    server = live_server_factory(
        GQL_FEED_LOG_LEVEL="info", GQL_FEED_BROADCAST_URL="memory://user:hunter2@nowhere"
    )
    log = server.log()
    assert "migrations: applied 0001 (Users, posts and the post event log)" in log
    assert f"database: sqlite+aiosqlite:///{server.workdir / 'feed.db'}" in log
    assert "bus: memory://user:***@nowhere" in log  # a password never reaches the log
    assert "hunter2" not in log
    assert f"Uvicorn running on http://127.0.0.1:{server.port}" in log
    assert "alembic" not in log
    assert "Waiting for application" not in log
    server.restart()
    assert "migrations: the database is up to date (revision 0001)" in server.log()


def test_migrate_says_what_it_did(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GQL_FEED_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'feed.db'}",
        "GQL_FEED_LOG_LEVEL": "info",
    }
    command = [sys.executable, "-m", "gql_feed", "migrate"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert "migrations: applied 0001" in first.stderr
    again = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert "migrations: the database is up to date (revision 0001)" in again.stderr
    for output in (first.stderr, again.stderr):
        assert "alembic" not in output
        assert len(output.splitlines()) == 1, output
