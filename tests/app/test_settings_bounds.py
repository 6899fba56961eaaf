"""Every setting is bounded; a value out of bounds is refused at start, naming it.

`GQL_FEED_EVENT_LOG_RETENTION=0` was once accepted and pruned the whole event log:
ids restarted at 1 and every process dropped the new events as already seen.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from gql_feed.cli import main
from gql_feed.config import ConfigError, Settings
from gql_feed.storage import event_log
from gql_feed.storage.database import Database, migrate
from tests.helpers.events import log_event

OUT_OF_BOUNDS = [
    ("GQL_FEED_EVENT_LOG_RETENTION", "0"),
    ("GQL_FEED_EVENT_LOG_RETENTION", "-5"),
    ("GQL_FEED_REPLAY_MAX_EVENTS", "0"),
    ("GQL_FEED_PORT", "0"),
    ("GQL_FEED_PORT", "65536"),
    ("GQL_FEED_WORKERS", "0"),
    ("GQL_FEED_TOKEN_TTL_SECONDS", "0"),
    ("GQL_FEED_MAX_UPLOAD_BYTES", "0"),
    ("GQL_FEED_MAX_IMAGE_PIXELS", "-1"),
    ("GQL_FEED_MAX_REQUEST_BYTES", "0"),
    ("GQL_FEED_MAX_PER_PAGE", "0"),
    ("GQL_FEED_MAX_FIRST", "0"),
    ("GQL_FEED_MAX_QUERY_DEPTH", "0"),
    ("GQL_FEED_MAX_QUERY_TOKENS", "0"),
    ("GQL_FEED_MAX_ALIASES", "-1"),
    ("GQL_FEED_MAX_BATCH_OPERATIONS", "0"),
    ("GQL_FEED_LOGIN_MAX_FAILURES", "0"),
    ("GQL_FEED_LOGIN_LOCKOUT_SECONDS", "0"),
    ("GQL_FEED_WS_INIT_TIMEOUT_SECONDS", "0"),
    ("GQL_FEED_WS_INIT_TIMEOUT_SECONDS", "inf"),
    ("GQL_FEED_WS_KEEPALIVE_SECONDS", "-1"),
    ("GQL_FEED_WS_KEEPALIVE_SECONDS", "nan"),
    ("GQL_FEED_WS_MAX_SUBSCRIPTIONS", "0"),
    ("GQL_FEED_WS_MAX_MESSAGE_BYTES", "0"),
    ("GQL_FEED_WS_SEND_BACKLOG", "0"),
    ("GQL_FEED_WS_SEND_BACKLOG_BYTES", "0"),
    ("GQL_FEED_WS_SEND_BACKLOG_BYTES", "100"),
    ("GQL_FEED_LIVE_MAX_STREAMS_PER_USER", "0"),
    ("GQL_FEED_LIVE_MAX_SUBSCRIPTIONS_PER_USER", "0"),
    ("GQL_FEED_LIVE_MAX_GROUPS_PER_USER", "0"),
    ("GQL_FEED_SSE_RESERVATION_SECONDS", "0"),
    ("GQL_FEED_SSE_RESERVATION_SECONDS", "inf"),
    ("GQL_FEED_SSE_MAX_RESERVATIONS_PER_USER", "0"),
    ("GQL_FEED_SSE_RESERVATION_INBOX_COMMANDS", "0"),
    ("GQL_FEED_SSE_RESERVATION_INBOX_BYTES", "10"),
    ("GQL_FEED_MAX_PAGE_OFFSET", "-1"),
    ("GQL_FEED_REQUEST_HEADER_TIMEOUT_SECONDS", "0"),
    ("GQL_FEED_REQUEST_BODY_TIMEOUT_SECONDS", "nan"),
    ("GQL_FEED_EVENT_POLL_SECONDS", "0"),
    ("GQL_FEED_EVENT_POLL_SECONDS", "1e9"),
    ("GQL_FEED_PERSISTED_QUERY_CACHE_BYTES", "0"),
    ("GQL_FEED_PERSISTED_QUERY_TTL_SECONDS", "0"),
    ("GQL_FEED_BROADCAST_CHANNEL", ""),
    ("GQL_FEED_DATABASE_URL", ""),
    ("GQL_FEED_JWT_ISSUER", ""),
    ("GQL_FEED_LOG_LEVEL", "loud"),
    ("GQL_FEED_SWITCH_INTERVAL_SECONDS", "0"),
    ("GQL_FEED_SWITCH_INTERVAL_SECONDS", "1"),
    ("GQL_FEED_SWITCH_INTERVAL_SECONDS", "nan"),
    ("GQL_FEED_GC_THRESHOLDS", "0,1,1"),
    ("GQL_FEED_GC_THRESHOLDS", "20000,0,1"),
    ("GQL_FEED_GC_THRESHOLDS", "20000,1"),
    ("GQL_FEED_GC_THRESHOLDS", "lots"),
]


@pytest.mark.parametrize(("variable", "value"), OUT_OF_BOUNDS)
def test_out_of_bounds_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)  # type: ignore[call-arg]
    field = variable.removeprefix("GQL_FEED_").lower()
    assert [problem["loc"] for problem in refused.value.errors()] == [(field,)]
    monkeypatch.chdir(Path(__file__).parent)  # no .env file here
    assert main(["serve"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"gql-feed: cannot start: {variable}: ")
    assert error.count("\n") == 1


def test_retention_below_the_replay_maximum_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GQL_FEED_EVENT_LOG_RETENTION", "99")
    monkeypatch.setenv("GQL_FEED_REPLAY_MAX_EVENTS", "100")
    with pytest.raises(ConfigError, match=r"GQL_FEED_EVENT_LOG_RETENTION \(99\) must be at least"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("GQL_FEED_EVENT_LOG_RETENTION", "100")
    assert Settings(_env_file=None).event_log_retention == 100  # type: ignore[call-arg]


def test_the_edges_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in [
        ("GQL_FEED_PORT", "65535"),
        ("GQL_FEED_WORKERS", "1"),
        ("GQL_FEED_MAX_ALIASES", "0"),
        ("GQL_FEED_EVENT_POLL_SECONDS", "0.05"),
        ("GQL_FEED_LOG_LEVEL", "WARNING"),
    ]:
        monkeypatch.setenv(variable, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.port, settings.max_aliases, settings.log_level) == (65535, 0, "warning")


def test_command_line_flags_are_bounded_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "70000"]) == 2
    assert "GQL_FEED_PORT: " in capsys.readouterr().err
    assert main(["serve", "--workers", "0"]) == 2
    assert "GQL_FEED_WORKERS: " in capsys.readouterr().err


def test_serve_prints_one_clean_line(tmp_path: Path) -> None:
    """The real command: exit status 2, one line naming the setting, no traceback."""
    finished = subprocess.run(
        [sys.executable, "-m", "gql_feed", "serve"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "GQL_FEED_EVENT_LOG_RETENTION": "0"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 2
    assert finished.stdout == ""
    assert finished.stderr.startswith("gql-feed: cannot start: GQL_FEED_EVENT_LOG_RETENTION: ")
    assert finished.stderr.count("\n") == 1
    assert "Traceback" not in finished.stderr


async def test_prune_never_deletes_the_newest_event(database_url: str) -> None:
    """Even asked to keep nothing, the newest stays, so ids carry on and never restart."""
    db = Database.open(database_url)
    await migrate(db.engine)
    try:
        for n in range(4):
            await log_event(db, n)
        async with db.write() as session, session.begin():
            assert await event_log.prune(session, keep=0) == 3
        async with db.read() as session:
            assert await event_log.bounds(session) == (4, 4)
        following = await log_event(db, 9)
        assert following.id == 5
        async with db.write() as session, session.begin():
            assert await event_log.prune(session, keep=-3) == 1
        async with db.read() as session:
            assert await event_log.bounds(session) == (5, 5)
    finally:
        await db.close()
