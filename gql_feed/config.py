"""Settings read from `GQL_FEED_*` environment variables (or a `.env` file).

Every setting has an embedded default so that `make run` works on a fresh machine with
nothing else installed: a SQLite file database and the in-memory event bus.
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger(__name__)

MIN_PRODUCTION_SECRET_BYTES = 32
# INSERT ... RETURNING, which the post and event-log writes use.
MIN_SQLITE_VERSION = (3, 35, 0)


class ConfigError(RuntimeError):
    """The settings cannot work; the message says how to fix them."""


class Settings(BaseSettings):
    """All of gql_feed's knobs; the README lists each one."""

    model_config = SettingsConfigDict(
        env_prefix="GQL_FEED_", env_file=".env", extra="ignore", frozen=True
    )

    # Where things live.
    database_url: str = "sqlite+aiosqlite:///./gql_feed.db"
    broadcast_url: str = "memory://"
    broadcast_channel: str = "gql_feed_post_events"
    upload_dir: Path = Path("uploads")
    public_url: str = ""
    auto_migrate: bool = True

    # Serving.
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "info"
    access_log: bool = True
    gc_freeze: bool = True
    production: bool = False
    cors_origins: list[str] = Field(default_factory=list)
    ws_per_message_deflate: bool = False
    ws_implementation: Literal["websockets-sansio", "websockets"] = "websockets-sansio"

    # Tokens.
    jwt_secret: SecretStr | None = None
    jwt_secret_file: Path = Path(".gql_feed_secret")
    jwt_issuer: str = "gql_feed"
    jwt_audience: str = "gql_feed"
    token_ttl_seconds: int = 3600

    # Limits on what clients may ask for.
    max_upload_bytes: int = 5 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_request_bytes: int = 6 * 1024 * 1024
    max_per_page: int = 50
    max_first: int = 100
    max_query_depth: int = 12
    max_query_tokens: int = 2_000
    max_aliases: int = 30
    max_batch_operations: int = 10
    login_max_failures: int = 5
    login_lockout_seconds: int = 300

    # Live events.
    ws_init_timeout_seconds: float = 10.0
    ws_keepalive_seconds: float = 15.0
    ws_max_subscriptions: int = 100
    ws_max_message_bytes: int = 64 * 1024
    ws_send_backlog: int = 500
    event_poll_seconds: float = 1.0
    event_log_retention: int = 100_000
    replay_max_events: int = 10_000

    # Persisted documents (api.persisted): APQ cache, and the trusted-documents manifest.
    persisted_queries: bool = True
    persisted_query_cache_bytes: int = 16 * 1024 * 1024
    persisted_query_ttl_seconds: int = 24 * 3600
    persisted_query_redis_prefix: str = "gql_feed:apq:"
    trusted_documents: Path | None = None

    # Encoded answers to queries, kept until the next event (api.response_cache); 0: off.
    response_cache_bytes: int = Field(default=32 * 1024 * 1024, ge=0)

    @model_validator(mode="after")
    def _check_sqlite_version(self) -> Settings:
        if self.database_url.startswith("sqlite") and sqlite3.sqlite_version_info < (
            MIN_SQLITE_VERSION
        ):
            needed = ".".join(map(str, MIN_SQLITE_VERSION))
            raise ConfigError(
                f"This Python's SQLite is {sqlite3.sqlite_version}; gql_feed needs {needed} "
                "or newer. Use a newer Python build, or PostgreSQL (GQL_FEED_DATABASE_URL)."
            )
        return self

    @model_validator(mode="after")
    def _check_production(self) -> Settings:
        if self.production:
            secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
            if len(secret.encode()) < MIN_PRODUCTION_SECRET_BYTES:
                raise ConfigError(
                    "Production mode needs GQL_FEED_JWT_SECRET of at least "
                    f"{MIN_PRODUCTION_SECRET_BYTES} bytes; create one with "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
                )
        return self

    @cached_property
    def secret(self) -> str:
        """The JWT signing key: configured, or generated once and kept for development."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        return _development_secret(self.jwt_secret_file)

    @property
    def base_url(self) -> str:
        """The address clients reach the server at, used to build absolute image URLs."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


def _development_secret(path: Path) -> str:
    """Read the development key, creating it (mode 0600) on first use so tokens survive restarts."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    secret = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(secret)
    logger.warning(
        "No GQL_FEED_JWT_SECRET set: generated a development key in %s (readable only by you). "
        "Set GQL_FEED_JWT_SECRET in production.",
        path,
    )
    return secret
