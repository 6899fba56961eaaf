"""Settings that cannot work are refused at start, with a message saying what to do."""

from __future__ import annotations

import pytest

from gql_feed import config
from gql_feed.config import ConfigError, Settings


def test_an_sqlite_too_old_for_returning_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config.sqlite3, "sqlite_version_info", (3, 26, 0))
    monkeypatch.setattr(config.sqlite3, "sqlite_version", "3.26.0")
    with pytest.raises(ConfigError, match=r"SQLite is 3\.26\.0; gql_feed needs 3\.35\.0"):
        Settings(database_url="sqlite+aiosqlite:///feed.db", _env_file=None)  # type: ignore[call-arg]
    postgres = Settings(database_url="postgresql+asyncpg://localhost/feed", _env_file=None)  # type: ignore[call-arg]
    assert postgres.database_url.startswith("postgresql")
